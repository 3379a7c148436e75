package wasm_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/wasmbin"
)

// realistic returns a batch of n events of about 1 KB.
func realistic(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		ev := fmt.Sprintf(`{"event_id":"6f1c2a3b-4d5e-4f60-8a7b-%012d","timestamp":"2026-11-27T10:00:00Z","level":"error",`+
			`"message":"connection to db-%d refused","platform":"go","environment":"production","release":"2.4.1",`+
			`"exception":{"values":[{"type":"ConnectionError","value":"dial tcp: connection refused","stacktrace":{"frames":[`+
			`{"module":"main","function":"main","filename":"main.go","lineno":12},`+
			`{"module":"db","function":"Connect","filename":"db/conn.go","lineno":88},`+
			`{"module":"net","function":"Dial","filename":"net/dial.go","lineno":301}]}}]},`+
			`"tags":{"region":"eu-west","shard":"%d"},"user":{"id":"u-%d","email":"user%d@example.com"},`+
			`"request":{"url":"https://api.example.com/v1/orders/%d","method":"POST","headers":{"User-Agent":"curl/8"}},`+
			`"extra":{"attempt":3,"pool":"primary","note":"retrying with backoff after the primary pool timed out"}}`, i, i%7, i%16, i, i, i)
		b = abi.AppendRecord(b, &abi.Record{Index: uint32(i), Event: []byte(ev)})
	}
	return b
}

func perEvent(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// BenchmarkNoop measures what the Wasm boundary costs per event: the noop
// processor in Wasm against the same SDK code run natively.
func BenchmarkNoop(b *testing.B) {
	r := newRuntime(b, wasm.Config{})
	p := r.NewProcessor("noop", load(b, r, fixture.Plugin(b, "noop")), wasm.Limits{})
	ctx := context.Background()
	for _, n := range []int{1, 10, 100, 1000} {
		in := realistic(n)
		b.Run(fmt.Sprintf("native/batch=%d", n), func(b *testing.B) {
			noop := func(*guest.Event) error { return nil }
			for i := 0; i < b.N; i++ {
				if _, err := guest.Run(noop, in, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b, n)
		})
		b.Run(fmt.Sprintf("wasm/batch=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := p.Process(ctx, in, n, nil); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b, n)
		})
	}
}

// BenchmarkInterrupt compares the ways of stopping a runaway guest on a Go
// guest (noop, batches of 100) and on a tight loop (spin, 10^6 iterations).
func BenchmarkInterrupt(b *testing.B) {
	ctx := context.Background()
	modes := []wasm.Interrupt{wasm.InterruptNone, wasm.InterruptLoops, wasm.InterruptLoopsAndCalls, wasm.InterruptContext}
	guests := []struct {
		name   string
		bin    []byte
		n      int
		unit   string
		perRun float64
	}{
		{"noop", fixture.Plugin(b, "noop"), 100, "ns/event", 100},
		{"spin", testdata(b, "spin"), 1, "ns/iteration", 1e6},
	}
	if bin, err := os.ReadFile(filepath.Join(fixture.Root(b), "build", "plugins", "scrub.wasm")); err == nil {
		guests = append(guests, struct {
			name   string
			bin    []byte
			n      int
			unit   string
			perRun float64
		}{"scrub", bin, 100, "ns/event", 100})
	}
	for _, g := range guests {
		in := realistic(g.n)
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/%s", g.name, mode), func(b *testing.B) {
				r := newRuntime(b, wasm.Config{Interrupt: mode})
				p := r.NewProcessor(g.name, load(b, r, g.bin), wasm.Limits{})
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := p.Process(ctx, in, g.n, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*g.perRun), g.unit)
			})
		}
	}
}

// BenchmarkStart measures getting a processor ready: compiling cold,
// loading from the on-disk compilation cache (as after a restart), and
// starting an instance of a module already compiled in this process.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	bin := fixture.Plugin(b, "noop")
	b.Run("compile-cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := wasm.New(ctx, wasm.Config{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Load(ctx, bin); err != nil {
				b.Fatal(err)
			}
			r.Close(ctx)
		}
	})
	dir := b.TempDir()
	warm, _ := wasm.New(ctx, wasm.Config{CacheDir: dir})
	if _, err := warm.Load(ctx, bin); err != nil {
		b.Fatal(err)
	}
	warm.Close(ctx)
	b.Run("ready-from-disk-cache", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := wasm.New(ctx, wasm.Config{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			m, err := r.Load(ctx, bin)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.NewProcessor("noop", m, wasm.Limits{}).Warm(ctx); err != nil {
				b.Fatal(err)
			}
			r.Close(ctx)
		}
	})
	b.Run("parts/sha256", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sha256.Sum256(bin)
		}
	})
	b.Run("parts/instrument", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, _, err := wasmbin.Instrument(bin, wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", CheckCalls: true, MaxMemoryPages: 1024}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parts/wazero-compile-from-disk-cache", func(b *testing.B) {
		inst, _, _ := wasmbin.Instrument(bin, wasmbin.Options{YieldModule: "mesher", YieldName: "abi_v1", CheckCalls: true, MaxMemoryPages: 1024})
		cache, _ := wazero.NewCompilationCacheWithDir(dir)
		for i := 0; i < b.N; i++ {
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCustomSections(true).WithDebugInfoEnabled(false))
			if _, err := r.CompileModule(ctx, inst); err != nil {
				b.Fatal(err)
			}
			r.Close(ctx)
		}
	})
	r := newRuntime(b, wasm.Config{CacheDir: dir})
	m := load(b, r, bin)
	b.Run("instance-start", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p := r.NewProcessor("noop", m, wasm.Limits{})
			if err := p.Warm(ctx); err != nil {
				b.Fatal(err)
			}
			p.Close(ctx)
		}
	})
	p := r.NewProcessor("noop", m, wasm.Limits{})
	in := realistic(1)
	b.Run("pooled-batch-of-1", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := p.Process(ctx, in, 1, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
