// Command fingerprint is a processor that groups events into issues by
// custom rules.
//
// Its one setting, rules, is a list of rules tried in order; the first
// whose match holds sets the event's fingerprint, and its title if the rule
// has one. Events that no rule matches are left alone, and the host groups
// them by its default fingerprint. A rule is an object:
//
//	{
//	  "name": "by-customer",
//	  "match": {"exception.values.0.type": "*", "message": "prefix:Timeout", "level": "error"},
//	  "group_by": ["tags.customer", "exception.values.0.type"],
//	  "title": "{exception.values.0.type} for {tags.customer}"
//	}
//
// Its fields:
//
//   - match maps dot paths into the event to a condition, and every one
//     must hold: "*" means the path holds a non-empty value, "prefix:X"
//     means it holds a value starting with X, and any other string means
//     it holds exactly that value. A missing value reads as "". No match
//     matches every event.
//   - group_by lists paths whose values, joined with "|" after the rule's
//     name (or "rule#<index>" if it has none), make the fingerprint, so
//     that two group_by rules never make the same one: the rule above
//     gives a TimeoutError of customer acme "by-customer|acme|TimeoutError".
//   - fingerprint, instead of group_by, is a literal fingerprint, used as
//     it is.
//   - title, optional, is a template in which {path} is replaced by the
//     value at path.
//   - name, optional, must be unique and may not contain "|" or "#".
//
// Values are strings, numbers and booleans as their text, and objects and
// arrays as their JSON. Rules are checked when the configuration changes:
// if any is invalid, every event fails with an error naming the rule, so
// that a mistake does not silently leave events grouped as before.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mesher-dev/mesher/abi/guest"
)

func init() { guest.Handle(process) }

func main() {}

func process(e *guest.Event) error {
	rules, err := current()
	if err != nil {
		return err
	}
	for i := range rules {
		r := &rules[i]
		if !r.matches(e) {
			continue
		}
		if r.groupBy != nil {
			e.SetFingerprint(r.group(e))
		} else {
			e.SetFingerprint(r.fingerprint)
		}
		if r.title != nil {
			e.SetTitle(r.title.render(e))
		}
		return nil
	}
	return nil
}

// rule is a parsed rule.
type rule struct {
	prefix      string // its name, or rule#<index>
	match       []condition
	groupBy     []string
	fingerprint string
	title       template
}

type condition struct {
	path  string
	op    op
	value string
}

type op uint8

const (
	equal op = iota
	present
	prefix
)

func (r *rule) matches(e *guest.Event) bool {
	for _, c := range r.match {
		v := e.Get(c.path)
		switch c.op {
		case present:
			if !nonEmpty(v) {
				return false
			}
		case prefix:
			if v == nil || !strings.HasPrefix(text(v), c.value) {
				return false
			}
		default:
			if text(v) != c.value {
				return false
			}
		}
	}
	return true
}

func (r *rule) group(e *guest.Event) string {
	var b strings.Builder
	b.WriteString(r.prefix)
	for _, p := range r.groupBy {
		b.WriteByte('|')
		b.WriteString(text(e.Get(p)))
	}
	return b.String()
}

// text returns a value as text: strings, numbers and booleans as they
// read, objects and arrays as JSON, and null or a missing value as "".
func text(v *guest.Value) string {
	switch v.Kind() {
	case guest.Object, guest.Array:
		return string(v.JSON())
	}
	return v.String()
}

// nonEmpty reports whether v is present, not null, and not an empty
// string, object or array.
func nonEmpty(v *guest.Value) bool {
	switch v.Kind() {
	case guest.Null:
		return false
	case guest.String:
		s, _ := v.Str()
		return s != ""
	case guest.Object, guest.Array:
		return v.Len() > 0
	}
	return true
}

// template is a title: literal text and paths to fill in, alternately.
type template []templatePart

type templatePart struct {
	text string
	path bool // text is a path
}

func (t template) render(e *guest.Event) string {
	var b strings.Builder
	for _, p := range t {
		if p.path {
			b.WriteString(text(e.Get(p.text)))
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// parseTemplate parses a title: each {path} in it is filled in.
func parseTemplate(title string) (template, error) {
	t := template{}
	for s := title; s != ""; {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t = append(t, templatePart{text: s})
			break
		}
		if open > 0 {
			t = append(t, templatePart{text: s[:open]})
		}
		n := strings.IndexByte(s[open:], '}')
		if n < 0 {
			return nil, fmt.Errorf("%q has a { without a }", title)
		}
		path := s[open+1 : open+n]
		if err := checkPath(path); err != nil {
			return nil, err
		}
		t = append(t, templatePart{text: path, path: true})
		s = s[open+n+1:]
	}
	return t, nil
}

// cache keeps the rules, or what is wrong with them, until the
// configuration changes.
var cache struct {
	raw    []byte
	loaded bool
	rules  []rule
	err    error
}

func current() ([]rule, error) {
	raw := guest.ConfigRaw()
	if !cache.loaded || !bytes.Equal(raw, cache.raw) {
		cache.raw = bytes.Clone(raw)
		cache.loaded = true
		cache.rules, cache.err = parseRules(guest.Config("rules"))
	}
	return cache.rules, cache.err
}

// parseRules parses the rules setting; nil means none.
func parseRules(v *guest.Value) ([]rule, error) {
	if v == nil {
		return nil, nil
	}
	if v.Kind() != guest.Array {
		return nil, fmt.Errorf("config rules: want an array of rules, got %s", v.JSON())
	}
	rules := make([]rule, v.Len())
	names := map[string]int{}
	for i, rv := range v.Elems() {
		r, name, err := parseRule(i, rv)
		if err != nil {
			return nil, fmt.Errorf("config rules: rule %d: %w", i, err)
		}
		if j, dup := names[name]; dup {
			return nil, fmt.Errorf("config rules: rule %d: name %q is also the name of rule %d", i, name, j)
		}
		if name != "" {
			names[name] = i
		}
		rules[i] = r
	}
	return rules, nil
}

func parseRule(i int, v *guest.Value) (r rule, name string, err error) {
	if v.Kind() != guest.Object {
		return r, "", fmt.Errorf("want an object, got %s", v.JSON())
	}
	hasFingerprint := false
	for _, m := range v.Members() {
		switch m.Key {
		case "name":
			name, err = nonEmptyString(m.Value)
			if err == nil && strings.ContainsAny(name, "|#") {
				err = fmt.Errorf("%q contains | or #", name)
			}
		case "match":
			r.match, err = parseMatch(m.Value)
		case "group_by":
			r.groupBy, err = parsePaths(m.Value)
		case "fingerprint":
			r.fingerprint, err = nonEmptyString(m.Value)
			hasFingerprint = true
		case "title":
			var s string
			if s, err = nonEmptyString(m.Value); err == nil {
				r.title, err = parseTemplate(s)
			}
		default:
			err = errors.New("unknown field; a rule has match, group_by, fingerprint, title and name")
		}
		if err != nil {
			return r, "", fmt.Errorf("%s: %w", m.Key, err)
		}
	}
	switch {
	case r.groupBy == nil && !hasFingerprint:
		return r, "", errors.New("has neither group_by nor fingerprint")
	case r.groupBy != nil && hasFingerprint:
		return r, "", errors.New("has both group_by and fingerprint; use one")
	}
	r.prefix = name
	if name == "" {
		r.prefix = "rule#" + strconv.Itoa(i)
	}
	return r, name, nil
}

func parseMatch(v *guest.Value) ([]condition, error) {
	if v.Kind() != guest.Object {
		return nil, fmt.Errorf("want an object mapping paths to values, got %s", v.JSON())
	}
	var conds []condition
	for _, m := range v.Members() {
		if err := checkPath(m.Key); err != nil {
			return nil, err
		}
		s, ok := m.Value.Str()
		if !ok {
			return nil, fmt.Errorf("%s: want a string, got %s", m.Key, m.Value.JSON())
		}
		c := condition{path: m.Key, value: s}
		if s == "*" {
			c.op = present
		} else if rest, ok := strings.CutPrefix(s, "prefix:"); ok {
			c.op, c.value = prefix, rest
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func parsePaths(v *guest.Value) ([]string, error) {
	if v.Kind() != guest.Array || v.Len() == 0 {
		return nil, fmt.Errorf("want a non-empty list of paths, got %s", v.JSON())
	}
	paths := make([]string, v.Len())
	for i, e := range v.Elems() {
		s, ok := e.Str()
		if !ok {
			return nil, fmt.Errorf("element %d: want a path, got %s", i, e.JSON())
		}
		if err := checkPath(s); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		paths[i] = s
	}
	return paths, nil
}

// checkPath checks that a dot path has no empty segment.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		return fmt.Errorf("path %q has an empty segment", p)
	}
	return nil
}

func nonEmptyString(v *guest.Value) (string, error) {
	s, ok := v.Str()
	if !ok || s == "" {
		return "", fmt.Errorf("want a non-empty string, got %s", v.JSON())
	}
	return s, nil
}
