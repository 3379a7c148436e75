package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
)

// benchEvents is the size of the benchmark's batch.
const benchEvents = 100

// corpus returns n realistic error events of about 1 KB, the same on every
// call. Events with an even index carry personal data (an e-mail address,
// an IP address, a card number, an Authorization header); the others carry
// none.
func corpus(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"TypeError", "KeyError", "TimeoutError", "ValueError", "ConnectionResetError"}
	funcs := []string{"handle_request", "load_user", "render", "charge", "fetch_orders", "dispatch", "validate"}
	files := []string{"app/views.py", "app/models.py", "lib/http/client.py", "app/billing.py", "app/tasks.py"}
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[r.IntN(16)]
		}
		return string(b)
	}
	events := make([][]byte, n)
	for i := range events {
		pii := i%2 == 0
		typ := types[r.IntN(len(types))]
		value := fmt.Sprintf("request %d failed after %d ms", r.IntN(100000), r.IntN(5000))
		user := map[string]any{"id": fmt.Sprintf("u-%d", r.IntN(1e6)), "segment": "paid"}
		headers := map[string]any{"Accept": "application/json", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0"}
		extra := map[string]any{"attempt": r.IntN(5), "queue": "default", "duration": r.Float64()}
		if pii {
			value = fmt.Sprintf("charge for user%d@example.com with card 4111 1111 1111 1111 failed", r.IntN(1000))
			user["ip_address"] = fmt.Sprintf("203.0.113.%d", r.IntN(256))
			headers["Authorization"] = "Bearer " + hex(32)
			extra["client"] = fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))
		}
		frames := make([]map[string]any, 3+r.IntN(3))
		for j := range frames {
			frames[j] = map[string]any{
				"filename": files[r.IntN(len(files))],
				"function": funcs[r.IntN(len(funcs))],
				"lineno":   1 + r.IntN(900),
				"in_app":   r.IntN(2) == 0,
			}
		}
		ev := map[string]any{
			"event_id":    hex(32),
			"timestamp":   fmt.Sprintf("2024-03-01T10:%02d:%02dZ", r.IntN(60), r.IntN(60)),
			"level":       "error",
			"platform":    "python",
			"release":     fmt.Sprintf("shop@2.%d.%d", r.IntN(10), r.IntN(30)),
			"environment": "production",
			"message":     typ + ": " + value,
			"exception": map[string]any{"values": []any{map[string]any{
				"type": typ, "value": value, "stacktrace": map[string]any{"frames": frames},
			}}},
			"user":     user,
			"request":  map[string]any{"url": "https://shop.example.com/api/orders/" + hex(8), "method": "POST", "headers": headers},
			"tags":     map[string]any{"region": "eu-west-1", "service": "checkout", "browser": "Firefox 123.0"},
			"contexts": map[string]any{"runtime": map[string]any{"name": "CPython", "version": "3.12.2"}},
			"extra":    extra,
		}
		b, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		events[i] = b
	}
	return events
}

// batch encodes events as input records 0..n-1.
func batch(events [][]byte) []byte {
	var in []byte
	for i, e := range events {
		in = abi.AppendRecord(in, &abi.Record{Index: uint32(i), Event: e})
	}
	return in
}

func TestCorpus(t *testing.T) {
	events := corpus(benchEvents)
	size := 0
	for _, e := range events {
		size += len(e)
	}
	if avg := size / len(events); avg < 800 || avg > 1300 {
		t.Errorf("got events of %d bytes on average, want about 1 KB", avg)
	}
	if again := corpus(benchEvents); string(again[7]) != string(events[7]) {
		t.Error("got a different corpus on the second call, want the same")
	}
	out, err := guest.Run(process, batch(events), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; len(out) > 0; i++ {
		r, rest, err := abi.DecodeRecord(out)
		if err != nil {
			t.Fatal(err)
		}
		out = rest
		if changed, want := r.Has.Contains(abi.FieldEvent), r.Index%2 == 0; changed != want {
			t.Errorf("event %d: got changed %v, want %v", r.Index, changed, want)
		}
	}
}

func BenchmarkScrub(b *testing.B) {
	in := batch(corpus(benchEvents))
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEvents), "ns/event")
	}
	b.Run("native", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := guest.Run(process, in, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
	b.Run("wasm", func(b *testing.B) {
		ctx := context.Background()
		rt, err := wasm.New(ctx, wasm.Config{CacheDir: fixture.CacheDir(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		m, err := rt.Load(ctx, fixture.Plugin(b, "scrub"))
		if err != nil {
			b.Fatal(err)
		}
		p := rt.NewProcessor("scrub", m, wasm.Limits{Instances: 1})
		defer p.Close(ctx)
		settings, err := m.Settings(nil)
		if err != nil {
			b.Fatal(err)
		}
		recs, err := p.Process(ctx, in, benchEvents, settings)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != benchEvents {
			b.Fatalf("got %d records, want %d", len(recs), benchEvents)
		}
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := p.Process(ctx, in, benchEvents, settings); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
}
