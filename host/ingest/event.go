package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
// one), timestamp (UTC), level (default error). Unknown fields are kept.
// index is the event's position in a bulk request, or -1.
func Normalize(raw json.RawMessage, index int, now time.Time) (*Normalized, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, &FieldError{Index: index, Field: "", Msg: "event must be a JSON object"}
	}
	ferr := func(field, format string, args ...any) error {
		return &FieldError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	var f fields
	var err error
	if f, err = readFields(obj, index); err != nil {
		return nil, err
	}
	if f.Message == "" && len(f.exception) == 0 {
		return nil, &FieldError{Index: index, Field: "message", Msg: `must be a non-empty string unless the event has an "exception"`}
	}
	id := ""
	if raw, ok := obj["event_id"]; ok && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, ferr("event_id", "must be a string")
		}
		if id, ok = canonicalUUID(s); !ok {
			return nil, ferr("event_id", "must be a UUID, got %q", truncate(s, 64))
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
	obj["event_id"] = mustJSON(id)
	obj["timestamp"] = mustJSON(f.Timestamp.Format(time.RFC3339Nano))
	obj["level"] = mustJSON(f.Level)
	if f.Tags != nil {
		obj["tags"] = mustJSON(f.Tags)
	}
	return &Normalized{Event: pipeline.Event{ID: id, Body: mustJSON(obj)}, fields: f}, nil
}

// readFields reads and checks the fields the host uses.
func readFields(obj map[string]json.RawMessage, index int) (fields, error) {
	var f fields
	ferr := func(field, format string, args ...any) error {
		return &FieldError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	str := func(key string) (string, error) {
		raw, ok := obj[key]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", ferr(key, "must be a string")
		}
		return s, nil
	}
	var err error
	if f.Message, err = str("message"); err != nil {
		// Sentry's {"message": {"formatted": …}} form.
		var m struct {
			Formatted string `json:"formatted"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(obj["message"], &m) != nil {
			return f, err
		}
		f.Message = m.Formatted
		if f.Message == "" {
			f.Message = m.Message
		}
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
	if raw, ok := obj["timestamp"]; ok && string(raw) != "null" {
		if f.Timestamp, err = parseTime(raw); err != nil {
			return f, ferr("timestamp", "%v", err)
		}
	}
	if raw, ok := obj["tags"]; ok && string(raw) != "null" {
		if f.Tags, err = parseTags(raw); err != nil {
			return f, ferr("tags", "%v", err)
		}
	}
	if raw, ok := obj["exception"]; ok && string(raw) != "null" {
		if f.exception, err = parseException(raw); err != nil {
			return f, ferr("exception", "%v", err)
		}
	}
	if raw, ok := obj["fingerprint"]; ok && string(raw) != "null" {
		var one string
		var many []string
		switch {
		case json.Unmarshal(raw, &one) == nil:
			f.fingerprint = []string{one}
		case json.Unmarshal(raw, &many) == nil:
			f.fingerprint = many
		default:
			return f, ferr("fingerprint", "must be a string or an array of strings")
		}
	}
	return f, nil
}

func parseTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("must be RFC 3339 or Unix seconds, got %q", truncate(s, 64))
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil || math.IsNaN(secs) || secs < 0 || secs > 1e11 {
		return time.Time{}, fmt.Errorf("must be RFC 3339 or Unix seconds")
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// parseTags accepts an object of scalars or Sentry's [[key, value], …].
func parseTags(raw json.RawMessage) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err == nil {
		tags := make(map[string]string, len(obj))
		for k, v := range obj {
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("value of %q %v", k, err)
			}
			tags[k] = s
		}
		return tags, nil
	}
	var pairs [][]json.RawMessage
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("must be an object or an array of [key, value] pairs")
	}
	tags := make(map[string]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("pair %d must have 2 elements", i)
		}
		var k string
		if json.Unmarshal(p[0], &k) != nil {
			return nil, fmt.Errorf("key of pair %d must be a string", i)
		}
		v, err := scalar(p[1])
		if err != nil {
			return nil, fmt.Errorf("value of %q %v", k, err)
		}
		tags[k] = v
	}
	return tags, nil
}

func scalar(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("must be a string, number or boolean")
}

// parseException accepts {"values": [...]} or a bare array of values.
func parseException(raw json.RawMessage) ([]exceptionValue, error) {
	type stacktrace struct {
		Frames []frame `json:"frames"`
	}
	type value struct {
		Type       string      `json:"type"`
		Value      any         `json:"value"`
		Module     string      `json:"module"`
		Stacktrace *stacktrace `json:"stacktrace"`
	}
	var wrapped struct {
		Values []value `json:"values"`
	}
	var values []value
	if err := json.Unmarshal(raw, &wrapped); err == nil {
		values = wrapped.Values
	} else if err := json.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("must be {\"values\": [...]} or an array of exception values")
	}
	out := make([]exceptionValue, 0, len(values))
	for _, v := range values {
		ev := exceptionValue{Type: v.Type, Module: v.Module}
		switch x := v.Value.(type) {
		case string:
			ev.Value = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			ev.Value = string(b)
		}
		if v.Stacktrace != nil {
			ev.Frames = v.Stacktrace.Frames
		}
		out = append(out, ev)
	}
	return out, nil
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
