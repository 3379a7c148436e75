package main

import (
	"flag"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/plugins/internal/plugintest"
)

var update = flag.Bool("update", false, "rewrite testdata/cases.json from the handler's output")

// run enriches one event and returns the event passed on, whether it
// changed, and the error it failed with.
func run(t *testing.T, config, event string) (out string, changed bool, errMsg string) {
	t.Helper()
	var cfg []byte
	if config != "" {
		cfg = []byte(config)
	}
	recs, err := guest.RunEvents(process, cfg, event)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	r := recs[0]
	switch {
	case r.Has.Contains(abi.FieldError):
		return "", false, r.Error
	case r.Has.Contains(abi.FieldEvent):
		return string(r.Event), true, ""
	}
	return event, false, ""
}

func TestEnrich(t *testing.T) {
	tests := []struct {
		name, config, in, want string
	}{
		{"from contexts", ``,
			`{"message":"boom","contexts":{"app":{"environment":"staging","version":"2.1.0"}}}`,
			`{"message":"boom","contexts":{"app":{"environment":"staging","version":"2.1.0"}},"environment":"staging","release":"2.1.0","tags":{"environment":"staging","release":"2.1.0"}}`},
		{"event keeps its own", ``,
			`{"environment":"production","release":"1.0.0","contexts":{"app":{"environment":"staging","version":"2.1.0"}},"tags":{"browser":"Firefox"}}`,
			`{"environment":"production","release":"1.0.0","contexts":{"app":{"environment":"staging","version":"2.1.0"}},"tags":{"browser":"Firefox","environment":"production","release":"1.0.0"}}`},
		{"empty top-level fields are filled", ``,
			`{"environment":"","release":"","extra":{"environment":"qa","release":"9"}}`,
			`{"environment":"qa","release":"9","extra":{"environment":"qa","release":"9"},"tags":{"environment":"qa","release":"9"}}`},
		{"first non-empty path wins", ``,
			`{"contexts":{"app":{"environment":""}},"extra":{"environment":"qa","release":42},"tags":{"environment":"dev","release":"7"}}`,
			`{"contexts":{"app":{"environment":""}},"extra":{"environment":"qa","release":42},"tags":{"environment":"dev","release":"7"},"environment":"qa","release":"42"}`},
		{"from tags", ``,
			`{"tags":{"environment":"dev","release":"7"}}`,
			`{"tags":{"environment":"dev","release":"7"},"environment":"dev","release":"7"}`},
		{"constant fallbacks", `{"environment":"production","release":"shop@3"}`,
			`{"message":"boom"}`,
			`{"message":"boom","environment":"production","release":"shop@3","tags":{"environment":"production","release":"shop@3"}}`},
		{"paths win over fallbacks", `{"environment":"production"}`,
			`{"extra":{"environment":"qa"}}`,
			`{"extra":{"environment":"qa"},"environment":"qa","tags":{"environment":"qa"}}`},
		{"own paths", `{"environment_from":["request.env.APP_ENV"],"release_from":["exception.values.0.module"]}`,
			`{"request":{"env":{"APP_ENV":"canary"}},"exception":{"values":[{"type":"E","module":"billing@4.2"}]},"extra":{"environment":"qa"}}`,
			`{"request":{"env":{"APP_ENV":"canary"}},"exception":{"values":[{"type":"E","module":"billing@4.2"}]},"extra":{"environment":"qa"},"environment":"canary","release":"billing@4.2","tags":{"environment":"canary","release":"billing@4.2"}}`},
		{"no paths", `{"environment_from":[],"release_from":[]}`,
			`{"extra":{"environment":"qa"}}`,
			`{"extra":{"environment":"qa"}}`},
		{"tags are added", `{"tags":{"region":"eu-west-1","shard":3,"canary":false}}`,
			`{"message":"boom","tags":{"browser":"Firefox"}}`,
			`{"message":"boom","tags":{"browser":"Firefox","region":"eu-west-1","shard":"3","canary":"false"}}`},
		{"existing tags are kept", `{"tags":{"region":"eu-west-1","team":"payments"}}`,
			`{"environment":"production","tags":{"region":"us-east-1","team":"","environment":"prod"}}`,
			`{"environment":"production","tags":{"region":"us-east-1","team":"payments","environment":"prod"}}`},
		{"overwrite", `{"tags":{"region":"eu-west-1"},"overwrite":true}`,
			`{"environment":"production","tags":{"region":"us-east-1","environment":"prod"}}`,
			`{"environment":"production","tags":{"region":"eu-west-1","environment":"production"}}`},
		{"null tags", `{"tags":{"region":"eu-west-1"}}`,
			`{"tags":null}`,
			`{"tags":{"region":"eu-west-1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, errMsg := run(t, tt.config, tt.in)
			if errMsg != "" {
				t.Fatalf("event failed: %s", errMsg)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestUnchangedEventsPassOn(t *testing.T) {
	tests := []struct {
		name, config, in string
	}{
		{"nothing to derive", ``, `{"message":"boom","extra":{"x":1}}`},
		{"already enriched", `{"tags":{"region":"eu"}}`, `{"environment":"production","release":"1.0","tags":{"region":"eu","environment":"production","release":"1.0"}}`},
		{"tags kept", `{"tags":{"region":"eu"}}`, `{"tags":{"region":"us"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, changed, errMsg := run(t, tt.config, tt.in); changed || errMsg != "" {
				t.Errorf("got %s (error %q), want the event passed on unchanged", got, errMsg)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, config, in, want string
	}{
		{"tags setting not an object", `{"tags":["region"]}`, `{"message":"boom"}`,
			`config tags: want an object mapping tags to values, got ["region"]`},
		{"tag value not a string", `{"tags":{"region":{"name":"eu"}}}`, `{"message":"boom"}`,
			`config tags.region: want a string, got {"name":"eu"}`},
		{"event tags are pairs", `{"tags":{"region":"eu"}}`, `{"tags":[["browser","Firefox"]]}`,
			`event tags: want an object, got array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, got := run(t, tt.config, tt.in); got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigChange(t *testing.T) {
	const in = `{"message":"boom"}`
	steps := []struct{ config, want string }{
		{`{"environment":"a"}`, `{"message":"boom","environment":"a","tags":{"environment":"a"}}`},
		{`{"environment":"a"}`, `{"message":"boom","environment":"a","tags":{"environment":"a"}}`},
		{`{"environment":"b"}`, `{"message":"boom","environment":"b","tags":{"environment":"b"}}`},
		{`{"tags":7}`, ``},
		{`{"release":"r"}`, `{"message":"boom","release":"r","tags":{"release":"r"}}`},
	}
	for i, s := range steps {
		got, _, errMsg := run(t, s.config, in)
		if s.want == "" {
			if errMsg == "" {
				t.Errorf("step %d: got %s, want an error", i, got)
			}
			continue
		}
		if got != s.want {
			t.Errorf("step %d: got %s (error %q), want %s", i, got, errMsg, s.want)
		}
	}
}

func TestManifestDefaults(t *testing.T) {
	plugintest.ManifestDefaults(t, "manifest.json", map[string]any{
		"tags":             map[string]any{},
		"overwrite":        defaultOverwrite,
		"environment_from": defaultEnvironmentFrom,
		"release_from":     defaultReleaseFrom,
		"environment":      defaultEnvironment,
		"release":          defaultRelease,
	})
}

func TestCases(t *testing.T) {
	plugintest.Native(t, "testdata/cases.json", process, *update)
}
