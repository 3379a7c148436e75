package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/internal/wasmbin"
)

// runManifest embeds or prints the manifest custom section of a module.
func runManifest(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("manifest: want set or get")
	}
	switch {
	case args[0] == "set" && len(args) == 3:
		mod, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		data, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		if _, err := abi.ParseManifest(data); err != nil {
			return fmt.Errorf("%s: %w", args[2], err)
		}
		out, err := wasmbin.SetCustomSection(mod, abi.ManifestSection, data)
		if err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		return os.WriteFile(args[1], out, 0o644)
	case args[0] == "get" && len(args) == 2:
		mod, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		data, ok, err := wasmbin.CustomSection(mod, abi.ManifestSection)
		if err != nil {
			return fmt.Errorf("%s: %w", args[1], err)
		}
		if !ok {
			return fmt.Errorf("%s has no %s section", args[1], abi.ManifestSection)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", data)
		return err
	}
	return errors.New("manifest: usage: manifest set <module.wasm> <manifest.json> | manifest get <module.wasm>")
}
