// Command mesher runs a Mesher node (mesher serve) and offers client
// subcommands, such as embedding a manifest into a processor module.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mesher:", err)
		os.Exit(1)
	}
}

const usage = `usage: mesher <command> [arguments]

commands:
  serve [flags]                                run a node (mesher serve -h lists the settings)
  stream -project P -key K [-level L]          print a project's live stream
  manifest set <module.wasm> <manifest.json>   embed a manifest into a processor module
  manifest get <module.wasm>                   print the manifest of a module
`

// run is the whole program; it touches no globals so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "manifest":
		return runManifest(args[1:], stdout)
	case "stream":
		return runStream(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
