package embedded

import "testing"

func TestExceptionText(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"wrapped", `{"exception": {"values": [{"type": "E", "value": "one"}, {"value": "two"}]}}`, "one two"},
		{"bare array", `{"exception":[{"value":"one"}]}`, "one"},
		{"after other members", `{"a": "x\"y", "b": {"exception": {"values": [{"value": "nested"}]}}, "n": 1.5e3, "t": true, "exception": [{"value": "top"}]}`, "top"},
		{"nested only", `{"extra": {"exception": [{"value": "nested"}]}}`, ""},
		{"string value", `{"message": "exception", "exception": "boom"}`, ""},
		{"non-string values", `{"exception": [{"value": 42}, {"value": "ok"}, {}]}`, "ok"},
		{"no exception", `{"message": "hi"}`, ""},
		{"not an object", `["exception"]`, ""},
		{"truncated", `{"a": [1, 2, {"exception": `, ""},
		{"malformed", `{"exception" [{"value": "x"}]}`, ""},
		{"empty", ``, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exceptionText([]byte(c.body)); got != c.want {
				t.Errorf("exceptionText(%s): got %q, want %q", c.body, got, c.want)
			}
		})
	}
}

func FuzzExceptionText(f *testing.F) {
	for _, s := range []string{`{"exception": {"values": [{"value": "one"}]}}`, `{"a": "\"", "exception": [{"value": "x"}]}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		exceptionText(body) // must not panic
	})
}
