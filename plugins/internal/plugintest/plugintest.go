// Package plugintest holds the test cases a plugin's native tests share
// with the tests of its Wasm build.
//
// A package main cannot be imported, so plugins/wasm_test.go cannot call a
// plugin's handler to compare it with the built module. Instead each plugin
// keeps testdata/cases.json: configurations and events with the output
// records its handler produces through guest.RunEvents. The plugin's own
// tests check the handler against the file (with -update they rewrite it
// from the handler's output), and plugins/wasm_test.go checks the built
// module against the same file, so the two agree record for record.
package plugintest

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
)

// Case is one batch: a configuration and events, with the records the
// processor outputs for them.
type Case struct {
	Name   string                     `json:"name"`
	Config map[string]json.RawMessage `json:"config,omitempty"`
	Events []json.RawMessage          `json:"events"`
	Want   []Record                   `json:"want"`
}

// Record is an output record as it reads in a cases file. Event is absent
// when the input event is passed on unchanged.
type Record struct {
	Index       uint32          `json:"index"`
	Event       json.RawMessage `json:"event,omitempty"`
	Fingerprint *string         `json:"fingerprint,omitempty"`
	Title       *string         `json:"title,omitempty"`
	Level       *string         `json:"level,omitempty"`
	Tags        [][2]string     `json:"tags,omitempty"`
	Error       *string         `json:"error,omitempty"`
}

// Load reads a cases file. Events are compacted, so that they compare
// byte for byte with what a processor emits.
func Load(t testing.TB, path string) []Case {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []Case
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	for i := range cases {
		c := &cases[i]
		for j := range c.Events {
			c.Events[j] = compact(t, c.Events[j])
		}
		for j := range c.Want {
			if c.Want[j].Event != nil {
				c.Want[j].Event = compact(t, c.Want[j].Event)
			}
		}
	}
	return cases
}

// Save writes a cases file, indented, leaving strings as they are.
func Save(t testing.TB, path string, cases []Case) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cases); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func compact(t testing.TB, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return buf.Bytes()
}

// ConfigJSON returns the configuration as a JSON object, or nil for none.
func (c *Case) ConfigJSON(t testing.TB) []byte {
	t.Helper()
	if c.Config == nil {
		return nil
	}
	b, err := json.Marshal(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Input encodes the events as input records 0..n-1 and returns them with n.
func (c *Case) Input() ([]byte, int) {
	var in []byte
	for i, e := range c.Events {
		in = abi.AppendRecord(in, &abi.Record{Index: uint32(i), Event: e})
	}
	return in, len(c.Events)
}

// Records converts output records to their form in a cases file.
func Records(recs []abi.Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		o := Record{Index: r.Index}
		if r.Has.Contains(abi.FieldEvent) {
			o.Event = bytes.Clone(r.Event)
		}
		o.Fingerprint = field(r, abi.FieldFingerprint, r.Fingerprint)
		o.Title = field(r, abi.FieldTitle, r.Title)
		o.Level = field(r, abi.FieldLevel, r.Level)
		o.Error = field(r, abi.FieldError, r.Error)
		for _, tag := range r.Tags {
			o.Tags = append(o.Tags, [2]string{tag.Key, tag.Value})
		}
		out[i] = o
	}
	return out
}

func field(r abi.Record, t abi.FieldType, v string) *string {
	if !r.Has.Contains(t) {
		return nil
	}
	return &v
}

// Compare reports every difference between output records and the wanted
// ones.
func Compare(t testing.TB, got []abi.Record, want []Record) {
	t.Helper()
	g := Records(got)
	for i := 0; i < max(len(g), len(want)); i++ {
		switch {
		case i >= len(g):
			t.Errorf("record %d: got none, want %s", i, format(want[i]))
		case i >= len(want):
			t.Errorf("record %d: got %s, want none", i, format(g[i]))
		case format(g[i]) != format(want[i]):
			t.Errorf("record %d:\ngot  %s\nwant %s", i, format(g[i]), format(want[i]))
		}
	}
}

func format(r Record) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(buf.Bytes()))
}

// Native runs every case of a cases file through h with guest.RunEvents and
// compares the output with the file; with update it rewrites the file from
// the output instead.
func Native(t *testing.T, path string, h guest.Handler, update bool) {
	t.Helper()
	cases := Load(t, path)
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			events := make([]string, len(c.Events))
			for j, e := range c.Events {
				events[j] = string(e)
			}
			recs, err := guest.RunEvents(h, c.ConfigJSON(t), events...)
			if err != nil {
				t.Fatal(err)
			}
			if update {
				c.Want = Records(recs)
				return
			}
			Compare(t, recs, c.Want)
		})
	}
	if update {
		Save(t, path, cases)
	}
}

// ManifestDefaults checks that the manifest at path declares exactly the
// keys of want, each with a description and with want's value, the
// handler's own default, as its default. (Run does not fill in manifest
// defaults the way the host does, so the two must agree.)
func ManifestDefaults(t *testing.T, path string, want map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Config) != len(want) {
		t.Errorf("manifest declares %d keys, want %d", len(m.Config), len(want))
	}
	for key, def := range want {
		t.Run(key, func(t *testing.T) {
			k := m.Key(key)
			if k == nil {
				t.Fatal("not declared")
			}
			if k.Description == "" {
				t.Error("no description")
			}
			got := reflect.New(reflect.TypeOf(def))
			if err := json.Unmarshal(k.Default, got.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), def) {
				t.Errorf("manifest default %s, want %v", k.Default, def)
			}
		})
	}
}
