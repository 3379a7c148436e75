package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/store"
)

// Fingerprint returns the grouping key of an event as hex SHA-256. A
// processor's fingerprint wins; otherwise, in order: the event's own
// "fingerprint" (string or array), its stack frames (module or filename,
// and function; no line numbers, so a moved line groups with the same
// issue), its exception type and value, its normalised message.
func Fingerprint(processorSet string, f *fields) string {
	switch {
	case processorSet != "":
		return hash("processor", processorSet)
	case len(f.fingerprint) > 0:
		return hash(append([]string{"custom"}, f.fingerprint...)...)
	}
	if parts := frameParts(f.exception); len(parts) > 0 {
		return hash(append([]string{"frames"}, parts...)...)
	}
	if len(f.exception) > 0 {
		e := f.exception[len(f.exception)-1]
		return hash("exception", e.Type, NormalizeMessage(e.Value))
	}
	return hash("message", NormalizeMessage(f.Message))
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// frameParts lists "module|function" of every frame of every exception,
// preferring in-app frames when the event marks some.
func frameParts(exc []exceptionValue) []string {
	var all, inApp []string
	for _, e := range exc {
		if len(e.Frames) > 0 {
			all = append(all, "type:"+e.Type)
			inApp = append(inApp, "type:"+e.Type)
		}
		for _, fr := range e.Frames {
			loc := fr.Module
			if loc == "" {
				loc = fr.Filename
			}
			if loc == "" && fr.Function == "" {
				continue
			}
			p := loc + "|" + fr.Function
			all = append(all, p)
			if fr.InApp != nil && *fr.InApp {
				inApp = append(inApp, p)
			}
		}
	}
	if len(inApp) > countTypes(inApp) {
		return inApp
	}
	if len(all) > countTypes(all) {
		return all
	}
	return nil
}

func countTypes(parts []string) int {
	n := 0
	for _, p := range parts {
		if strings.HasPrefix(p, "type:") {
			n++
		}
	}
	return n
}

var (
	uuidRE   = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	hexRE    = regexp.MustCompile(`\b(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{6,})\b`)
	ipRE     = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b`)
	numberRE = regexp.MustCompile(`\d+(?:\.\d+)?`)
	spaceRE  = regexp.MustCompile(`\s+`)
)

// NormalizeMessage strips what varies between occurrences of the same
// error — UUIDs, hex ids, IP addresses, numbers, runs of white space — so
// that "timeout after 31 ms" and "timeout after 2000 ms" group together.
func NormalizeMessage(s string) string {
	if len(s) > 1024 {
		s = s[:1024]
	}
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	s = ipRE.ReplaceAllString(s, "<ip>")
	s = hexRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "0x") || strings.ContainsAny(m, "0123456789") {
			return "<hex>" // an id, not a word such as "facade"
		}
		return m
	})
	s = numberRE.ReplaceAllString(s, "<n>")
	return strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
}

// Title returns an issue title: the processor's, else "Type: value" of the
// exception, else the message's first line.
func Title(processorSet string, f *fields) string {
	if processorSet != "" {
		return truncate(processorSet, 200)
	}
	if len(f.exception) > 0 {
		e := f.exception[len(f.exception)-1]
		t := e.Type
		if e.Value != "" {
			if t != "" {
				t += ": "
			}
			t += firstLine(e.Value)
		}
		if t != "" {
			return truncate(t, 200)
		}
	}
	if f.Message != "" {
		return truncate(firstLine(f.Message), 200)
	}
	return "<untitled>"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return strings.TrimSpace(s)
}

// Finalize turns a processed event into what is stored. orig, if not nil,
// is the normalized event the body came from unchanged, whose fields are
// reused; otherwise the body is read again.
func Finalize(ev *pipeline.Event, orig *Normalized, projectID string, received time.Time) (*store.Event, error) {
	var f fields
	if orig != nil {
		f = orig.fields
	} else {
		obj, err := guest.Parse(ev.Body)
		if err != nil || obj.Kind() != guest.Object {
			return nil, fmt.Errorf("processed event %s is not a JSON object", ev.ID)
		}
		if f, err = readFields(obj, -1); err != nil {
			// A processor produced a field the host cannot read: keep the
			// event, flagged, with what can be read.
			f = lenientFields(obj)
			ev.Flags = append(ev.Flags, pipeline.Flag{Processor: "host", Reason: "invalid_field", Error: err.Error()})
		}
		if f.Level == "" {
			f.Level = "error"
		}
		if f.Timestamp.IsZero() {
			f.Timestamp = received
		}
	}
	se := &store.Event{
		ID:          ev.ID,
		ProjectID:   projectID,
		Fingerprint: Fingerprint(ev.Fingerprint, &f),
		Title:       Title(ev.Title, &f),
		Level:       f.Level,
		Message:     f.Message,
		Environment: f.Environment,
		Release:     f.Release,
		Tags:        f.Tags,
		Timestamp:   f.Timestamp,
		ReceivedAt:  received,
		Body:        ev.Body,
	}
	if se.Message == "" && len(f.exception) > 0 {
		se.Message = f.exception[len(f.exception)-1].Value
	}
	if len(ev.Flags) > 0 {
		se.Flags = mustJSON(ev.Flags)
	}
	return se, nil
}

// lenientFields reads what it can from a body whose fields did not pass
// readFields, so the event is still stored and grouped.
func lenientFields(obj *guest.Value) fields {
	var f fields
	get := func(k string) string {
		s, _ := obj.Key(k).Str()
		return s
	}
	f.Message, f.Environment, f.Release = get("message"), get("environment"), get("release")
	f.Level = levelAliases[strings.ToLower(get("level"))]
	if t, err := parseTime(obj.Key("timestamp")); err == nil {
		f.Timestamp = t
	}
	if tags, err := parseTags(obj.Key("tags")); err == nil {
		f.Tags = tags
	}
	if exc, err := parseException(obj.Key("exception")); err == nil {
		f.exception = exc
	}
	return f
}
