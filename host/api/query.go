package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// queryParams reads and validates a request's query parameters: each
// error is a 400 naming the parameter.
type queryParams struct {
	values map[string][]string
}

// parseQuery refuses parameters the route does not take and, except those
// in multi, parameters given more than once.
func parseQuery(r *http.Request, allowed, multi []string) (*queryParams, error) {
	q := r.URL.Query()
	for k, vs := range q {
		if !slices.Contains(allowed, k) && !slices.Contains(multi, k) {
			all := append(slices.Clone(allowed), multi...)
			return nil, errorf(http.StatusBadRequest, "unknown query parameter %q; this route takes %s", k, strings.Join(all, ", "))
		}
		if len(vs) > 1 && !slices.Contains(multi, k) {
			return nil, errorf(http.StatusBadRequest, "query parameter %q is given %d times; give it once", k, len(vs))
		}
	}
	return &queryParams{values: q}, nil
}

func (q *queryParams) get(name string) string {
	if vs := q.values[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// text returns a free-text parameter, trimmed, of at most max characters.
func (q *queryParams) text(name string, max int) (string, error) {
	v := strings.TrimSpace(q.get(name))
	if !utf8.ValidString(v) {
		return "", errorf(http.StatusBadRequest, "query parameter %q is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return "", errorf(http.StatusBadRequest, "query parameter %q is %d characters long; at most %d", name, n, max)
	}
	return v, nil
}

// oneOf returns a parameter that must be one of values, or def if absent.
func (q *queryParams) oneOf(name, def string, values ...string) (string, error) {
	v := q.get(name)
	if v == "" {
		return def, nil
	}
	if !slices.Contains(values, v) {
		return "", errorf(http.StatusBadRequest, "query parameter %q must be one of %s, got %q", name, strings.Join(values, ", "), v)
	}
	return v, nil
}

// limit returns ?limit, def when absent, 1 to max.
func (q *queryParams) limit(def, max int) (int, error) {
	v := q.get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errorf(http.StatusBadRequest, "query parameter %q must be a whole number from 1 to %d, got %q", "limit", max, v)
	}
	return n, nil
}

// timeRange returns ?from and ?to (RFC 3339), to defaulting to now and
// from to span before to. from must be before to.
func (q *queryParams) timeRange(now time.Time, span time.Duration) (from, to time.Time, err error) {
	parse := func(name string) (time.Time, error) {
		v := q.get(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, errorf(http.StatusBadRequest, "query parameter %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, v)
		}
		if t.Year() < 1970 || t.Year() > 9999 {
			return time.Time{}, errorf(http.StatusBadRequest, "query parameter %q must be between 1970 and 9999, got %q", name, v)
		}
		return t.UTC(), nil
	}
	if from, err = parse("from"); err != nil {
		return
	}
	if to, err = parse("to"); err != nil {
		return
	}
	if to.IsZero() {
		to = now.UTC()
	}
	if from.IsZero() {
		from = to.Add(-span)
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, errorf(http.StatusBadRequest, "query parameter %q (%s) must be before %q (%s)",
			"from", from.Format(time.RFC3339Nano), "to", to.Format(time.RFC3339Nano))
	}
	return from, to, nil
}

// Cursors are opaque to clients: the JSON of a page's last item, and an
// HMAC-SHA256 over it, the kind of listing and its scope (a project or an
// issue), keyed by the admin token's hash — the same on every node of a
// cluster. A cursor that was changed, or that belongs to another listing,
// is refused with 400.

const cursorParam = "cursor"

func (a *API) cursorMAC(kind, scope string, payload []byte) []byte {
	key := sha256.Sum256([]byte("mesher cursor\x00" + a.cfg.AdminTokenHash))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(kind + "\x00" + scope + "\x00"))
	m.Write(payload)
	return m.Sum(nil)[:16]
}

// encodeCursor returns the cursor of v in a listing.
func (a *API) encodeCursor(kind, scope string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic(err) // cursor values are plain structs
	}
	return base64.RawURLEncoding.EncodeToString(append(payload, a.cursorMAC(kind, scope, payload)...))
}

// decodeCursor reads ?cursor into v, and reports whether there was one.
func (a *API) decodeCursor(q *queryParams, kind, scope string, v any) (bool, error) {
	raw := q.get(cursorParam)
	if raw == "" {
		return false, nil
	}
	bad := errorf(http.StatusBadRequest, "query parameter %q is not a cursor of this listing: pass next_cursor back unchanged", cursorParam)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) <= 16 {
		return false, bad
	}
	payload, mac := b[:len(b)-16], b[len(b)-16:]
	if !hmac.Equal(mac, a.cursorMAC(kind, scope, payload)) {
		return false, bad
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return false, bad
	}
	return true, nil
}
