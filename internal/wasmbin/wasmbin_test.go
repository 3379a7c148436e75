package wasmbin_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/wasmbin"
)

// counter has a loop of n iterations, a recursive function, and an
// imported global ahead of its own, so the countdown's index is not 0.
const counter = `(module
  (import "mesher" "abi_v1" (func $yield))
  (import "env" "g" (global i32))
  (memory (export "memory") 1 100)
  (global $keep (mut i32) (i32.const 7))
  (func (export "spin") (param $n i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l))))
  (func $rec (export "rec") (param $n i32)
    (if (local.get $n) (then (call $rec (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "keep") (result i32) (i32.add (global.get $keep) (global.get 0))))`

// run instantiates bin with a yield function that counts its calls and
// calls fn(args...).
func run(t *testing.T, bin []byte, fn string, args ...uint64) (yields int, results []uint64) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err := r.NewHostModuleBuilder("mesher").NewFunctionBuilder().
		WithFunc(func() { yields++ }).Export("abi_v1").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.InstantiateWithConfig(ctx, fixture.WAT(t, `(module (global (export "g") i32 (i32.const 35)))`, ""),
		wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName("m"))
	if err != nil {
		t.Fatal(err)
	}
	results, err = mod.ExportedFunction(fn).Call(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return yields, results
}

func TestInstrumentYields(t *testing.T) {
	bin := fixture.WAT(t, counter, "")
	tests := []struct {
		name   string
		opts   wasmbin.Options
		fn     string
		arg    uint64
		yields int
	}{
		{"loop below interval", wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", Interval: 100}, "spin", 98, 0}, // the loop header runs n+1 times
		{"loop of 2.5 intervals", wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", Interval: 100}, "spin", 250, 2},
		{"default interval", wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1"}, "spin", 3*wasmbin.DefaultInterval - 2, 2},
		{"recursion without call checks", wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", Interval: 10}, "rec", 95, 0},
		{"recursion with call checks", wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", Interval: 10, CheckCalls: true}, "rec", 95, 9},
		{"no yield option leaves code alone", wasmbin.Options{}, "spin", 1000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, st, err := wasmbin.Instrument(bin, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tt.opts.YieldName != "" && st.Checks == 0 {
				t.Error("no checks inserted")
			}
			yields, _ := run(t, out, tt.fn, tt.arg)
			if yields != tt.yields {
				t.Errorf("got %d yields, want %d", yields, tt.yields)
			}
			// Globals of the module keep their indexes and values.
			if _, res := run(t, out, "keep"); res[0] != 42 {
				t.Errorf("got keep() = %d, want 42", res[0])
			}
		})
	}
}

func TestInstrumentErrors(t *testing.T) {
	bin := fixture.WAT(t, counter, "")
	if _, _, err := wasmbin.Instrument(bin, wasmbin.Options{YieldModule: "mesher", YieldName: "other"}); !errors.Is(err, wasmbin.ErrNoYield) {
		t.Errorf("missing yield import: got %v, want ErrNoYield", err)
	}
	if _, _, err := wasmbin.Instrument([]byte("\x00asm\x02\x00\x00\x00"), wasmbin.Options{}); !errors.Is(err, wasmbin.ErrNotWasm) {
		t.Errorf("bad version: got %v, want ErrNotWasm", err)
	}
	imported := fixture.WAT(t, `(module (import "env" "mem" (memory 1)))`, "")
	if _, _, err := wasmbin.Instrument(imported, wasmbin.Options{MaxMemoryPages: 10}); !errors.Is(err, wasmbin.ErrImportedMemory) {
		t.Errorf("imported memory: got %v, want ErrImportedMemory", err)
	}
}

func TestCapMemory(t *testing.T) {
	tests := []struct {
		name, mem string
		max       uint32
		wantMax   uint32
		err       error
	}{
		{"no maximum gets the cap", "(memory 1)", 16, 16, nil},
		{"larger maximum is lowered", "(memory 1 1000)", 16, 16, nil},
		{"smaller maximum is kept", "(memory 1 8)", 16, 8, nil},
		{"initial above cap", "(memory 20)", 16, 0, wasmbin.ErrMemoryTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := fixture.WAT(t, "(module "+tt.mem+` (export "memory" (memory 0)))`, "")
			out, _, err := wasmbin.Instrument(bin, wasmbin.Options{MaxMemoryPages: tt.max})
			if !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			ctx := context.Background()
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			c, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := c.ExportedMemories()["memory"].Max()
			if !ok || got != tt.wantMax {
				t.Errorf("got max %d (present %v), want %d", got, ok, tt.wantMax)
			}
		})
	}
}

func TestCustomSections(t *testing.T) {
	bin := fixture.WAT(t, counter, "")
	out, err := wasmbin.SetCustomSection(bin, "mesher.manifest", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	out, err = wasmbin.SetCustomSection(out, "mesher.manifest", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	data, ok, err := wasmbin.CustomSection(out, "mesher.manifest")
	if err != nil || !ok || string(data) != "two" {
		t.Fatalf("got %q %v %v, want the replaced section", data, ok, err)
	}
	secs, _ := wasmbin.Parse(out)
	n := 0
	for _, s := range secs {
		if s.Name == "mesher.manifest" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("got %d manifest sections, want 1", n)
	}
	if !bytes.Equal(wasmbin.Encode(secs), out) {
		t.Error("Parse then Encode changed the module")
	}
}

// TestInstrumentGoModule instruments a real Go-built module, which uses most
// of the instruction set, and checks it still compiles and that every
// function was rewritten.
func TestInstrumentGoModule(t *testing.T) {
	bin := fixture.Plugin(t, "noop")
	out, st, err := wasmbin.Instrument(bin, wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", CheckCalls: true, MaxMemoryPages: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if st.Functions < 1000 || st.Checks < st.Functions {
		t.Errorf("got %+v, want every function of a Go module rewritten", st)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(mustCache(t)))
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, out); err != nil {
		t.Fatalf("instrumented Go module does not compile: %v", err)
	}
}

func mustCache(t *testing.T) wazero.CompilationCache {
	c, err := wazero.NewCompilationCacheWithDir(fixture.CacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzInstrument checks that arbitrary bytes never panic the instrumenter.
func FuzzInstrument(f *testing.F) {
	matches, _ := filepath.Glob("../../host/wasm/testdata/*.wat")
	for _, m := range matches {
		src, _ := os.ReadFile(m)
		if strings.Contains(string(src), "abi_v1") {
			f.Add(fixture.WAT(f, string(src), ""))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, opt := range []wasmbin.Options{{YieldModule: "mesher", YieldName: "abi_v1", CheckCalls: true, MaxMemoryPages: 4}, {}} {
			out, _, err := wasmbin.Instrument(b, opt)
			if err == nil {
				if _, err := wasmbin.Parse(out); err != nil {
					t.Fatalf("instrumented output does not parse: %v", err)
				}
			}
		}
	})
}

func TestMergeData(t *testing.T) {
	src := `(module (memory (export "memory") 1)
  (data (i32.const 100) "ef") (data (i32.const 10) "ab") (data (i32.const 14) "cd")
  (func (export "at") (param i32) (result i32) (i32.load8_u (local.get 0))))`
	bin := fixture.WAT(t, src, "")
	out, st, err := wasmbin.Instrument(bin, wasmbin.Options{MergeGap: 8})
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments != 2 {
		t.Errorf("got %d segments, want 2 (10..16 merged, 100 apart)", st.Segments)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, b := range [][]byte{bin, out} {
		mod, err := r.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		mem, _ := mod.Memory().Read(0, 128)
		if got := string(bytes.Trim(mem[10:16], "\x00")); mem[10] != 'a' || mem[14] != 'c' || mem[12] != 0 || mem[100] != 'e' {
			t.Errorf("memory after instantiation: %q", got)
		}
	}
	passive := fixture.WAT(t, `(module (memory 1) (data "x") (data (i32.const 0) "y"))`, "")
	if out, st, err := wasmbin.Instrument(passive, wasmbin.Options{MergeGap: 8}); err != nil || st.Segments != 2 || !bytes.Equal(out, passive) {
		t.Errorf("module with a passive segment was changed: %d segments, %v", st.Segments, err)
	}
}
