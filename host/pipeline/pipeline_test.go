package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
)

type env struct {
	t  *testing.T
	rt *wasm.Runtime
}

func newEnv(t *testing.T) *env {
	rt, err := wasm.New(context.Background(), wasm.Config{CacheDir: fixture.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return &env{t: t, rt: rt}
}

func (e *env) step(name string, bin []byte, config string) pipeline.Step {
	e.t.Helper()
	m, err := e.rt.Load(context.Background(), bin)
	if err != nil {
		e.t.Fatal(err)
	}
	var s *wasm.Settings
	if config != "" {
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal([]byte(config), &cfg); err != nil {
			e.t.Fatal(err)
		}
		if s, err = m.Settings(cfg); err != nil {
			e.t.Fatal(err)
		}
	}
	return pipeline.Step{Processor: e.rt.NewProcessor(name, m, wasm.Limits{}), Settings: s}
}

func (e *env) wat(name, file, manifest string) []byte {
	return fixture.WATFile(e.t, file, manifest)
}

func events(ids ...string) []pipeline.Event {
	out := make([]pipeline.Event, len(ids))
	for i, id := range ids {
		out[i] = pipeline.Event{ID: id, Body: json.RawMessage(`{"event_id":"` + id + `","message":"m` + id + `","level":"error"}`)}
	}
	return out
}

func field(t *testing.T, body json.RawMessage, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return m[key]
}

func TestRealProcessors(t *testing.T) {
	e := newEnv(t)
	root := fixture.Root(t)
	noop := e.step("noop", fixture.Plugin(t, "noop"), "")
	warn := e.step("warn", e.wat("warn", filepath.Join(root, "abi/testdata/warn.wat"), `{"name":"warn","version":"1"}`), "")
	dup := e.step("dup", e.wat("dup", "testdata/dup.wat", `{"name":"dup","version":"1"}`), "")
	drop := e.step("drop", e.wat("drop", "testdata/drop.wat", `{"name":"drop","version":"1"}`), "")
	trap := e.step("trap", e.wat("trap", filepath.Join(root, "host/wasm/testdata/trap.wat"), `{"name":"trap","version":"1"}`), "")
	title := e.step("echo", e.wat("echo", filepath.Join(root, "host/wasm/testdata/echo_config.wat"),
		`{"name":"echo","version":"1","config":[{"key":"title","type":"string"}]}`), `{"title":"configured"}`)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	t.Run("noop keeps bodies byte for byte", func(t *testing.T) {
		in := events("a", "b")
		out, err := (&pipeline.Pipeline{Steps: []pipeline.Step{noop}}).Run(context.Background(), events("a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || string(out[0].Body) != string(in[0].Body) || out[1].ID != "b" {
			t.Fatalf("got %+v", out)
		}
	})
	t.Run("steps run in order with their own config", func(t *testing.T) {
		p := &pipeline.Pipeline{Steps: []pipeline.Step{noop, warn, title, dup}}
		out, err := p.Run(context.Background(), events("a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 4 {
			t.Fatalf("got %d events, want 4 (2 fanned out to 2 each)", len(out))
		}
		for i, ev := range out {
			if lvl := field(t, ev.Body, "level"); lvl != "warning" {
				t.Errorf("event %d: level %v, want warning", i, lvl)
			}
			if tags, _ := field(t, ev.Body, "tags").(map[string]any); tags["source"] != "wat" {
				t.Errorf("event %d: tags %v, want source=wat", i, tags)
			}
			if ev.Title != `"configured"` {
				t.Errorf("event %d: title %q, want the configured one", i, ev.Title)
			}
			if field(t, ev.Body, "event_id") != ev.ID {
				t.Errorf("event %d: body event_id %v differs from id %s", i, field(t, ev.Body, "event_id"), ev.ID)
			}
		}
		if out[0].ID != "a" || out[0].Fingerprint != "" || out[1].Fingerprint != "dup" || !uuid.MatchString(out[1].ID) {
			t.Errorf("fan-out: got ids %s, %s and fingerprints %q, %q", out[0].ID, out[1].ID, out[0].Fingerprint, out[1].Fingerprint)
		}
		if out[1].ID != pipeline.DerivedID("a", 1) || out[3].ID != pipeline.DerivedID("b", 1) || out[1].ID == out[3].ID {
			t.Errorf("derived ids are not stable per parent: %s %s", out[1].ID, out[3].ID)
		}
	})
	t.Run("drop", func(t *testing.T) {
		out, err := (&pipeline.Pipeline{Steps: []pipeline.Step{drop, warn}}).Run(context.Background(), events("a"))
		if err != nil || len(out) != 0 {
			t.Fatalf("got %v %v, want nothing", out, err)
		}
	})
	t.Run("a failing processor flags events and the rest still run", func(t *testing.T) {
		out, err := (&pipeline.Pipeline{Steps: []pipeline.Step{trap, warn}}).Run(context.Background(), events("a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 {
			t.Fatalf("got %d events, want both kept", len(out))
		}
		for _, ev := range out {
			if len(ev.Flags) != 1 || ev.Flags[0].Processor != "trap" || ev.Flags[0].Reason != "trap" {
				t.Errorf("got flags %+v, want one trap flag", ev.Flags)
			}
			if field(t, ev.Body, "level") != "warning" {
				t.Error("the step after the failing one did not run")
			}
		}
	})
}

// fake is a Processor whose output a test dictates.
type fake struct {
	name string
	fn   func(n int) ([]abi.Record, error)
}

func (f fake) Name() string { return f.name }
func (f fake) Process(_ context.Context, _ []byte, n int, _ *wasm.Settings) ([]abi.Record, error) {
	return f.fn(n)
}

func TestApplyEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		recs  []abi.Record
		err   error
		check func(t *testing.T, out []pipeline.Event)
	}{
		{"per-event error keeps the event flagged", []abi.Record{{Index: 0, Error: "bad", Has: 1 << abi.FieldError}, {Index: 1}}, nil,
			func(t *testing.T, out []pipeline.Event) {
				if len(out) != 2 || len(out[0].Flags) != 1 || out[0].Flags[0].Reason != pipeline.ReasonEventError || len(out[1].Flags) != 0 {
					t.Fatalf("got %+v", out)
				}
			}},
		{"replacement that is not an object is refused", []abi.Record{{Index: 0, Event: []byte(`[1]`), Has: 1 << abi.FieldEvent}, {Index: 1}}, nil,
			func(t *testing.T, out []pipeline.Event) {
				if len(out) != 2 || out[0].Flags[0].Reason != pipeline.ReasonInvalidEvent || !strings.Contains(string(out[0].Body), `"ma"`) {
					t.Fatalf("got %+v", out)
				}
			}},
		{"replacement keeps the id", []abi.Record{{Index: 0, Event: []byte(`{"event_id":"other","x":1}`), Has: 1 << abi.FieldEvent}}, nil,
			func(t *testing.T, out []pipeline.Event) {
				if out[0].ID != "a" || field(t, out[0].Body, "event_id") != "a" || field(t, out[0].Body, "x") != 1.0 {
					t.Fatalf("got %+v %s", out, out[0].Body)
				}
			}},
		{"tags merge into existing tags", []abi.Record{{Index: 0, Tags: []abi.Tag{{Key: "k", Value: "v"}}}}, nil,
			func(t *testing.T, out []pipeline.Event) {
				if tags := field(t, out[0].Body, "tags").(map[string]any); tags["k"] != "v" || tags["old"] != "1" {
					t.Fatalf("got tags %v", tags)
				}
			}},
		{"quarantined processor passes events on", nil, &wasm.ProcessError{Processor: "f", Reason: wasm.ReasonQuarantined, Err: wasm.ErrQuarantined},
			func(t *testing.T, out []pipeline.Event) {
				if len(out) != 2 || out[0].Flags[0].Reason != "quarantined" {
					t.Fatalf("got %+v", out)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []pipeline.Event{
				{ID: "a", Body: json.RawMessage(`{"event_id":"a","message":"ma","tags":{"old":"1"}}`)},
				{ID: "b", Body: json.RawMessage(`{"event_id":"b","message":"mb"}`)},
			}
			p := &pipeline.Pipeline{Steps: []pipeline.Step{{Processor: fake{"f", func(int) ([]abi.Record, error) { return tt.recs, tt.err }}}}}
			out, err := p.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &pipeline.Pipeline{Steps: []pipeline.Step{{Processor: fake{"f", func(int) ([]abi.Record, error) { return nil, nil }}}}}
	if _, err := p.Run(ctx, events("a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
