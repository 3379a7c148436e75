// Package batch holds what both store backends do to a batch of events
// before they touch the database: find resends within the batch, group the
// new events by issue, and rank levels.
package batch

import (
	"bytes"
	"encoding/hex"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mesher-dev/mesher/host/store"
)

// Levels, least to most severe.
var levels = [...]string{"debug", "info", "warning", "error", "fatal"}

// LevelRank orders levels, debug (0) to fatal (4); an unknown level ranks as
// error, as at ingestion.
func LevelRank(l string) int {
	for i, v := range levels {
		if v == l {
			return i
		}
	}
	return 3
}

// MaxLevel returns the more severe of a and b, a if they rank the same.
func MaxLevel(a, b string) string {
	if LevelRank(b) > LevelRank(a) {
		return b
	}
	return a
}

// FirstIndex returns, for each event, the index of the first event of the
// batch with the same project and id (UUIDs compared by value): its own
// index unless it is a resend of an earlier event of the same batch.
func FirstIndex(events []*store.Event) []int {
	type key struct{ project, id string }
	first := make(map[key]int, len(events))
	out := make([]int, len(events))
	for i, e := range events {
		k := key{canonical(e.ProjectID), canonical(e.ID)}
		if j, ok := first[k]; ok {
			out[i] = j
			continue
		}
		first[k] = i
		out[i] = i
	}
	return out
}

// canonical returns the canonical form of a UUID, written in any of the
// forms ParseUUID takes; anything else in lower case.
func canonical(s string) string {
	if u, ok := ParseUUID(s); ok {
		return FormatUUID(u)
	}
	return strings.ToLower(s)
}

// Group is the new events of one batch that belong to one issue. Its text
// fields are cleaned (see CleanText).
type Group struct {
	ProjectID   string // canonical: lower case, hyphenated
	Fingerprint string
	Title       string    // the first event's, for a new issue
	Level       string    // the most severe
	Count       int64     // number of new events
	FirstSeen   time.Time // earliest timestamp, in microseconds, UTC
	LastSeen    time.Time // latest timestamp, in microseconds, UTC
	First       int       // index of the group's first event in the batch
	Events      []int     // indexes of its events in the batch, in order
}

// Groups groups the events whose index isNew reports by project and
// fingerprint, sorted by project then fingerprint (byte order), the order
// in which backends lock issues.
func Groups(events []*store.Event, isNew func(i int) bool) []*Group {
	type key struct{ project, fingerprint string }
	byKey := make(map[key]*Group)
	var out []*Group
	for i, e := range events {
		if !isNew(i) {
			continue
		}
		ts := Micro(e.Timestamp)
		k := key{canonical(e.ProjectID), CleanText(e.Fingerprint)}
		level := CleanText(e.Level)
		g := byKey[k]
		if g == nil {
			g = &Group{ProjectID: k.project, Fingerprint: k.fingerprint, Title: CleanText(e.Title), Level: level,
				FirstSeen: ts, LastSeen: ts, First: i}
			byKey[k] = g
			out = append(out, g)
		}
		g.Count++
		g.Events = append(g.Events, i)
		g.Level = MaxLevel(g.Level, level)
		if ts.Before(g.FirstSeen) {
			g.FirstSeen = ts
		}
		if ts.After(g.LastSeen) {
			g.LastSeen = ts
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProjectID != out[j].ProjectID {
			return out[i].ProjectID < out[j].ProjectID
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// Micro returns t in UTC, truncated to the microseconds both backends keep.
func Micro(t time.Time) time.Time {
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// ParseUUID parses a UUID written as 32 hex digits, with or without the
// four hyphens, in either case.
func ParseUUID(s string) (u [16]byte, ok bool) {
	switch len(s) {
	case 32:
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, false
		}
		s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	default:
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return u, false
	}
	return u, true
}

// FormatUUID writes u in the canonical lower-case hyphenated form.
func FormatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// CleanText replaces what PostgreSQL text cannot hold, NUL characters and
// invalid UTF-8, with U+FFFD, so that one odd event cannot fail the batch
// it is committed with.
func CleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// CleanJSON returns b with what PostgreSQL's jsonb refuses replaced by
// U+FFFD: invalid UTF-8, and the escape \u0000 inside strings. It returns b
// itself when there is nothing to replace, the usual case.
func CleanJSON(b []byte) []byte {
	if !utf8.Valid(b) {
		// Each invalid byte becomes one U+FFFD, as encoding/json decodes it.
		valid := make([]byte, 0, len(b)+8)
		for len(b) > 0 {
			r, size := utf8.DecodeRune(b)
			if r == utf8.RuneError && size == 1 {
				valid = append(valid, "\uFFFD"...)
			} else {
				valid = append(valid, b[:size]...)
			}
			b = b[size:]
		}
		b = valid
	}
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		// An escape: copy it whole, so that the u0000 of \\u0000 (an
		// escaped backslash, then text) is not taken for one.
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			out = append(out, `\ufffd`...)
			i += 5
			continue
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}
