package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		err   string
		check func(t *testing.T, n *Normalized, body map[string]any)
	}{
		{"minimal", `{"message":"boom"}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if b["level"] != "error" || b["timestamp"] != now.Format(time.RFC3339Nano) || b["event_id"] != n.ID || len(n.ID) != 36 {
				t.Errorf("got %v", b)
			}
		}},
		{"unknown fields kept", `{"message":"m","custom":{"deep":[1,2]}}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if b["custom"].(map[string]any)["deep"].([]any)[1] != 2.0 {
				t.Errorf("custom field lost: %v", b)
			}
		}},
		{"client id canonicalised", `{"message":"m","event_id":"6F1C2A3B4D5E4F608A7B000000000001"}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if n.ID != "6f1c2a3b-4d5e-4f60-8a7b-000000000001" {
				t.Errorf("got id %s", n.ID)
			}
		}},
		{"timestamp to UTC", `{"message":"m","timestamp":"2026-11-27T12:00:00+02:00"}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if b["timestamp"] != "2026-11-27T10:00:00Z" {
				t.Errorf("got %v", b["timestamp"])
			}
		}},
		{"unix timestamp", `{"message":"m","timestamp":1764237600.5}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if b["timestamp"] != "2025-11-27T10:00:00.5Z" {
				t.Errorf("got %v", b["timestamp"])
			}
		}},
		{"level alias", `{"message":"m","level":"WARN"}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if b["level"] != "warning" {
				t.Errorf("got %v", b["level"])
			}
		}},
		{"sentry tag pairs", `{"message":"m","tags":[["a","1"],["b",2]]}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if tags := b["tags"].(map[string]any); tags["a"] != "1" || tags["b"] != "2" {
				t.Errorf("got %v", tags)
			}
		}},
		{"exception only", `{"exception":{"values":[{"type":"E","value":"v"}]}}`, "", nil},
		{"exception as array", `{"exception":[{"type":"E"}]}`, "", nil},
		{"sentry message object", `{"message":{"formatted":"hello"}}`, "", func(t *testing.T, n *Normalized, b map[string]any) {
			if n.Message != "hello" {
				t.Errorf("got message %q", n.Message)
			}
		}},
		{"no message or exception", `{"level":"error"}`, `"message" must be a non-empty string unless the event has an "exception"`, nil},
		{"empty message", `{"message":""}`, `"message" must be a non-empty string`, nil},
		{"bad level", `{"message":"m","level":"loud"}`, `"level" must be one of debug, info, warning, error, fatal, got "loud"`, nil},
		{"level not a string", `{"message":"m","level":3}`, `"level" must be a string`, nil},
		{"bad id", `{"message":"m","event_id":"nope"}`, `"event_id" must be a UUID, got "nope"`, nil},
		{"bad timestamp", `{"message":"m","timestamp":"yesterday"}`, `"timestamp" must be RFC 3339 or Unix seconds`, nil},
		{"bad tags", `{"message":"m","tags":"x"}`, `"tags" must be an object`, nil},
		{"nested tag value", `{"message":"m","tags":{"a":{"b":1}}}`, `value of "a" must be a string, number or boolean`, nil},
		{"bad exception", `{"exception":"boom"}`, `"exception" must be`, nil},
		{"bad fingerprint", `{"message":"m","fingerprint":{"a":1}}`, `"fingerprint" must be a string or an array of strings`, nil},
		{"not an object", `[1]`, "event must be a JSON object", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Normalize(json.RawMessage(tt.in), -1, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.Unmarshal(n.Body, &body); err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, n, body)
			}
		})
	}
}

func TestNormalizeNamesBulkIndex(t *testing.T) {
	_, err := Normalize(json.RawMessage(`{"message":1}`), 7, now)
	if err == nil || !strings.HasPrefix(err.Error(), `event 7: "message"`) {
		t.Fatalf("got %v, want the bulk index named", err)
	}
}

func fp(t *testing.T, in string) string {
	t.Helper()
	n, err := Normalize(json.RawMessage(in), -1, now)
	if err != nil {
		t.Fatal(err)
	}
	return Fingerprint("", &n.fields)
}

func TestDefaultFingerprint(t *testing.T) {
	frames := func(line int, fn string) string {
		return `{"exception":{"values":[{"type":"KeyError","value":"id ` + fn + `","stacktrace":{"frames":[` +
			`{"module":"app.views","function":"` + fn + `","lineno":` + strings.Repeat("1", line) + `}]}}]}}`
	}
	same := []struct{ name, a, b string }{
		{"line numbers ignored", frames(1, "get"), frames(3, "get")},
		{"exception value ignored with frames", frames(1, "get"), strings.Replace(frames(1, "get"), `"id get"`, `"other"`, 1)},
		{"numbers in messages", `{"message":"timeout after 31 ms"}`, `{"message":"timeout after 2000 ms"}`},
		{"uuids in messages", `{"message":"user 6f1c2a3b-4d5e-4f60-8a7b-000000000001 missing"}`, `{"message":"user 11111111-2222-3333-4444-555555555555 missing"}`},
		{"custom fingerprint wins", `{"message":"a","fingerprint":["x","y"]}`, `{"message":"b","fingerprint":["x","y"]}`},
		{"custom string", `{"message":"a","fingerprint":"x"}`, `{"message":"b","fingerprint":["x"]}`},
		{"type and value without frames", `{"exception":{"values":[{"type":"E","value":"bad 1"}]}}`, `{"exception":{"values":[{"type":"E","value":"bad 2"}]}}`},
	}
	for _, tt := range same {
		if fp(t, tt.a) != fp(t, tt.b) {
			t.Errorf("%s: fingerprints differ", tt.name)
		}
	}
	differ := []struct{ name, a, b string }{
		{"different function", frames(1, "get"), frames(1, "post")},
		{"different message", `{"message":"disk full"}`, `{"message":"disk empty"}`},
		{"different type", `{"exception":[{"type":"A","value":"v"}]}`, `{"exception":[{"type":"B","value":"v"}]}`},
		{"custom vs message", `{"message":"x","fingerprint":"x"}`, `{"message":"x"}`},
	}
	for _, tt := range differ {
		if fp(t, tt.a) == fp(t, tt.b) {
			t.Errorf("%s: fingerprints equal", tt.name)
		}
	}
	n, _ := Normalize(json.RawMessage(`{"message":"a"}`), -1, now)
	if Fingerprint("set by processor", &n.fields) == fp(t, `{"message":"a"}`) {
		t.Error("a processor's fingerprint did not override the default")
	}
}

func TestTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"message":"first line\nsecond"}`, "first line"},
		{`{"exception":[{"type":"KeyError","value":"'id'"}]}`, "KeyError: 'id'"},
		{`{"exception":[{"type":"KeyError"}]}`, "KeyError"},
		{`{"message":"` + strings.Repeat("x", 300) + `"}`, strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		n, err := Normalize(json.RawMessage(tt.in), -1, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := Title("", &n.fields); got != tt.want {
			t.Errorf("Title(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRateLimiterRefills(t *testing.T) {
	clock := now
	l := NewRateLimiter(func() time.Time { return clock })
	if ok, _ := l.Allow("p", 10, 5, 10); !ok {
		t.Fatal("a full bucket refused its burst")
	}
	ok, wait := l.Allow("p", 1, 5, 10)
	if ok || wait != time.Second {
		t.Fatalf("got %v %v, want refused with Retry-After 1s", ok, wait)
	}
	clock = clock.Add(400 * time.Millisecond) // 2 tokens back
	if ok, _ := l.Allow("p", 2, 5, 10); !ok {
		t.Fatal("tokens did not refill")
	}
	if ok, _ := l.Allow("p", 1, 5, 10); ok {
		t.Fatal("more tokens than refilled")
	}
	clock = clock.Add(time.Hour) // the window really resets: a full bucket, not more
	if ok, _ := l.Allow("p", 10, 5, 10); !ok {
		t.Fatal("bucket did not refill completely")
	}
	if ok, _ := l.Allow("p", 1, 5, 10); ok {
		t.Fatal("bucket refilled beyond its burst")
	}
	if ok, _ := l.Allow("other", 10, 5, 10); !ok {
		t.Fatal("projects share a bucket")
	}
	if ok, _ := l.Allow("p", 1000, 0, 0); !ok {
		t.Fatal("rate 0 should mean no limit")
	}
	ok, wait = l.Allow("big", 50, 5, 10)
	if !ok {
		t.Fatalf("a request larger than the burst is judged against a full bucket: got refused, wait %v", wait)
	}
}

// FuzzNormalize checks that any input either is refused with a FieldError
// or becomes a JSON object whose event_id, level and timestamp are the
// ones Normalize reports.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		`{"message":"m"}`, `{"exception":{"values":[{"type":"E","value":1,"stacktrace":{"frames":[{"function":"f","in_app":true}]}}]}}`,
		`{"message":"m","tags":[["a",1]],"timestamp":1.5,"level":"WARN","fingerprint":["a"]}`,
		`{"message":{"formatted":"x"},"event_id":"6F1C2A3B4D5E4F608A7B000000000001"}`, `[]`, `{"message":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := Normalize(in, -1, now)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		var body map[string]any
		if err := json.Unmarshal(n.Body, &body); err != nil {
			t.Fatalf("body %s: %v", n.Body, err)
		}
		if body["event_id"] != n.ID || body["level"] != n.Level || body["timestamp"] != n.Timestamp.Format(time.RFC3339Nano) {
			t.Fatalf("body %s disagrees with %s %s %s", n.Body, n.ID, n.Level, n.Timestamp)
		}
	})
}
