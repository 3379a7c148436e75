// Package plugins_test checks that the plugins, built to Wasm by `make
// plugins` and run by host/wasm as a node runs them, behave as their
// handlers do natively.
package plugins_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/plugins/internal/plugintest"
)

// plugins are the plugins checked, each a directory here.
var plugins = []string{"scrub", "sample", "enrich", "fingerprint"}

// TestWasmMatchesNative runs the cases in each plugin's testdata/cases.json
// through its built module, with the configuration checked and completed
// by the module's manifest as the host does, and compares the output
// records with the file. The plugin's own tests compare the file with what
// its handler produces through guest.RunEvents, so the two agree (see
// package plugintest). Compiling a module is slow, so the runtime and each
// module are loaded once.
func TestWasmMatchesNative(t *testing.T) {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.Config{CacheDir: fixture.CacheDir(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	for _, name := range plugins {
		t.Run(name, func(t *testing.T) {
			m, err := rt.Load(ctx, fixture.Plugin(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("if plugins/%s changed, rebuild its module with make plugins", name)
				}
			}()
			checkManifest(t, name, m)
			p := rt.NewProcessor(name, m, wasm.Limits{Instances: 1})
			defer p.Close(ctx)
			for _, c := range plugintest.Load(t, filepath.Join(name, "testdata", "cases.json")) {
				t.Run(c.Name, func(t *testing.T) {
					settings, err := m.Settings(c.Config)
					if err != nil {
						t.Fatal(err)
					}
					in, n := c.Input()
					recs, err := p.Process(ctx, in, n, settings)
					if err != nil {
						t.Fatal(err)
					}
					plugintest.Compare(t, recs, c.Want)
				})
			}
		})
	}
}

// checkManifest checks that the module embeds the plugin's manifest.json.
func checkManifest(t *testing.T, name string, m *wasm.Module) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(name, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := abi.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if want.Name != name {
		t.Errorf("manifest.json names the plugin %q, want %q", want.Name, name)
	}
	if !reflect.DeepEqual(m.Manifest, want) {
		t.Errorf("the module's manifest differs from manifest.json")
	}
}
