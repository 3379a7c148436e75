package api

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/store"
)

// eventSummary is an event in a listing: everything but its body and
// flags, which GET /api/v1/projects/:project/events/:id returns.
type eventSummary struct {
	ID          string            `json:"id"`
	IssueID     int64             `json:"issue_id"`
	Fingerprint string            `json:"fingerprint"`
	Title       string            `json:"title"`
	Level       string            `json:"level"`
	Message     string            `json:"message,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Release     string            `json:"release,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Timestamp   time.Time         `json:"timestamp"`
	ReceivedAt  time.Time         `json:"received_at"`
}

// eventCursor is the position of an event in a listing.
type eventCursor struct {
	ReceivedAt int64  `json:"t"` // Unix microseconds
	ID         string `json:"id"`
}

// listEvents runs eq for a page of limit events, with the cursor of the
// listing kind/scope, and writes {"events", "next_cursor", plus extra}.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, q *queryParams, kind, scope string, eq store.EventQuery, extra map[string]any) error {
	var c eventCursor
	if ok, err := a.decodeCursor(q, kind, scope, &c); err != nil {
		return err
	} else if ok {
		if !uuidShapeRE.MatchString(c.ID) {
			return errorf(http.StatusBadRequest, "query parameter %q is not a cursor of this listing", cursorParam)
		}
		eq.Before = &store.EventCursor{ReceivedAt: time.UnixMicro(c.ReceivedAt).UTC(), ID: c.ID}
	}
	limit := eq.Limit
	eq.Limit++
	events, err := a.cfg.Store.SearchEvents(r.Context(), eq)
	if err != nil {
		return err
	}
	var next *string
	if len(events) > limit {
		events = events[:limit]
		last := events[limit-1]
		s := a.encodeCursor(kind, scope, eventCursor{last.ReceivedAt.UnixMicro(), last.ID})
		next = &s
	}
	out := make([]eventSummary, len(events))
	for i, e := range events {
		out[i] = eventSummary{ID: e.ID, IssueID: e.IssueID, Fingerprint: e.Fingerprint, Title: e.Title, Level: e.Level,
			Message: e.Message, Environment: e.Environment, Release: e.Release, Tags: e.Tags,
			Timestamp: e.Timestamp, ReceivedAt: e.ReceivedAt}
	}
	resp := map[string]any{"events": out, "next_cursor": next}
	for k, v := range extra {
		resp[k] = v
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// searchEvents is GET /api/v1/projects/:project/events?q=&tag=key:value&
// from=&to=&limit=&cursor=: a project's events received in the range
// (default the last 24 hours), newest first, matching the full-text query
// and every tag.
func (a *API) searchEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"q", "from", "to", "limit", cursorParam}, []string{"tag"})
	if err != nil {
		return err
	}
	eq := store.EventQuery{ProjectID: p.ID}
	if eq.Text, err = q.text("q", maxQueryText); err != nil {
		return err
	}
	tags := q.values["tag"]
	if len(tags) > maxTagFilters {
		return errorf(http.StatusBadRequest, "query parameter %q is given %d times; at most %d", "tag", len(tags), maxTagFilters)
	}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, ":")
		k = strings.TrimSpace(k)
		switch {
		case !ok || k == "":
			return errorf(http.StatusBadRequest, "query parameter %q must be key:value, got %q", "tag", t)
		case !utf8.ValidString(t):
			return errorf(http.StatusBadRequest, "query parameter %q is not valid UTF-8", "tag")
		case utf8.RuneCountInString(k) > store.MaxTagLength || utf8.RuneCountInString(v) > store.MaxTagLength:
			return errorf(http.StatusBadRequest, "query parameter %q: key and value must be at most %d characters each", "tag", store.MaxTagLength)
		}
		eq.Tags = append(eq.Tags, store.TagFilter{Key: k, Value: v})
	}
	if eq.From, eq.To, err = q.timeRange(a.cfg.Now(), defaultHourRange); err != nil {
		return err
	}
	if eq.Limit, err = q.limit(defaultPage, store.MaxPage); err != nil {
		return err
	}
	return a.listEvents(w, r, q, "events", p.ID, eq, map[string]any{"from": eq.From, "to": eq.To})
}

// issueEvents is GET /api/v1/issues/:id/events?limit=&cursor=: the
// issue's events, newest first.
func (a *API) issueEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	is, p, err := a.issueFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"limit", cursorParam}, nil)
	if err != nil {
		return err
	}
	eq := store.EventQuery{ProjectID: p.ID, IssueID: is.ID}
	if eq.Limit, err = q.limit(defaultPage, store.MaxPage); err != nil {
		return err
	}
	return a.listEvents(w, r, q, "issue-events", p.ID+"/"+ps.ByName("id"), eq, map[string]any{"issue_id": is.ID})
}

// eventDetail is one stored event and its neighbors within its issue:
// prev_id was received just before it, next_id just after (null at
// either end).
type eventDetail struct {
	*store.Event
	PrevID *string `json:"prev_id"`
	NextID *string `json:"next_id"`
}

// writeEventDetail answers GET /api/v1/projects/:project/events/:id with
// the event and its neighbors.
func (a *API) writeEventDetail(w http.ResponseWriter, r *http.Request, e *store.Event) error {
	prev, next, err := a.cfg.Store.EventNeighbors(r.Context(), e)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d := eventDetail{Event: e}
	if prev != "" {
		d.PrevID = &prev
	}
	if next != "" {
		d.NextID = &next
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
