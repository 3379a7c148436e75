package batch

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

func TestMaxLevel(t *testing.T) {
	cases := []struct{ a, b, want string }{
		{"debug", "info", "info"},
		{"info", "warning", "warning"},
		{"warning", "error", "error"},
		{"error", "fatal", "fatal"},
		{"fatal", "debug", "fatal"},
		{"error", "error", "error"},
		{"bogus", "warning", "bogus"}, // unknown ranks as error
		{"bogus", "fatal", "fatal"},
		{"error", "bogus", "error"}, // a tie keeps a
	}
	for _, c := range cases {
		t.Run(c.a+"-"+c.b, func(t *testing.T) {
			if got := MaxLevel(c.a, c.b); got != c.want {
				t.Errorf("MaxLevel(%q, %q): got %q, want %q", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestFirstIndex(t *testing.T) {
	ev := func(p, id string) *store.Event { return &store.Event{ProjectID: p, ID: id} }
	events := []*store.Event{
		ev("p", "a"), ev("p", "b"), ev("q", "a"), ev("p", "A"), ev("P", "b"), ev("q", "a"),
		ev("p", "0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e"), ev("p", "0190F5C27B1A7CC39D2E3F4A5B6C7D8E"),
	}
	if got, want := FirstIndex(events), []int{0, 1, 2, 0, 1, 2, 6, 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("FirstIndex: got %v, want %v", got, want)
	}
}

func TestGroups(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 999, time.FixedZone("X", 3600))
	ev := func(p, fp, title, level string, sec int) *store.Event {
		return &store.Event{ProjectID: p, Fingerprint: fp, Title: title, Level: level, Timestamp: base.Add(time.Duration(sec) * time.Second)}
	}
	events := []*store.Event{
		ev("q", "b", "first b", "info", 5),
		ev("p", "b", "p b", "debug", 1),
		ev("q", "b", "second b", "fatal", 2),
		ev("q", "a", "a", "warning", 3),
		ev("q", "b", "skipped", "fatal", 0),
		ev("Q", "b", "third b", "error", 9),
	}
	got := Groups(events, func(i int) bool { return i != 4 })
	at := func(sec int) time.Time { return Micro(base.Add(time.Duration(sec) * time.Second)) }
	want := []*Group{
		{ProjectID: "p", Fingerprint: "b", Title: "p b", Level: "debug", Count: 1, FirstSeen: at(1), LastSeen: at(1), First: 1, Events: []int{1}},
		{ProjectID: "q", Fingerprint: "a", Title: "a", Level: "warning", Count: 1, FirstSeen: at(3), LastSeen: at(3), First: 3, Events: []int{3}},
		{ProjectID: "q", Fingerprint: "b", Title: "first b", Level: "fatal", Count: 3, FirstSeen: at(2), LastSeen: at(9), First: 0, Events: []int{0, 2, 5}},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			t.Logf("got %d: %+v", i, *got[i])
		}
		t.Errorf("Groups: got %d groups, want %+v", len(got), want)
	}
	if loc := got[0].FirstSeen.Location(); loc != time.UTC {
		t.Errorf("FirstSeen: got location %v, want UTC", loc)
	}
}

func TestParseUUID(t *testing.T) {
	cases := []struct {
		in   string
		want string // canonical; "" when invalid
	}{
		{"0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e", "0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e"},
		{"0190F5C2-7B1A-7CC3-9D2E-3F4A5B6C7D8E", "0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e"},
		{"0190f5c27b1a7cc39d2e3f4a5b6c7d8e", "0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e"},
		{"0190f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8", ""},
		{"0190f5c2+7b1a-7cc3-9d2e-3f4a5b6c7d8e", ""},
		{"zz90f5c2-7b1a-7cc3-9d2e-3f4a5b6c7d8e", ""},
		{"my-project", ""},
		{"", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			u, ok := ParseUUID(c.in)
			got := ""
			if ok {
				got = FormatUUID(u)
			}
			if got != c.want {
				t.Errorf("ParseUUID(%q): got %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	if got, want := CleanText("a\x00b\x00"), "a\uFFFDb\uFFFD"; got != want {
		t.Errorf("CleanText: got %q, want %q", got, want)
	}
	if got, want := CleanText("a\xffb"), "a\uFFFDb"; got != want {
		t.Errorf("CleanText: got %q, want %q", got, want)
	}
	if got := CleanText("plain"); got != "plain" {
		t.Errorf("CleanText: got %q, want %q", got, "plain")
	}
}

func TestCleanJSON(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"unchanged", `{"a":"b"}`, `{"a":"b"}`},
		{"NUL escape", `{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{"escaped backslash", `{"a":"C:\\u0000"}`, `{"a":"C:\\u0000"}`},
		{"both", `["\\\u0000", "\\u0000", "\u0000\u0000"]`, `["\\\ufffd", "\\u0000", "\ufffd\ufffd"]`},
		{"other escapes", `{"a":"\u0001\n\"\u0000"}`, `{"a":"\u0001\n\"\ufffd"}`},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "{\"a\":\"\uFFFD\"}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(CleanJSON([]byte(c.in))); got != c.want {
				t.Errorf("CleanJSON(%s): got %s, want %s", c.in, got, c.want)
			}
		})
	}
}

// FuzzCleanJSON checks that cleaning keeps valid JSON valid, removes every
// NUL, and changes nothing else.
func FuzzCleanJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"x\u0000y"}`, `["\\\u0000", "\\u0000"]`, `"\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var before any
		if json.Unmarshal(in, &before) != nil {
			return
		}
		out := CleanJSON(in)
		var after any
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("CleanJSON(%q) = %q: not JSON: %v", in, out, err)
		}
		if want := cleanValue(before); !reflect.DeepEqual(after, want) {
			t.Fatalf("CleanJSON(%q) = %q: decodes to %#v, want %#v", in, out, after, want)
		}
	})
}

// cleanValue is what CleanJSON does, on a decoded value: NULs in strings
// and keys become U+FFFD.
func cleanValue(v any) any {
	switch v := v.(type) {
	case string:
		return CleanText(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = cleanValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[CleanText(k)] = cleanValue(x)
		}
		return out
	}
	return v
}
