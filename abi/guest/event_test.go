package guest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/abi"
)

func TestEventOutputs(t *testing.T) {
	tests := []struct {
		name    string
		handler Handler
		in      string
		check   func(t *testing.T, recs []abi.Record)
	}{
		{"untouched events are kept without a body", func(*Event) error { return nil }, `{"a":1}`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 1 || recs[0].Event != nil {
					t.Fatalf("got %+v, want one plain keep", recs)
				}
			}},
		{"reading does not re-encode", func(e *Event) error { _ = e.GetString("a"); return nil }, `{"a":1}`,
			func(t *testing.T, recs []abi.Record) {
				if recs[0].Event != nil {
					t.Fatalf("got body %s after a read", recs[0].Event)
				}
			}},
		{"drop", func(e *Event) error { e.Drop(); return nil }, `{}`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 0 {
					t.Fatalf("got %+v, want nothing", recs)
				}
			}},
		{"fan out", func(e *Event) error {
			c := NewObject()
			c.SetKey("message", NewString("child"))
			e.Emit(NewEvent(c))
			e.Drop()
			return nil
		}, `{}`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 1 || string(recs[0].Event) != `{"message":"child"}` || recs[0].Index != 0 {
					t.Fatalf("got %+v, want the child only", recs)
				}
			}},
		{"error", func(*Event) error { return errors.New("nope") }, `{}`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 1 || recs[0].Error != "nope" {
					t.Fatalf("got %+v, want an error record", recs)
				}
			}},
		{"panic becomes error", func(*Event) error { panic("kaput") }, `{}`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 1 || recs[0].Error != "panic: kaput" {
					t.Fatalf("got %+v, want a panic error record", recs)
				}
			}},
		{"invalid json is an error for that event", func(e *Event) error { e.SetTag("a", "b"); return nil }, `{nope`,
			func(t *testing.T, recs []abi.Record) {
				if len(recs) != 1 || !strings.Contains(recs[0].Error, "json:") {
					t.Fatalf("got %+v, want a parse error record", recs)
				}
			}},
		{"attributes", func(e *Event) error { e.SetFingerprint(""); e.SetTitle("T"); e.SetLevel("info"); return nil }, `{"level":"error"}`,
			func(t *testing.T, recs []abi.Record) {
				r := recs[0]
				if !r.Has.Contains(abi.FieldFingerprint) || r.Fingerprint != "" || r.Title != "T" || string(r.Event) != `{"level":"info"}` {
					t.Fatalf("got %+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := RunEvents(tt.handler, nil, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, recs)
		})
	}
}

func TestConfigHelpers(t *testing.T) {
	var got []string
	h := func(e *Event) error {
		got = []string{
			ConfigString("s", "def"), ConfigString("missing", "def"),
			strings.Join(ConfigStrings("list", nil), "+"),
		}
		if f := ConfigFloat("f", -1); f != 0.25 {
			t.Errorf("ConfigFloat = %v, want 0.25", f)
		}
		if b := ConfigBool("b", false); !b {
			t.Error("ConfigBool = false, want true")
		}
		return nil
	}
	if _, err := RunEvents(h, []byte(`{"s":"v","list":["a",1,"b"],"f":0.25,"b":true}`), `{}`); err != nil {
		t.Fatal(err)
	}
	if want := "v,def,a+b"; strings.Join(got, ",") != want {
		t.Errorf("got %q, want %q", strings.Join(got, ","), want)
	}
}

// TestPanicsInABatch checks that a panicking handler fails only its own
// event, wherever it is in the batch.
func TestPanicsInABatch(t *testing.T) {
	h := func(e *Event) error {
		switch e.GetString("n") {
		case "1", "2", "4":
			panic("kaput " + e.GetString("n"))
		}
		e.SetTag("ok", "yes")
		return nil
	}
	recs, err := RunEvents(h, nil, `{"n":"0"}`, `{"n":"1"}`, `{"n":"2"}`, `{"n":"3"}`, `{"n":"4"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("got %d records, want 5", len(recs))
	}
	for i, r := range recs {
		failed := i == 1 || i == 2 || i == 4
		if r.Index != uint32(i) {
			t.Errorf("record %d has index %d", i, r.Index)
		}
		if failed && r.Error != fmt.Sprintf("panic: kaput %d", i) {
			t.Errorf("record %d: got error %q, want the panic", i, r.Error)
		}
		if !failed && (r.Error != "" || !strings.Contains(string(r.Event), `"ok":"yes"`)) {
			t.Errorf("record %d: got %+v, want the tagged event", i, r)
		}
	}
}

// countingHost counts the calls for the whole configuration.
type countingHost struct {
	nativeHost
	rawCalls int
}

func (h *countingHost) config(key string) ([]byte, bool) {
	if key == "" {
		h.rawCalls++
	}
	return h.nativeHost.config(key)
}

func TestConfigRawOncePerBatch(t *testing.T) {
	ch := &countingHost{nativeHost: nativeHost{raw: []byte(`{"a":1}`)}}
	prev := host
	host = ch
	defer func() { host = prev }()
	var seen []string
	h := func(*Event) error {
		seen = append(seen, string(ConfigRaw()))
		return nil
	}
	in := abi.AppendRecord(nil, &abi.Record{Index: 0, Event: []byte(`{}`)})
	in = abi.AppendRecord(in, &abi.Record{Index: 1, Event: []byte(`{}`)})
	if _, err := processBatch(in, h, nil, nil); err != nil {
		t.Fatal(err)
	}
	ch.raw = []byte(`{"a":2}`)
	if _, err := processBatch(in, h, nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := `{"a":1},{"a":1},{"a":2},{"a":2}`; strings.Join(seen, ",") != want {
		t.Errorf("got %s, want %s", strings.Join(seen, ","), want)
	}
	if ch.rawCalls != 2 {
		t.Errorf("asked the host %d times, want once per batch", ch.rawCalls)
	}
	ch.raw = nil
	if _, err := processBatch(in, h, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := seen[len(seen)-1]; got != "{}" {
		t.Errorf("without configuration got %s, want {}", got)
	}
}
