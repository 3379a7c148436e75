package main

import (
	"flag"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/plugins/internal/plugintest"
)

var update = flag.Bool("update", false, "rewrite testdata/cases.json from the handler's output")

const (
	typeError = `{"level":"error","message":"TypeError: x is undefined","exception":{"values":[{"type":"TypeError","value":"x is undefined"}]},"tags":{"customer":"acme"},"extra":{"code":503,"ok":false,"ids":[1,2]}}`
	timeout   = `{"level":"warning","message":"Timeout after 30s calling payments","tags":{"customer":""},"extra":{"code":504}}`
	chained   = `{"message":"wrapped","exception":{"values":[{"type":"IOError","value":"disk"},{"type":"RuntimeError","value":"wrapped"}]}}`
)

// result is what the handler set on one event; nil means nothing.
type result struct {
	fingerprint, title *string
}

func str(s string) *string { return &s }

func run(t *testing.T, config string, events ...string) []abi.Record {
	t.Helper()
	var cfg []byte
	if config != "" {
		cfg = []byte(config)
	}
	recs, err := guest.RunEvents(process, cfg, events...)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(events) {
		t.Fatalf("got %d records, want %d", len(recs), len(events))
	}
	return recs
}

func TestRules(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		event string
		want  result
	}{
		{"no rules", ``, typeError, result{}},
		{"empty rules", `[]`, typeError, result{}},
		{"by exception type",
			`[{"match":{"exception.values.0.type":"*"},"group_by":["exception.values.0.type"]}]`,
			typeError, result{fingerprint: str("rule#0|TypeError")}},
		{"by exception type, no exception",
			`[{"match":{"exception.values.0.type":"*"},"group_by":["exception.values.0.type"]}]`,
			timeout, result{}},
		{"by customer, named",
			`[{"name":"by-customer","match":{"tags.customer":"*"},"group_by":["tags.customer"]}]`,
			typeError, result{fingerprint: str("by-customer|acme")}},
		{"present means not empty",
			`[{"name":"by-customer","match":{"tags.customer":"*"},"group_by":["tags.customer"]}]`,
			timeout, result{}},
		{"missing values group as empty",
			`[{"group_by":["tags.customer","tags.missing"]}]`,
			timeout, result{fingerprint: str("rule#0||")}},
		{"several paths",
			`[{"group_by":["tags.customer","exception.values.0.type","extra.code","extra.ok","extra.ids"]}]`,
			typeError, result{fingerprint: str("rule#0|acme|TypeError|503|false|[1,2]")}},
		{"literal for a prefix",
			`[{"match":{"message":"prefix:Timeout"},"fingerprint":"timeouts"}]`,
			timeout, result{fingerprint: str("timeouts")}},
		{"prefix does not match",
			`[{"match":{"message":"prefix:Timeout"},"fingerprint":"timeouts"}]`,
			typeError, result{}},
		{"prefix of a number",
			`[{"match":{"extra.code":"prefix:50"},"fingerprint":"5xx"}]`,
			timeout, result{fingerprint: str("5xx")}},
		{"prefix needs a value",
			`[{"match":{"extra.missing":"prefix:"},"fingerprint":"x"}]`,
			timeout, result{}},
		{"equality",
			`[{"match":{"level":"warning","extra.code":"504"},"fingerprint":"slow"}]`,
			timeout, result{fingerprint: str("slow")}},
		{"every condition must hold",
			`[{"match":{"level":"warning","extra.code":"503"},"fingerprint":"slow"}]`,
			timeout, result{}},
		{"empty value matches a missing one",
			`[{"match":{"level":""},"fingerprint":"no-level"}]`,
			chained, result{fingerprint: str("no-level")}},
		{"no match matches all",
			`[{"fingerprint":"all"}]`,
			chained, result{fingerprint: str("all")}},
		{"first matching rule wins",
			`[{"match":{"level":"fatal"},"fingerprint":"fatal"},{"match":{"level":"error"},"fingerprint":"errors"},{"fingerprint":"all"}]`,
			typeError, result{fingerprint: str("errors")}},
		{"rule index in the prefix",
			`[{"match":{"level":"fatal"},"group_by":["level"]},{"group_by":["level"]}]`,
			typeError, result{fingerprint: str("rule#1|error")}},
		{"array index in a path",
			`[{"match":{"exception.values.1.type":"*"},"group_by":["exception.values.1.type"]}]`,
			chained, result{fingerprint: str("rule#0|RuntimeError")}},
		{"title",
			`[{"group_by":["exception.values.0.type"],"title":"{exception.values.0.type} for {tags.customer} ({extra.code})"}]`,
			typeError, result{fingerprint: str("rule#0|TypeError"), title: str("TypeError for acme (503)")}},
		{"title with missing values",
			`[{"fingerprint":"f","title":"{tags.missing}: {message}"}]`,
			chained, result{fingerprint: str("f"), title: str(": wrapped")}},
		{"title without placeholders",
			`[{"fingerprint":"f","title":"Payment timeouts"}]`,
			timeout, result{fingerprint: str("f"), title: str("Payment timeouts")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := ``
			if tt.rules != "" {
				config = `{"rules":` + tt.rules + `}`
			}
			r := run(t, config, tt.event)[0]
			if r.Has.Contains(abi.FieldError) {
				t.Fatalf("event failed: %s", r.Error)
			}
			if r.Has.Contains(abi.FieldEvent) {
				t.Errorf("got the event changed, want it passed on")
			}
			check := func(what string, ft abi.FieldType, got string, want *string) {
				switch {
				case want == nil && r.Has.Contains(ft):
					t.Errorf("got %s %q, want none", what, got)
				case want != nil && !r.Has.Contains(ft):
					t.Errorf("got no %s, want %q", what, *want)
				case want != nil && got != *want:
					t.Errorf("got %s %q, want %q", what, got, *want)
				}
			}
			check("fingerprint", abi.FieldFingerprint, r.Fingerprint, tt.want.fingerprint)
			check("title", abi.FieldTitle, r.Title, tt.want.title)
		})
	}
}

func TestInvalidRules(t *testing.T) {
	tests := []struct {
		name, rules, want string
	}{
		{"not an array", `{"group_by":["level"]}`,
			`config rules: want an array of rules, got {"group_by":["level"]}`},
		{"rule not an object", `[{"fingerprint":"a"},"level"]`,
			`config rules: rule 1: want an object, got "level"`},
		{"neither group_by nor fingerprint", `[{"match":{"level":"error"}}]`,
			`config rules: rule 0: has neither group_by nor fingerprint`},
		{"both group_by and fingerprint", `[{"group_by":["level"],"fingerprint":"a"}]`,
			`config rules: rule 0: has both group_by and fingerprint; use one`},
		{"group_by not a list", `[{"fingerprint":"a"},{"group_by":"tags.customer"}]`,
			`config rules: rule 1: group_by: want a non-empty list of paths, got "tags.customer"`},
		{"group_by empty", `[{"group_by":[]}]`,
			`config rules: rule 0: group_by: want a non-empty list of paths, got []`},
		{"group_by path not a string", `[{"group_by":["level",3]}]`,
			`config rules: rule 0: group_by: element 1: want a path, got 3`},
		{"group_by path with an empty segment", `[{"group_by":["tags."]}]`,
			`config rules: rule 0: group_by: element 0: path "tags." has an empty segment`},
		{"match not an object", `[{"match":["level"],"fingerprint":"a"}]`,
			`config rules: rule 0: match: want an object mapping paths to values, got ["level"]`},
		{"match value not a string", `[{"match":{"extra.code":503},"fingerprint":"a"}]`,
			`config rules: rule 0: match: extra.code: want a string, got 503`},
		{"match path with an empty segment", `[{"match":{"tags..customer":"*"},"fingerprint":"a"}]`,
			`config rules: rule 0: match: path "tags..customer" has an empty segment`},
		{"empty fingerprint", `[{"fingerprint":""}]`,
			`config rules: rule 0: fingerprint: want a non-empty string, got ""`},
		{"title not a string", `[{"fingerprint":"a","title":["x"]}]`,
			`config rules: rule 0: title: want a non-empty string, got ["x"]`},
		{"title not closed", `[{"fingerprint":"a","title":"{message"}]`,
			`config rules: rule 0: title: "{message" has a { without a }`},
		{"title with an empty placeholder", `[{"fingerprint":"a","title":"x {}"}]`,
			`config rules: rule 0: title: path "" has an empty segment`},
		{"unknown field", `[{"mach":{"level":"error"},"fingerprint":"a"}]`,
			`config rules: rule 0: mach: unknown field; a rule has match, group_by, fingerprint, title and name`},
		{"name with a bar", `[{"name":"a|b","fingerprint":"a"}]`,
			`config rules: rule 0: name: "a|b" contains | or #`},
		{"duplicate names", `[{"name":"a","fingerprint":"a"},{"name":"b","fingerprint":"b"},{"name":"a","group_by":["level"]}]`,
			`config rules: rule 2: name "a" is also the name of rule 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, r := range run(t, `{"rules":`+tt.rules+`}`, typeError, timeout, chained) {
				if r.Error != tt.want {
					t.Errorf("event %d: got error %q, want %q", i, r.Error, tt.want)
				}
			}
		})
	}
}

func TestConfigChange(t *testing.T) {
	steps := []struct {
		rules       string
		fingerprint string
		err         bool
	}{
		{`[{"fingerprint":"a"}]`, "a", false},
		{`[{"group_by":"level"}]`, "", true},
		{`[{"group_by":"level"}]`, "", true},
		{`[{"fingerprint":"b"}]`, "b", false},
		{`[{"fingerprint":"b"}]`, "b", false},
	}
	for i, s := range steps {
		r := run(t, `{"rules":`+s.rules+`}`, typeError)[0]
		if got := r.Has.Contains(abi.FieldError); got != s.err {
			t.Errorf("step %d: got error %q, want an error: %v", i, r.Error, s.err)
		}
		if r.Fingerprint != s.fingerprint {
			t.Errorf("step %d: got fingerprint %q, want %q", i, r.Fingerprint, s.fingerprint)
		}
	}
}

func TestManifestDefaults(t *testing.T) {
	// No rules, the handler's default.
	plugintest.ManifestDefaults(t, "manifest.json", map[string]any{"rules": []any{}})
}

func TestCases(t *testing.T) {
	plugintest.Native(t, "testdata/cases.json", process, *update)
}
