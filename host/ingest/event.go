package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/host/pipeline"
)

// Levels, least to most severe.
var Levels = []string{"debug", "info", "warning", "error", "fatal"}

// LevelRank orders levels; unknown levels rank as error.
func LevelRank(l string) int {
	for i, v := range Levels {
		if v == l {
			return i
		}
	}
	return 3
}

// levelAliases maps names clients commonly send to Mesher's levels.
var levelAliases = map[string]string{
	"debug": "debug", "trace": "debug",
	"info": "info", "log": "info", "notice": "info",
	"warning": "warning", "warn": "warning",
	"error": "error", "err": "error",
	"fatal": "fatal", "critical": "fatal", "crit": "fatal",
}

// FieldError is a problem with one field of one event. Index is the event's
// position in a bulk request, or -1 for a single event.
type FieldError struct {
	Index int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("event %d: %q %s", e.Index, e.Field, e.Msg)
	}
	return fmt.Sprintf("%q %s", e.Field, e.Msg)
}

// Normalized is an event as accepted: validated, with id, timestamp and
// level filled in, in the form the pipeline receives.
type Normalized struct {
	pipeline.Event
	fields
}

// fields are what the host reads from an event's body.
type fields struct {
	Level       string
	Message     string
	Environment string
	Release     string
	Timestamp   time.Time
	Tags        map[string]string
	exception   []exceptionValue
	fingerprint []string // the event's own "fingerprint", if any
}

type exceptionValue struct {
	Type   string `json:"type"`
	Value  string `json:"value"`
	Module string `json:"module"`
	Frames []frame
}

type frame struct {
	Module   string `json:"module"`
	Filename string `json:"filename"`
	Function string `json:"function"`
	InApp    *bool  `json:"in_app"`
}

// Normalize validates one event object and fills in what the host owns:
// event_id (a client's UUID is kept, in canonical form; otherwise a new
// one), timestamp (UTC), level (default error). Unknown fields are kept,
// in their order, numbers as written. index is the event's position in a
// bulk request, or -1.
//
// Events are parsed with the guest SDK's JSON tree (abi/guest), which
// parses and re-encodes a 1 KB event with a handful of allocations,
// several times faster than decoding into maps with encoding/json.
func Normalize(raw json.RawMessage, index int, now time.Time) (*Normalized, error) {
	root, err := guest.Parse(raw)
	if err != nil {
		return nil, &FieldError{Index: index, Field: "", Msg: "event must be a JSON object"}
	}
	return NormalizeValue(root, index, now)
}

// NormalizeValue is Normalize for an event already parsed, such as one
// element of a bulk request. It changes root.
func NormalizeValue(root *guest.Value, index int, now time.Time) (*Normalized, error) {
	if root.Kind() != guest.Object {
		return nil, &FieldError{Index: index, Field: "", Msg: "event must be a JSON object"}
	}
	f, err := readFields(root, index)
	if err != nil {
		return nil, err
	}
	if f.Message == "" && len(f.exception) == 0 {
		return nil, &FieldError{Index: index, Field: "message", Msg: `must be a non-empty string unless the event has an "exception"`}
	}
	id := ""
	if v := root.Key("event_id"); v.Kind() != guest.Null {
		s, ok := v.Str()
		if !ok {
			return nil, &FieldError{Index: index, Field: "event_id", Msg: "must be a string"}
		}
		if id, ok = canonicalUUID(s); !ok {
			return nil, &FieldError{Index: index, Field: "event_id", Msg: fmt.Sprintf("must be a UUID, got %q", truncate(s, 64))}
		}
	} else {
		id = NewUUID()
	}
	if f.Timestamp.IsZero() {
		f.Timestamp = now.UTC()
	}
	if f.Level == "" {
		f.Level = "error"
	}
	root.SetKey("event_id", guest.NewString(id))
	root.SetKey("timestamp", guest.NewString(f.Timestamp.Format(time.RFC3339Nano)))
	root.SetKey("level", guest.NewString(f.Level))
	if f.Tags != nil {
		tags := guest.NewObject()
		keys := make([]string, 0, len(f.Tags))
		for k := range f.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tags.SetKey(k, guest.NewString(f.Tags[k]))
		}
		root.SetKey("tags", tags)
	}
	return &Normalized{Event: pipeline.Event{ID: id, Body: root.JSON()}, fields: f}, nil
}

// readFields reads and checks the fields the host uses.
func readFields(obj *guest.Value, index int) (fields, error) {
	var f fields
	ferr := func(field, format string, args ...any) error {
		return &FieldError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	str := func(key string) (string, error) {
		v := obj.Key(key)
		if v.Kind() == guest.Null {
			return "", nil
		}
		s, ok := v.Str()
		if !ok {
			return "", ferr(key, "must be a string")
		}
		return s, nil
	}
	var err error
	if m := obj.Key("message"); m.Kind() == guest.Object {
		// Sentry's {"message": {"formatted": …}} form.
		f.Message = m.Key("formatted").String()
		if f.Message == "" {
			f.Message = m.Key("message").String()
		}
	} else if f.Message, err = str("message"); err != nil {
		return f, err
	}
	if f.Environment, err = str("environment"); err != nil {
		return f, err
	}
	if f.Release, err = str("release"); err != nil {
		return f, err
	}
	level, err := str("level")
	if err != nil {
		return f, err
	}
	if level != "" {
		l, ok := levelAliases[strings.ToLower(level)]
		if !ok {
			return f, ferr("level", "must be one of %s, got %q", strings.Join(Levels, ", "), truncate(level, 32))
		}
		f.Level = l
	}
	if v := obj.Key("timestamp"); v.Kind() != guest.Null {
		if f.Timestamp, err = parseTime(v); err != nil {
			return f, ferr("timestamp", "%v", err)
		}
	}
	if v := obj.Key("tags"); v.Kind() != guest.Null {
		if f.Tags, err = parseTags(v); err != nil {
			return f, ferr("tags", "%v", err)
		}
	}
	if v := obj.Key("exception"); v.Kind() != guest.Null {
		if f.exception, err = parseException(v); err != nil {
			return f, ferr("exception", "%v", err)
		}
	}
	if v := obj.Key("fingerprint"); v.Kind() != guest.Null {
		if s, ok := v.Str(); ok {
			f.fingerprint = []string{s}
		} else if v.Kind() == guest.Array {
			for _, e := range v.Elems() {
				s, ok := e.Str()
				if !ok {
					return f, ferr("fingerprint", "must be a string or an array of strings")
				}
				f.fingerprint = append(f.fingerprint, s)
			}
		} else {
			return f, ferr("fingerprint", "must be a string or an array of strings")
		}
	}
	return f, nil
}

func parseTime(v *guest.Value) (time.Time, error) {
	if s, ok := v.Str(); ok {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("must be RFC 3339 or Unix seconds, got %q", truncate(s, 64))
	}
	secs, ok := v.Float()
	if v.Kind() != guest.Number || !ok || math.IsNaN(secs) || secs < 0 || secs > 1e11 {
		return time.Time{}, fmt.Errorf("must be RFC 3339 or Unix seconds")
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// parseTags accepts an object of scalars or Sentry's [[key, value], …].
func parseTags(v *guest.Value) (map[string]string, error) {
	switch v.Kind() {
	case guest.Object:
		tags := make(map[string]string, v.Len())
		for _, m := range v.Members() {
			s, err := scalar(m.Value)
			if err != nil {
				return nil, fmt.Errorf("value of %q %v", m.Key, err)
			}
			tags[m.Key] = s
		}
		return tags, nil
	case guest.Array:
		tags := make(map[string]string, v.Len())
		for i, p := range v.Elems() {
			if p.Kind() != guest.Array || p.Len() != 2 {
				return nil, fmt.Errorf("pair %d must have 2 elements", i)
			}
			k, ok := p.Index(0).Str()
			if !ok {
				return nil, fmt.Errorf("key of pair %d must be a string", i)
			}
			s, err := scalar(p.Index(1))
			if err != nil {
				return nil, fmt.Errorf("value of %q %v", k, err)
			}
			tags[k] = s
		}
		return tags, nil
	}
	return nil, fmt.Errorf("must be an object or an array of [key, value] pairs")
}

func scalar(v *guest.Value) (string, error) {
	switch v.Kind() {
	case guest.String:
		s, _ := v.Str()
		return s, nil
	case guest.Number:
		f, ok := v.Float()
		if !ok {
			return v.String(), nil
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case guest.Bool:
		return v.String(), nil
	}
	return "", fmt.Errorf("must be a string, number or boolean")
}

// parseException accepts {"values": [...]} or a bare array of values.
func parseException(v *guest.Value) ([]exceptionValue, error) {
	values := v
	if v.Kind() == guest.Object {
		values = v.Key("values")
		if values.Kind() == guest.Null {
			return nil, nil
		}
	}
	if values.Kind() != guest.Array {
		return nil, fmt.Errorf("must be {\"values\": [...]} or an array of exception values")
	}
	out := make([]exceptionValue, 0, values.Len())
	for _, e := range values.Elems() {
		if e.Kind() != guest.Object {
			return nil, fmt.Errorf("must be {\"values\": [...]} or an array of exception values")
		}
		var ev exceptionValue
		var err error
		if ev.Type, err = optString(e, "type"); err != nil {
			return nil, err
		}
		if ev.Module, err = optString(e, "module"); err != nil {
			return nil, err
		}
		switch val := e.Key("value"); val.Kind() {
		case guest.Null:
		case guest.String:
			ev.Value, _ = val.Str()
		default:
			ev.Value = string(val.JSON())
		}
		for _, fr := range e.Get("stacktrace.frames").Elems() {
			var f frame
			if f.Module, err = optString(fr, "module"); err != nil {
				return nil, err
			}
			if f.Filename, err = optString(fr, "filename"); err != nil {
				return nil, err
			}
			if f.Function, err = optString(fr, "function"); err != nil {
				return nil, err
			}
			if b, ok := fr.Key("in_app").Bool(); ok {
				f.InApp = &b
			}
			ev.Frames = append(ev.Frames, f)
		}
		out = append(out, ev)
	}
	return out, nil
}

// optString reads an optional string member.
func optString(obj *guest.Value, key string) (string, error) {
	v := obj.Key(key)
	if v.Kind() == guest.Null {
		return "", nil
	}
	s, ok := v.Str()
	if !ok {
		return "", fmt.Errorf("%s must be a string", key)
	}
	return s, nil
}

// canonicalUUID accepts 32 hex digits with or without the four hyphens and
// returns the lower-case hyphenated form.
func canonicalUUID(s string) (string, bool) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || (len(s) != 32 && len(s) != 36) {
		return "", false
	}
	if len(s) == 36 && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
		return "", false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", false
	}
	return formatUUID(b), true
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b[:])
}

func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
