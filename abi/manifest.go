package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Mode says where a processor may run in a cluster.
type Mode string

const (
	// Replicated processors may run as many instances, on any node.
	Replicated Mode = "replicated"
	// Singleton processors run as one instance in the whole cluster.
	Singleton Mode = "singleton"
)

// Manifest describes a processor. It is stored as JSON in the custom section
// ManifestSection of the module.
type Manifest struct {
	Name        string      `json:"name"`
	Version     string      `json:"version"`
	Description string      `json:"description,omitempty"`
	Mode        Mode        `json:"mode"`
	Config      []ConfigKey `json:"config,omitempty"`
}

// ConfigKey declares one configuration key a processor reads.
type ConfigKey struct {
	Key         string          `json:"key"`
	Type        ConfigType      `json:"type"`
	Description string          `json:"description,omitempty"`
	Required    bool            `json:"required,omitempty"`
	Default     json.RawMessage `json:"default,omitempty"`
}

// ConfigType is the JSON type of a configuration value.
type ConfigType string

// Configuration value types.
const (
	TypeString     ConfigType = "string"
	TypeNumber     ConfigType = "number"
	TypeBool       ConfigType = "bool"
	TypeStringList ConfigType = "string_list"
	TypeObject     ConfigType = "object"
	TypeAny        ConfigType = "any"
)

// Limits on manifest contents.
const (
	MaxManifestSize    = 64 << 10
	MaxDescription     = 1024
	MaxConfigKeys      = 64
	maxVersionLen      = 64
	maxConfigKeyLength = 64
)

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	configKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// ValidName reports whether s can name a processor: lower-case letters,
// digits, '-' and '_', at most 63 characters, starting with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ParseManifest decodes and validates a manifest. Unknown JSON fields are
// errors so that a misspelt key does not pass silently.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, more than %d", len(data), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("manifest has data after its JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that the manifest is sane. An empty Mode is set to
// Replicated.
func (m *Manifest) Validate() error {
	if !ValidName(m.Name) {
		return fmt.Errorf("manifest name %q is not a valid processor name (lower-case letters, digits, '-', '_'; at most 63)", m.Name)
	}
	if m.Version == "" || len(m.Version) > maxVersionLen || strings.ContainsAny(m.Version, " \t\r\n") {
		return fmt.Errorf("manifest version %q must be 1 to %d characters without spaces", m.Version, maxVersionLen)
	}
	if len(m.Description) > MaxDescription {
		return fmt.Errorf("manifest description is %d bytes, more than %d", len(m.Description), MaxDescription)
	}
	switch m.Mode {
	case "":
		m.Mode = Replicated
	case Replicated, Singleton:
	default:
		return fmt.Errorf("manifest mode %q must be %q or %q", m.Mode, Replicated, Singleton)
	}
	if len(m.Config) > MaxConfigKeys {
		return fmt.Errorf("manifest declares %d config keys, more than %d", len(m.Config), MaxConfigKeys)
	}
	seen := make(map[string]bool, len(m.Config))
	for i := range m.Config {
		k := &m.Config[i]
		if !configKeyRE.MatchString(k.Key) || len(k.Key) > maxConfigKeyLength {
			return fmt.Errorf("manifest config key %q is not a valid key", k.Key)
		}
		if seen[k.Key] {
			return fmt.Errorf("manifest config key %q is declared twice", k.Key)
		}
		seen[k.Key] = true
		if !k.Type.valid() {
			return fmt.Errorf("manifest config key %q has unknown type %q", k.Key, k.Type)
		}
		if len(k.Default) > 0 {
			if err := k.Type.check(k.Default); err != nil {
				return fmt.Errorf("manifest config key %q: default: %w", k.Key, err)
			}
		}
	}
	return nil
}

// Key returns the declared key named name, or nil.
func (m *Manifest) Key(name string) *ConfigKey {
	for i := range m.Config {
		if m.Config[i].Key == name {
			return &m.Config[i]
		}
	}
	return nil
}

// CheckConfig checks a processor configuration against the declared keys:
// every key must be declared and of its type, and required keys present.
func (m *Manifest) CheckConfig(cfg map[string]json.RawMessage) error {
	var unknown []string
	for name, v := range cfg {
		k := m.Key(name)
		if k == nil {
			unknown = append(unknown, name)
			continue
		}
		if err := k.Type.check(v); err != nil {
			return fmt.Errorf("processor %s: config key %q: %w", m.Name, name, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, len(m.Config))
		for i, k := range m.Config {
			known[i] = k.Key
		}
		return fmt.Errorf("processor %s has no config key %s (known: %s)", m.Name,
			quoteJoin(unknown), quoteJoin(known))
	}
	for _, k := range m.Config {
		if _, ok := cfg[k.Key]; k.Required && !ok {
			return fmt.Errorf("processor %s: config key %q is required", m.Name, k.Key)
		}
	}
	return nil
}

func quoteJoin(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func (t ConfigType) valid() bool {
	switch t {
	case TypeString, TypeNumber, TypeBool, TypeStringList, TypeObject, TypeAny:
		return true
	}
	return false
}

func (t ConfigType) check(raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	ok := true
	switch t {
	case TypeString:
		_, ok = v.(string)
	case TypeNumber:
		_, ok = v.(float64)
	case TypeBool:
		_, ok = v.(bool)
	case TypeObject:
		_, ok = v.(map[string]any)
	case TypeStringList:
		list, isList := v.([]any)
		ok = isList
		for _, e := range list {
			if _, s := e.(string); !s {
				ok = false
			}
		}
	}
	if !ok {
		return fmt.Errorf("want %s, got %s", t, raw)
	}
	return nil
}
