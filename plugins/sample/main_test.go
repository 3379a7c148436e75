package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/plugins/internal/plugintest"
)

var update = flag.Bool("update", false, "rewrite testdata/cases.json from the handler's output")

// uuids returns n random version 4 UUIDs, the same on every call.
func uuids(n int) []string {
	r := rand.New(rand.NewPCG(7, 11))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
			r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, 0x8000|r.Uint32()&0x3fff, r.Uint64()&0xffffffffffff)
	}
	return ids
}

// event returns an event with an id and a level ("" for none).
func event(id, level, message string) string {
	e := map[string]any{"event_id": id, "message": message, "platform": "go",
		"exception": map[string]any{"values": []any{map[string]any{"type": "TimeoutError", "value": "context deadline exceeded"}}}}
	if level != "" {
		e["level"] = level
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// kept runs events through the handler and returns the indexes of those
// passed on.
func kept(t *testing.T, config string, events []string) []int {
	t.Helper()
	var cfg []byte
	if config != "" {
		cfg = []byte(config)
	}
	recs, err := guest.RunEvents(process, cfg, events...)
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, len(recs))
	for i, r := range recs {
		if r.Has.Contains(abi.FieldError) {
			t.Fatalf("event %d failed: %s", r.Index, r.Error)
		}
		if r.Has.Contains(abi.FieldEvent) {
			t.Errorf("event %d: got it changed, want it passed on as it came", r.Index)
		}
		idx[i] = int(r.Index)
	}
	return idx
}

func TestUnit(t *testing.T) {
	for _, id := range append([]string{"", "a", "7f2c1a9be4d04c3c9a6ef0d1c2b3a4d5"}, uuids(5)...) {
		t.Run(id, func(t *testing.T) {
			h := fnv.New64a()
			h.Write([]byte(id))
			want := float64(h.Sum64()>>11) / (1 << 53)
			got := unit(id)
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
			if got < 0 || got >= 1 {
				t.Errorf("got %v, want a value in [0, 1)", got)
			}
		})
	}
}

func TestKeptFraction(t *testing.T) {
	const n = 10000
	ids := uuids(n)
	events := make([]string, n)
	for i, id := range ids {
		events[i] = event(id, "info", "request timed out")
	}
	tests := []struct {
		drop      float64
		tolerance float64
	}{
		{0, 0}, {0.01, 0.005}, {0.1, 0.02}, {0.25, 0.02}, {0.5, 0.02}, {0.75, 0.02}, {0.9, 0.02}, {0.99, 0.005}, {1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.drop), func(t *testing.T) {
			got := float64(len(kept(t, fmt.Sprintf(`{"drop":{"info":%v}}`, tt.drop), events))) / n
			if want := 1 - tt.drop; math.Abs(got-want) > tt.tolerance {
				t.Errorf("kept %.4f of the events, want %.4f ± %.3f", got, want, tt.tolerance)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	ids := uuids(1000)
	first := make([]string, len(ids))
	second := make([]string, len(ids))
	for i, id := range ids {
		first[i] = event(id, "warning", "first")
		// The same ids in reverse order, in different events.
		second[len(ids)-1-i] = event(id, "warning", fmt.Sprintf("second %d", i))
	}
	const config = `{"default_drop":0.5}`
	var a, b []string
	for _, i := range kept(t, config, first) {
		a = append(a, ids[i])
	}
	for _, i := range kept(t, config, second) {
		b = append(b, ids[len(ids)-1-i])
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Errorf("kept %d events of the first batch and %d of the second, or different ones; want the same ids kept", len(a), len(b))
	}
	if len(a) == 0 || len(a) == len(ids) {
		t.Errorf("kept %d of %d events, want some dropped and some kept", len(a), len(ids))
	}
}

// idWith returns an id whose unit is below (or not below) f.
func idWith(t *testing.T, f float64, below bool) string {
	t.Helper()
	for _, id := range uuids(100) {
		if (unit(id) < f) == below {
			return id
		}
	}
	t.Fatal("no such id")
	return ""
}

func TestLevels(t *testing.T) {
	const config = `{"drop":{"debug":1,"INFO":0,"warning":0.5,"error":0},"default_drop":1}`
	low, high := idWith(t, 0.5, true), idWith(t, 0.5, false)
	tests := []struct {
		name  string
		event string
		kept  bool
	}{
		{"level listed with 1", event(high, "debug", "x"), false},
		{"level listed with 0, other case", event(low, "info", "x"), true},
		{"level in the event in upper case", event(low, "DEBUG", "x"), false},
		{"hash below the fraction", event(low, "warning", "x"), false},
		{"hash above the fraction", event(high, "warning", "x"), true},
		{"no level is error", event(low, "", "x"), true},
		{"level not listed", event(high, "fatal", "x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(kept(t, config, []string{tt.event})) == 1; got != tt.kept {
				t.Errorf("got kept %v, want %v", got, tt.kept)
			}
		})
	}
}

func TestNothingToDropSkipsParsing(t *testing.T) {
	for _, config := range []string{``, `{"drop":{"debug":0},"default_drop":0}`} {
		t.Run(config, func(t *testing.T) {
			// An event that is not JSON fails only if it is parsed.
			if got := kept(t, config, []string{`not json`}); len(got) != 1 {
				t.Errorf("got %d records, want the event passed on", len(got))
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	const bad = `{"drop":{"debug":1.5,"info":-0.2,"warning":"half"},"default_drop":2}`
	run := func(config string) (kept int, warnings []string) {
		t.Helper()
		in := []string{event("a", "debug", "x"), event("b", "info", "x"), event("c", "warning", "x")}
		var batch []byte
		for i, e := range in {
			batch = abi.AppendRecord(batch, &abi.Record{Index: uint32(i), Event: []byte(e)})
		}
		out, err := guest.Run(process, batch, []byte(config), func(level int32, msg string) {
			if level != guest.LevelWarn {
				t.Errorf("logged %q at level %d, want %d", msg, level, guest.LevelWarn)
			}
			warnings = append(warnings, msg)
		})
		if err != nil {
			t.Fatal(err)
		}
		for len(out) > 0 {
			if _, out, err = abi.DecodeRecord(out); err != nil {
				t.Fatal(err)
			}
			kept++
		}
		return kept, warnings
	}
	want := []string{
		"default_drop is 2, above 1; using 1",
		"drop.debug is 1.5, above 1; using 1",
		"drop.info is -0.2, below 0; using 0",
		`drop.warning: want a number from 0 to 1, got "half"; ignored`,
	}
	steps := []struct {
		name     string
		config   string
		kept     int
		warnings []string
	}{
		{"valid config", `{}`, 3, nil},
		{"invalid config", bad, 1, want},
		{"same config", bad, 1, nil},
		{"valid config again", `{}`, 3, nil},
		{"invalid config again", bad, 1, want},
		{"drop not an object", `{"drop":[0.5]}`, 3, []string{"drop: want an object mapping levels to fractions, got [0.5]; ignored"}},
	}
	for _, s := range steps {
		kept, warnings := run(s.config)
		if kept != s.kept {
			t.Errorf("%s: kept %d events, want %d", s.name, kept, s.kept)
		}
		if !slices.Equal(warnings, s.warnings) {
			t.Errorf("%s: got warnings %q, want %q", s.name, warnings, s.warnings)
		}
	}
}

func TestManifestDefaults(t *testing.T) {
	plugintest.ManifestDefaults(t, "manifest.json", map[string]any{
		"drop":         map[string]any{},
		"default_drop": defaultDrop,
	})
}

func TestCases(t *testing.T) {
	plugintest.Native(t, "testdata/cases.json", process, *update)
}
