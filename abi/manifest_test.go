package abi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/abi"
)

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"minimal", `{"name":"scrub","version":"1.0.0"}`, ""},
		{"full", `{"name":"a-b_c","version":"2","description":"d","mode":"singleton",
			"config":[{"key":"keys","type":"string_list","default":["x"]},{"key":"rate","type":"number","required":true}]}`, ""},
		{"not json", `nope`, "not valid JSON"},
		{"trailing data", `{"name":"a","version":"1"} {}`, "data after"},
		{"unknown field", `{"name":"a","version":"1","mdoe":"x"}`, "unknown field"},
		{"bad name", `{"name":"Has Space","version":"1"}`, "not a valid processor name"},
		{"no version", `{"name":"a"}`, "version"},
		{"bad mode", `{"name":"a","version":"1","mode":"all"}`, `mode "all"`},
		{"dup key", `{"name":"a","version":"1","config":[{"key":"k","type":"bool"},{"key":"k","type":"bool"}]}`, "declared twice"},
		{"bad type", `{"name":"a","version":"1","config":[{"key":"k","type":"int"}]}`, `unknown type "int"`},
		{"bad default", `{"name":"a","version":"1","config":[{"key":"k","type":"bool","default":"yes"}]}`, "want bool"},
		{"bad key", `{"name":"a","version":"1","config":[{"key":"1k","type":"bool"}]}`, "not a valid key"},
		{"too big", `{"name":"a","version":"1","description":"` + strings.Repeat("x", abi.MaxManifestSize) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := abi.ParseManifest([]byte(tt.in))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Mode != abi.Replicated && m.Mode != abi.Singleton {
					t.Errorf("got mode %q, want it defaulted", m.Mode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	m, err := abi.ParseManifest([]byte(`{"name":"p","version":"1","config":[
		{"key":"keys","type":"string_list"},{"key":"rate","type":"number","required":true},{"key":"on","type":"bool"},
		{"key":"o","type":"object"},{"key":"s","type":"string"},{"key":"any","type":"any"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cfg, err string
	}{
		{"ok", `{"keys":["a"],"rate":0.5,"on":true,"o":{},"s":"x","any":[1,{}]}`, ""},
		{"missing required", `{"keys":[]}`, `"rate" is required`},
		{"unknown key", `{"rate":1,"rat":2}`, `no config key "rat" (known: "keys", "rate", "on", "o", "s", "any")`},
		{"wrong type", `{"rate":"1"}`, "want number"},
		{"list of non-strings", `{"rate":1,"keys":[1]}`, "want string_list"},
		{"object", `{"rate":1,"o":[]}`, "want object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.cfg), &cfg); err != nil {
				t.Fatal(err)
			}
			err := m.CheckConfig(cfg)
			if tt.err == "" && err != nil {
				t.Fatal(err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
