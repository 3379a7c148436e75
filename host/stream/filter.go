package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
)

// Filters narrow what a subscriber receives. An empty list or map means
// "any"; every given condition must hold. Level matches ignoring case and
// applies to events and issues; Environment and Tags apply to events only.
// Messages of other types always pass.
type Filters struct {
	Level       []string          `json:"level"`       // any of these levels
	Environment []string          `json:"environment"` // any of these environments
	Tags        map[string]string `json:"tags"`        // every one of these tags, with this value
}

// Limits on a filter set, so that filters cannot grow a subscriber's
// memory past what a client message could carry anyway.
const (
	maxFilterValues = 64  // values per list, tags per map
	maxFilterLen    = 200 // bytes per value or tag key
)

// match reports whether m passes f. A nil f passes everything.
func (f *Filters) match(m *Message) bool {
	if f == nil {
		return true
	}
	switch m.Type {
	case TypeEvent:
		return f.matchLevel(m.Level) && f.matchEnvironment(m.Environment) && f.matchTags(m.Tags)
	case TypeIssue:
		return f.matchLevel(m.Level)
	}
	return true
}

func (f *Filters) matchLevel(level string) bool {
	if len(f.Level) == 0 {
		return true
	}
	for _, l := range f.Level {
		if strings.EqualFold(l, level) {
			return true
		}
	}
	return false
}

func (f *Filters) matchEnvironment(env string) bool {
	if len(f.Environment) == 0 {
		return true
	}
	for _, e := range f.Environment {
		if e == env {
			return true
		}
	}
	return false
}

func (f *Filters) matchTags(tags map[string]string) bool {
	for k, v := range f.Tags {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// validate reports the first problem with f, naming the field.
func (f *Filters) validate() error {
	check := func(name string, vals []string) error {
		if len(vals) > maxFilterValues {
			return fmt.Errorf("filters.%s: at most %d values, got %d", name, maxFilterValues, len(vals))
		}
		for i, v := range vals {
			if v == "" {
				return fmt.Errorf("filters.%s[%d]: must not be empty", name, i)
			}
			if len(v) > maxFilterLen {
				return fmt.Errorf("filters.%s[%d]: longer than %d bytes", name, i, maxFilterLen)
			}
		}
		return nil
	}
	if err := check("level", f.Level); err != nil {
		return err
	}
	if err := check("environment", f.Environment); err != nil {
		return err
	}
	if len(f.Tags) > maxFilterValues {
		return fmt.Errorf("filters.tags: at most %d tags, got %d", maxFilterValues, len(f.Tags))
	}
	for k, v := range f.Tags {
		switch {
		case k == "":
			return errors.New("filters.tags: a tag key must not be empty")
		case len(k) > maxFilterLen:
			return fmt.Errorf("filters.tags: key longer than %d bytes", maxFilterLen)
		case v == "":
			return fmt.Errorf("filters.tags.%s: value must not be empty", k)
		case len(v) > maxFilterLen:
			return fmt.Errorf("filters.tags.%s: value longer than %d bytes", k, maxFilterLen)
		}
	}
	return nil
}

// empty reports whether f lets everything through.
func (f *Filters) empty() bool {
	return len(f.Level) == 0 && len(f.Environment) == 0 && len(f.Tags) == 0
}

// orEmpty returns f with nil lists and maps made empty, so that it encodes
// as {"level":[],"environment":[],"tags":{}} rather than with nulls.
func (f *Filters) orEmpty() *Filters {
	g := Filters{Level: []string{}, Environment: []string{}, Tags: map[string]string{}}
	if f != nil {
		if f.Level != nil {
			g.Level = f.Level
		}
		if f.Environment != nil {
			g.Environment = f.Environment
		}
		if f.Tags != nil {
			g.Tags = f.Tags
		}
	}
	return &g
}

// parseClientMessage decodes a client message, {"filters":{…}}. It returns
// nil filters for a message that clears them, and an error fit to show the
// client for anything else.
func parseClientMessage(data []byte) (*Filters, error) {
	var msg struct {
		Filters *Filters `json:"filters"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid message: data after the JSON object")
	}
	if msg.Filters == nil {
		return nil, errors.New(`invalid message: want {"filters":{…}}, "filters" is missing`)
	}
	if err := msg.Filters.validate(); err != nil {
		return nil, fmt.Errorf("invalid message: %w", err)
	}
	if msg.Filters.empty() {
		return nil, nil
	}
	return msg.Filters, nil
}

// describeJSONError turns a decoding error into a message naming the field
// and what was expected.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf(`invalid message: want a JSON object {"filters":{…}}, got %s`, typeErr.Value)
		}
		want := "an object"
		switch typeErr.Type.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Slice:
			want = "an array of strings"
		case reflect.Map:
			want = "an object of strings"
		}
		return fmt.Errorf("invalid message: %s: want %s, got %s", field, want, typeErr.Value)
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("invalid message: unknown field %s", s)
	}
	if err == io.EOF {
		return errors.New("invalid message: empty")
	}
	return fmt.Errorf("invalid message: not JSON: %w", err)
}

// filtersFromQuery reads initial filters from a subscription URL's query:
// level=error,fatal (or repeated), environment=…, tag=key:value (repeated).
// Other parameters are ignored.
func filtersFromQuery(q url.Values) (*Filters, error) {
	var f Filters
	split := func(vals []string) []string {
		var out []string
		for _, v := range vals {
			out = append(out, strings.Split(v, ",")...)
		}
		return out
	}
	f.Level = split(q["level"])
	f.Environment = split(q["environment"])
	for _, t := range q["tag"] {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("query parameter tag: want key:value, got %q", t)
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		f.Tags[k] = v
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if f.empty() {
		return nil, nil
	}
	return &f, nil
}
