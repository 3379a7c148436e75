package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// appEvent is an event the App tests commit: received at a chosen time.
type appEvent struct {
	fp, level, title, message string
	exception                 string // an exception value in the body, if set
	tags                      map[string]string
	received                  time.Time
}

// commitApp commits events of project p in one batch and returns them.
func commitApp(t *testing.T, s store.Store, p *store.Project, evs ...appEvent) []*store.Event {
	t.Helper()
	out := make([]*store.Event, len(evs))
	for i, a := range evs {
		body := map[string]any{"message": a.message}
		if a.exception != "" {
			body["exception"] = map[string]any{"values": []any{map[string]any{"type": "Error", "value": a.exception}}}
		}
		raw, _ := json.Marshal(body)
		title := a.title
		if title == "" {
			title = a.fp
		}
		level := a.level
		if level == "" {
			level = "error"
		}
		out[i] = &store.Event{ID: NewID(), ProjectID: p.ID, Fingerprint: a.fp, Title: title, Level: level,
			Message: a.message, Tags: a.tags, Timestamp: a.received, ReceivedAt: a.received, Body: raw}
	}
	_, err := s.Commit(context.Background(), out)
	noErr(t, "Commit", err)
	return out
}

func issueIDs(issues []*store.Issue) []int64 {
	out := []int64{}
	for _, is := range issues {
		out = append(out, is.ID)
	}
	return out
}

func eventIDs(events []*store.Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// hour is the start of the current UTC hour, minus n hours.
func hour(n int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(n) * time.Hour)
}

func testTriage(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	at := hour(2)
	a := commitApp(t, s, p,
		appEvent{fp: "A", title: "TypeError: x is undefined", level: "error", received: at},
		appEvent{fp: "A", level: "fatal", received: at.Add(time.Minute), tags: map[string]string{"os": "linux"}},
	)
	b := commitApp(t, s, p, appEvent{fp: "B", title: "Payment FAILED for order", level: "warning", received: at.Add(2 * time.Minute), tags: map[string]string{"os": "linux"}})
	c := commitApp(t, s, p, appEvent{fp: "C", title: "payment timeout", level: "info", received: at.Add(3 * time.Minute)})
	d := commitApp(t, s, q, appEvent{fp: "A", title: "other project", received: at.Add(4 * time.Minute)})
	ia, ib, ic, id := a[0].IssueID, b[0].IssueID, c[0].IssueID, d[0].IssueID
	// last_seen is the event timestamp: C, B, A in p.

	t.Run("by id", func(t *testing.T) {
		is, err := s.IssueByID(ctx, ib)
		noErr(t, "IssueByID", err)
		if is.ProjectID != p.ID || is.Fingerprint != "B" || is.Count != 1 {
			t.Errorf("IssueByID(%d): got %+v, want issue B of project %s", ib, is, p.ID)
		}
		_, err = s.IssueByID(ctx, id+1000)
		wantErr(t, "IssueByID of an unknown id", err, store.ErrNotFound)
	})
	noErr(t, "SetIssueStatus", s.SetIssueStatus(ctx, p.ID, ib, store.StatusResolved))
	noErr(t, "AssignIssue", s.AssignIssue(ctx, p.ID, ia, "member-1"))

	t.Run("list", func(t *testing.T) {
		cases := []struct {
			name string
			q    store.IssueQuery
			want []int64
		}{
			{"all, latest first", store.IssueQuery{}, []int64{ic, ib, ia}},
			{"unresolved", store.IssueQuery{Status: store.StatusUnresolved}, []int64{ic, ia}},
			{"resolved", store.IssueQuery{Status: store.StatusResolved}, []int64{ib}},
			{"archived", store.IssueQuery{Status: store.StatusArchived}, []int64{}},
			{"discarded", store.IssueQuery{Status: store.StatusDiscarded}, []int64{}},
			{"level", store.IssueQuery{Level: "fatal"}, []int64{ia}},
			{"assigned", store.IssueQuery{AssignedTo: "member-1"}, []int64{ia}},
			{"assigned to another", store.IssueQuery{AssignedTo: "member-2"}, []int64{}},
			{"text ignores case", store.IssueQuery{Text: "PAYMENT"}, []int64{ic, ib}},
			{"text inside a word", store.IssueQuery{Text: "undef"}, []int64{ia}},
			{"text and level", store.IssueQuery{Text: "payment", Level: "info"}, []int64{ic}},
			{"limit", store.IssueQuery{Limit: 2}, []int64{ic, ib}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				c.q.ProjectID = p.ID
				if c.q.Limit == 0 {
					c.q.Limit = 1000
				}
				got, err := s.ListIssues(ctx, c.q)
				noErr(t, "ListIssues", err)
				if ids := issueIDs(got); !reflect.DeepEqual(ids, c.want) {
					t.Errorf("ListIssues(%+v): got %v, want %v", c.q, ids, c.want)
				}
			})
		}
	})
	t.Run("pages", func(t *testing.T) {
		// Issues with the same last seen are ordered by id, highest first.
		r := newProject(t, s)
		var evs []appEvent
		for i := range 7 {
			evs = append(evs, appEvent{fp: fmt.Sprintf("P%d", i), received: at.Add(time.Duration(i%3) * time.Second)})
		}
		commitApp(t, s, r, evs...)
		all, err := s.ListIssues(ctx, store.IssueQuery{ProjectID: r.ID, Limit: 1000})
		noErr(t, "ListIssues", err)
		if len(all) != 7 {
			t.Fatalf("ListIssues: got %d issues, want 7", len(all))
		}
		for i := 1; i < len(all); i++ {
			x, y := all[i-1], all[i]
			if x.LastSeen.Before(y.LastSeen) || (x.LastSeen.Equal(y.LastSeen) && x.ID < y.ID) {
				t.Errorf("issues %d and %d out of order: %v/%d before %v/%d", i-1, i, x.LastSeen, x.ID, y.LastSeen, y.ID)
			}
		}
		var walked []*store.Issue
		var after *store.IssueCursor
		for range 10 {
			page, err := s.ListIssues(ctx, store.IssueQuery{ProjectID: r.ID, Limit: 3, After: after})
			noErr(t, "ListIssues", err)
			walked = append(walked, page...)
			if len(page) < 3 {
				break
			}
			last := page[len(page)-1]
			after = &store.IssueCursor{LastSeen: last.LastSeen, ID: last.ID}
		}
		if got, want := issueIDs(walked), issueIDs(all); !reflect.DeepEqual(got, want) {
			t.Errorf("pages of 3: got %v, want %v", got, want)
		}
	})
	t.Run("assign", func(t *testing.T) {
		is, err := s.Issue(ctx, p.ID, ia)
		noErr(t, "Issue", err)
		if is.AssignedTo != "member-1" {
			t.Errorf("AssignedTo: got %q, want %q", is.AssignedTo, "member-1")
		}
		noErr(t, "AssignIssue to nobody", s.AssignIssue(ctx, p.ID, ia, ""))
		is, err = s.Issue(ctx, p.ID, ia)
		noErr(t, "Issue", err)
		if is.AssignedTo != "" {
			t.Errorf("AssignedTo after unassigning: got %q, want none", is.AssignedTo)
		}
		wantErr(t, "AssignIssue of another project's issue", s.AssignIssue(ctx, q.ID, ia, "m"), store.ErrNotFound)
	})
	t.Run("discard", func(t *testing.T) {
		first := base.Add(time.Hour)
		noErr(t, "DiscardIssue", s.DiscardIssue(ctx, p.ID, ic, first))
		noErr(t, "DiscardIssue again", s.DiscardIssue(ctx, p.ID, ic, first.Add(time.Hour)))
		wantErr(t, "DiscardIssue of another project's issue", s.DiscardIssue(ctx, q.ID, ic, first), store.ErrNotFound)
		is, err := s.Issue(ctx, p.ID, ic)
		noErr(t, "Issue", err)
		if is.DiscardedAt == nil || !is.DiscardedAt.Equal(utc(first)) {
			t.Errorf("DiscardedAt: got %v, want %v", is.DiscardedAt, utc(first))
		} else {
			checkUTC(t, "DiscardedAt", *is.DiscardedAt)
		}
		for _, c := range []struct {
			status string
			want   []int64
		}{{"", []int64{ib, ia}}, {store.StatusUnresolved, []int64{ia}}, {store.StatusDiscarded, []int64{ic}}} {
			got, err := s.ListIssues(ctx, store.IssueQuery{ProjectID: p.ID, Status: c.status, Limit: 10})
			noErr(t, "ListIssues", err)
			if ids := issueIDs(got); !reflect.DeepEqual(ids, c.want) {
				t.Errorf("ListIssues with status %q after a discard: got %v, want %v", c.status, ids, c.want)
			}
		}
		ds, err := s.DiscardedIssues(ctx)
		noErr(t, "DiscardedIssues", err)
		if want := []store.DiscardedIssue{{ID: ic, ProjectID: p.ID, Fingerprint: "C"}}; !reflect.DeepEqual(ds, want) {
			t.Errorf("DiscardedIssues: got %+v, want %+v", ds, want)
		}
		noErr(t, "AddDropped", s.AddDropped(ctx, map[int64]int64{ic: 3, id + 1000: 5}))
		noErr(t, "AddDropped", s.AddDropped(ctx, map[int64]int64{ic: 2}))
		is, err = s.Issue(ctx, p.ID, ic)
		noErr(t, "Issue", err)
		if is.Dropped != 5 {
			t.Errorf("Dropped: got %d, want 5", is.Dropped)
		}
	})
	t.Run("delete", func(t *testing.T) {
		wantErr(t, "DeleteIssue of another project's issue", s.DeleteIssue(ctx, q.ID, ia), store.ErrNotFound)
		noErr(t, "DeleteIssue", s.DeleteIssue(ctx, p.ID, ia))
		wantErr(t, "DeleteIssue again", s.DeleteIssue(ctx, p.ID, ia), store.ErrNotFound)
		_, err := s.Issue(ctx, p.ID, ia)
		wantErr(t, "Issue after delete", err, store.ErrNotFound)
		for _, e := range a {
			_, err := s.Event(ctx, p.ID, e.ID)
			wantErr(t, "Event of a deleted issue", err, store.ErrNotFound)
		}
		if _, err := s.Event(ctx, p.ID, b[0].ID); err != nil {
			t.Errorf("Event of another issue after delete: %v", err)
		}
		if _, err := s.Issue(ctx, q.ID, id); err != nil {
			t.Errorf("issue of another project with the same fingerprint after delete: %v", err)
		}
		day := at.Truncate(24 * time.Hour)
		tags, err := s.TopTagValues(ctx, p.ID, "os", day, day.Add(24*time.Hour), 10)
		noErr(t, "TopTagValues", err)
		if want := []store.TagValueCount{{Value: "linux", Count: 1}}; !reflect.DeepEqual(tags, want) {
			t.Errorf("tag counts after delete: got %+v, want %+v (the deleted issue's event no longer counted)", tags, want)
		}
		levels, err := s.LevelCounts(ctx, p.ID, at, at.Add(time.Hour))
		noErr(t, "LevelCounts", err)
		if want := map[string]int64{"warning": 1, "info": 1}; !reflect.DeepEqual(levels, want) {
			t.Errorf("level counts after delete: got %v, want %v", levels, want)
		}
		// A resend of a deleted event, and a new event of its fingerprint,
		// are new: in a new issue.
		a[0].IssueID = 0
		res, err := s.Commit(ctx, a[:1])
		noErr(t, "Commit", err)
		if res[0].Duplicate || !res[0].NewIssue || res[0].IssueID == ia {
			t.Errorf("resend of a deleted event: got %+v, want a new event in a new issue", res[0])
		}
	})
}

func testSearch(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	at := hour(1)
	evs := commitApp(t, s, p,
		appEvent{fp: "db", message: "connection refused by database", tags: map[string]string{"env": "prod", "region": "eu"}, received: at},
		appEvent{fp: "db", message: "connection reset", tags: map[string]string{"env": "prod", "region": "us"}, received: at.Add(time.Second)},
		appEvent{fp: "js", message: "render failed", exception: "Cannot read properties of undefined (reading 'total')", tags: map[string]string{"env": "staging"}, received: at.Add(2 * time.Second)},
		appEvent{fp: "mail", title: "Mailer crashed", message: "smtp timeout for bob@example.com", received: at.Add(3 * time.Second)},
		appEvent{fp: "db", message: "database is locked", tags: map[string]string{"env": "prod", "region": "eu"}, received: at.Add(-25 * time.Hour)},
	)
	commitApp(t, s, q, appEvent{fp: "db", message: "connection refused by database", received: at})
	e0, e1, e2, e3, e4 := evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID, evs[4].ID
	from, to := at.Add(-time.Hour), at.Add(time.Hour)

	cases := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"range, newest first", store.EventQuery{}, []string{e3, e2, e1, e0}},
		{"no range", store.EventQuery{To: to.Add(time.Hour)}, []string{e3, e2, e1, e0, e4}},
		{"word in message", store.EventQuery{Text: "connection"}, []string{e1, e0}},
		{"words ANDed", store.EventQuery{Text: "connection database"}, []string{e0}},
		{"word in an exception value", store.EventQuery{Text: "properties"}, []string{e2}},
		{"word in the title", store.EventQuery{Text: "mailer"}, []string{e3}},
		{"case", store.EventQuery{Text: "CONNECTION Refused"}, []string{e0}},
		{"phrase", store.EventQuery{Text: `"connection reset"`}, []string{e1}},
		{"phrase out of order", store.EventQuery{Text: `"reset connection"`}, []string{}},
		{"excluded word", store.EventQuery{Text: "connection -reset"}, []string{e0}},
		{"only an excluded word", store.EventQuery{Text: "-connection"}, []string{e3, e2}},
		{"or", store.EventQuery{Text: "reset or render"}, []string{e2, e1}},
		{"e-mail address", store.EventQuery{Text: "bob@example.com"}, []string{e3}},
		{"no word", store.EventQuery{Text: "!!! ..."}, []string{}},
		{"unknown word", store.EventQuery{Text: "zebra"}, []string{}},
		{"tag", store.EventQuery{Tags: []store.TagFilter{{Key: "env", Value: "prod"}}}, []string{e1, e0}},
		{"tags ANDed", store.EventQuery{Tags: []store.TagFilter{{Key: "env", Value: "prod"}, {Key: "region", Value: "eu"}}}, []string{e0}},
		{"tag and text", store.EventQuery{Text: "connection", Tags: []store.TagFilter{{Key: "region", Value: "us"}}}, []string{e1}},
		{"tag that no event has", store.EventQuery{Tags: []store.TagFilter{{Key: "env", Value: "dev"}}}, []string{}},
		{"text and an old range", store.EventQuery{Text: "database", From: at.Add(-26 * time.Hour), To: at.Add(-24 * time.Hour)}, []string{e4}},
		{"issue", store.EventQuery{IssueID: evs[0].IssueID}, []string{e1, e0}},
		{"limit", store.EventQuery{Limit: 2}, []string{e3, e2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.q.ProjectID = p.ID
			if c.q.Limit == 0 {
				c.q.Limit = 1000
			}
			if c.q.From.IsZero() && c.q.To.IsZero() {
				c.q.From, c.q.To = from, to
			}
			got, err := s.SearchEvents(ctx, c.q)
			noErr(t, "SearchEvents", err)
			if ids := eventIDs(got); !reflect.DeepEqual(ids, c.want) {
				t.Errorf("SearchEvents(%+v): got %v, want %v", c.q, ids, c.want)
			}
		})
	}
	t.Run("fields", func(t *testing.T) {
		got, err := s.SearchEvents(ctx, store.EventQuery{ProjectID: p.ID, Text: "reset", Limit: 1})
		noErr(t, "SearchEvents", err)
		if len(got) != 1 {
			t.Fatalf("SearchEvents: got %d events, want 1", len(got))
		}
		e := got[0]
		want := *evs[1]
		want.Timestamp, want.ReceivedAt, want.Body = utc(want.Timestamp), utc(want.ReceivedAt), nil
		if !reflect.DeepEqual(*e, want) {
			t.Errorf("SearchEvents: got %+v, want %+v (without body)", *e, want)
		}
		checkUTC(t, "ReceivedAt", e.ReceivedAt)
	})
	t.Run("pages", func(t *testing.T) {
		// Events committed together share their received time: pages are
		// cut within it, by id.
		r := newProject(t, s)
		var many []appEvent
		for i := range 11 {
			many = append(many, appEvent{fp: "page", message: "paged event", received: at.Add(time.Duration(i%2) * time.Second)})
		}
		commitApp(t, s, r, many...)
		all, err := s.SearchEvents(ctx, store.EventQuery{ProjectID: r.ID, Text: "paged", Limit: 1000})
		noErr(t, "SearchEvents", err)
		if len(all) != 11 {
			t.Fatalf("SearchEvents: got %d events, want 11", len(all))
		}
		for i := 1; i < len(all); i++ {
			x, y := all[i-1], all[i]
			if x.ReceivedAt.Before(y.ReceivedAt) || (x.ReceivedAt.Equal(y.ReceivedAt) && x.ID < y.ID) {
				t.Errorf("events %d and %d out of order", i-1, i)
			}
		}
		var walked []*store.Event
		var before *store.EventCursor
		for range 10 {
			page, err := s.SearchEvents(ctx, store.EventQuery{ProjectID: r.ID, Text: "paged", Limit: 4, Before: before})
			noErr(t, "SearchEvents", err)
			walked = append(walked, page...)
			if len(page) < 4 {
				break
			}
			last := page[len(page)-1]
			before = &store.EventCursor{ReceivedAt: last.ReceivedAt, ID: last.ID}
		}
		if got, want := eventIDs(walked), eventIDs(all); !reflect.DeepEqual(got, want) {
			t.Errorf("pages of 4: got %v, want %v", got, want)
		}

		// Neighbors follow the same order, within the issue.
		for i, e := range all {
			full, err := s.Event(ctx, r.ID, e.ID)
			noErr(t, "Event", err)
			prev, next, err := s.EventNeighbors(ctx, full)
			noErr(t, "EventNeighbors", err)
			wantPrev, wantNext := "", ""
			if i+1 < len(all) {
				wantPrev = all[i+1].ID // older
			}
			if i > 0 {
				wantNext = all[i-1].ID // newer
			}
			if prev != wantPrev || next != wantNext {
				t.Errorf("EventNeighbors of event %d: got %q, %q, want %q, %q", i, prev, next, wantPrev, wantNext)
			}
		}
	})
	t.Run("neighbors stay in the issue", func(t *testing.T) {
		full, err := s.Event(ctx, p.ID, e0)
		noErr(t, "Event", err)
		prev, next, err := s.EventNeighbors(ctx, full)
		noErr(t, "EventNeighbors", err)
		if prev != e4 || next != e1 {
			t.Errorf("EventNeighbors: got %q, %q, want %q, %q", prev, next, e4, e1)
		}
	})
}

func testDashboards(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	h0 := hour(3) // three hours ago, on the hour
	var evs []appEvent
	add := func(n int, fp, level string, at time.Time, tags map[string]string) {
		for range n {
			evs = append(evs, appEvent{fp: fp, level: level, received: at, tags: tags})
		}
	}
	add(3, "A", "error", h0.Add(5*time.Minute), map[string]string{"browser": "Firefox"})
	add(2, "A", "fatal", h0.Add(65*time.Minute), map[string]string{"browser": "Chrome"})
	add(4, "B", "warning", h0.Add(70*time.Minute), map[string]string{"browser": "Chrome", "os": "mac"})
	add(1, "C", "info", h0.Add(2*time.Hour+time.Minute), nil)
	got := commitApp(t, s, p, evs...)
	ia, ib := got[0].IssueID, got[5].IssueID
	commitApp(t, s, q, appEvent{fp: "A", received: h0, tags: map[string]string{"browser": "Chrome"}})
	end := h0.Add(3 * time.Hour)

	t.Run("volume", func(t *testing.T) {
		day := h0.Truncate(24 * time.Hour)
		cases := []struct {
			name     string
			issue    int64
			from, to time.Time
			bucket   store.Bucket
			want     []store.CountPoint
		}{
			{"hours", 0, h0, end, store.Hour, []store.CountPoint{{Time: h0, Count: 3}, {Time: h0.Add(time.Hour), Count: 6}, {Time: h0.Add(2 * time.Hour), Count: 1}}},
			{"part of the range", 0, h0.Add(time.Hour), h0.Add(2 * time.Hour), store.Hour, []store.CountPoint{{Time: h0.Add(time.Hour), Count: 6}}},
			{"one issue", ia, h0, end, store.Hour, []store.CountPoint{{Time: h0, Count: 3}, {Time: h0.Add(time.Hour), Count: 2}}},
			{"empty", 0, h0.Add(-5 * time.Hour), h0, store.Hour, nil},
			{"days", 0, day.Add(-24 * time.Hour), day.Add(48 * time.Hour), store.Day, nil}, // filled below
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.bucket == store.Day {
					// The events may straddle midnight UTC.
					byDay := map[time.Time]int64{}
					for _, e := range got {
						byDay[e.ReceivedAt.UTC().Truncate(24*time.Hour)]++
					}
					for d := c.from; d.Before(c.to); d = d.Add(24 * time.Hour) {
						if n := byDay[d]; n > 0 {
							c.want = append(c.want, store.CountPoint{Time: d, Count: n})
						}
					}
				}
				pts, err := s.EventVolume(ctx, p.ID, c.issue, c.from, c.to, c.bucket)
				noErr(t, "EventVolume", err)
				if len(pts) == 0 && len(c.want) == 0 {
					return
				}
				if !reflect.DeepEqual(pts, c.want) {
					t.Errorf("EventVolume: got %v, want %v", pts, c.want)
				}
				for _, pt := range pts {
					checkUTC(t, "Time", pt.Time)
				}
			})
		}
		if _, err := s.EventVolume(ctx, p.ID, 0, h0.Add(time.Minute), end, store.Hour); err == nil {
			t.Errorf("EventVolume from a time not on the hour: got no error, want one")
		}
		if _, err := s.EventVolume(ctx, p.ID, 0, end, h0, store.Hour); err == nil {
			t.Errorf("EventVolume of an empty range: got no error, want one")
		}
	})
	t.Run("levels", func(t *testing.T) {
		got, err := s.LevelCounts(ctx, p.ID, h0, end)
		noErr(t, "LevelCounts", err)
		if want := map[string]int64{"error": 3, "fatal": 2, "warning": 4, "info": 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("LevelCounts: got %v, want %v", got, want)
		}
		got, err = s.LevelCounts(ctx, p.ID, h0.Add(time.Hour), h0.Add(2*time.Hour))
		noErr(t, "LevelCounts", err)
		if want := map[string]int64{"fatal": 2, "warning": 4}; !reflect.DeepEqual(got, want) {
			t.Errorf("LevelCounts of the second hour: got %v, want %v", got, want)
		}
	})
	t.Run("top issues", func(t *testing.T) {
		top := func(from, to time.Time, limit int) []string {
			t.Helper()
			got, err := s.TopIssues(ctx, p.ID, from, to, limit)
			noErr(t, "TopIssues", err)
			out := []string{}
			for _, ie := range got {
				if ie.Issue.ProjectID != p.ID {
					t.Errorf("TopIssues: issue %d of project %s", ie.Issue.ID, ie.Issue.ProjectID)
				}
				out = append(out, fmt.Sprintf("%s:%d", ie.Issue.Fingerprint, ie.Events))
			}
			return out
		}
		if got, want := top(h0, end, 10), []string{"A:5", "B:4", "C:1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("TopIssues: got %v, want %v", got, want)
		}
		if got, want := top(h0.Add(time.Hour), end, 2), []string{"B:4", "A:2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("TopIssues of the last two hours, 2 of them: got %v, want %v", got, want)
		}
		noErr(t, "DiscardIssue", s.DiscardIssue(ctx, p.ID, ib, time.Now()))
		if got, want := top(h0, end, 10), []string{"A:5", "C:1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("TopIssues without the discarded issue: got %v, want %v", got, want)
		}
	})
	t.Run("tags", func(t *testing.T) {
		day := h0.Truncate(24 * time.Hour)
		from, to := day.Add(-24*time.Hour), day.Add(48*time.Hour)
		cases := []struct {
			key   string
			limit int
			want  []store.TagValueCount
		}{
			{"browser", 10, []store.TagValueCount{{Value: "Chrome", Count: 6}, {Value: "Firefox", Count: 3}}},
			{"browser", 1, []store.TagValueCount{{Value: "Chrome", Count: 6}}},
			{"os", 10, []store.TagValueCount{{Value: "mac", Count: 4}}},
			{"none", 10, nil},
		}
		for _, c := range cases {
			got, err := s.TopTagValues(ctx, p.ID, c.key, from, to, c.limit)
			noErr(t, "TopTagValues", err)
			if len(got) != 0 || len(c.want) != 0 {
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("TopTagValues(%q, %d): got %v, want %v", c.key, c.limit, got, c.want)
				}
			}
		}
		if _, err := s.TopTagValues(ctx, p.ID, "browser", h0, end, 10); err == nil && !h0.Equal(day) {
			t.Errorf("TopTagValues of a range not on days: got no error, want one")
		}
	})
	t.Run("health", func(t *testing.T) {
		// ia and ic are unresolved; ib is discarded. All three were created
		// today, by the store's clock, unless midnight has just passed.
		now := h0.Add(2*time.Hour + 30*time.Minute)
		got, err := s.ProjectHealth(ctx, p.ID, now)
		noErr(t, "ProjectHealth", err)
		if got.UnresolvedCount != 2 || got.Events24h != 10 {
			t.Errorf("ProjectHealth: got %+v, want 2 unresolved and 10 events in 24h", got)
		}
		// 24 hours after the first hour's events, only the later ones count:
		// the range starts mid-hour, where the counts are not enough.
		got, err = s.ProjectHealth(ctx, p.ID, h0.Add(24*time.Hour+30*time.Minute))
		noErr(t, "ProjectHealth", err)
		if got.Events24h != 7 {
			t.Errorf("ProjectHealth a day later: got %d events in 24h, want 7", got.Events24h)
		}
		got, err = s.ProjectHealth(ctx, p.ID, h0.Add(65*time.Minute))
		noErr(t, "ProjectHealth", err)
		if got.Events24h != 5 {
			t.Errorf("ProjectHealth at the second hour's first events: got %d events in 24h, want 5 (those at or before now)", got.Events24h)
		}
		today := time.Now().UTC().Truncate(24 * time.Hour)
		got, err = s.ProjectHealth(ctx, p.ID, today.Add(24*time.Hour-time.Microsecond))
		noErr(t, "ProjectHealth", err)
		if got.NewToday != 3 && time.Now().UTC().Truncate(24*time.Hour).Equal(today) {
			t.Errorf("ProjectHealth: got %d new today, want 3", got.NewToday)
		}
		got, err = s.ProjectHealth(ctx, p.ID, today.Add(48*time.Hour))
		noErr(t, "ProjectHealth", err)
		if got.NewToday != 0 {
			t.Errorf("ProjectHealth the day after tomorrow: got %d new today, want 0", got.NewToday)
		}
	})
	t.Run("concurrent commits", func(t *testing.T) {
		// Commits that count the same hours and tag values at once, small
		// batches and large ones (which backends may write another way):
		// the counts are exact, and no commit fails.
		r := newProject(t, s)
		const workers, batches = 4, 5
		sizes := [batches]int{30, 210, 30, 210, 30}
		var wg sync.WaitGroup
		errs := make(chan error, workers*batches)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b, size := range sizes {
					batch := make([]*store.Event, size)
					for i := range batch {
						fp := fmt.Sprintf("hammer-%d", (w+b+i)%3)
						batch[i] = &store.Event{ID: NewID(), ProjectID: r.ID, Fingerprint: fp, Title: fp, Level: levels[i%len(levels)],
							Tags:      map[string]string{"shard": fmt.Sprint(i % 4), "worker": "w"},
							Timestamp: h0, ReceivedAt: h0.Add(time.Duration(i%2) * time.Hour)}
					}
					if _, err := s.Commit(ctx, batch); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Commit: %v", err)
		}
		pts, err := s.EventVolume(ctx, r.ID, 0, h0, end, store.Hour)
		noErr(t, "EventVolume", err)
		total := 0
		for _, size := range sizes {
			total += workers * size
		}
		if want := []store.CountPoint{{Time: h0, Count: int64(total / 2)}, {Time: h0.Add(time.Hour), Count: int64(total / 2)}}; !reflect.DeepEqual(pts, want) {
			t.Errorf("EventVolume: got %v, want %v", pts, want)
		}
		day := h0.Truncate(24 * time.Hour)
		tags, err := s.TopTagValues(ctx, r.ID, "worker", day.Add(-24*time.Hour), day.Add(48*time.Hour), 10)
		noErr(t, "TopTagValues", err)
		if want := []store.TagValueCount{{Value: "w", Count: int64(total)}}; !reflect.DeepEqual(tags, want) {
			t.Errorf("TopTagValues: got %v, want %v", tags, want)
		}
		shards, err := s.TopTagValues(ctx, r.ID, "shard", day.Add(-24*time.Hour), day.Add(48*time.Hour), 10)
		noErr(t, "TopTagValues", err)
		var sum int64
		for _, v := range shards {
			sum += v.Count
		}
		if len(shards) != 4 || sum != int64(total) {
			t.Errorf("TopTagValues of shard: got %v, want 4 values adding up to %d", shards, total)
		}
		levelCounts, err := s.LevelCounts(ctx, r.ID, h0, end)
		noErr(t, "LevelCounts", err)
		sum = 0
		for _, n := range levelCounts {
			sum += n
		}
		if sum != int64(total) || len(levelCounts) != len(levels) {
			t.Errorf("LevelCounts: got %v, want every level, adding up to %d", levelCounts, total)
		}
		top, err := s.TopIssues(ctx, r.ID, h0, end, 10)
		noErr(t, "TopIssues", err)
		sum = 0
		for _, ie := range top {
			sum += ie.Events
			if ie.Events != ie.Issue.Count {
				t.Errorf("TopIssues: issue %s has %d events in the range, want its count %d", ie.Issue.Fingerprint, ie.Events, ie.Issue.Count)
			}
		}
		if len(top) != 3 || sum != int64(total) {
			t.Errorf("TopIssues: got %d issues adding up to %d, want 3 adding up to %d", len(top), sum, total)
		}
	})
	t.Run("long tag values are cut", func(t *testing.T) {
		r := newProject(t, s)
		long := strings.Repeat("é", store.MaxTagLength+20)
		commitApp(t, s, r, appEvent{fp: "L", received: h0, tags: map[string]string{"k": long}})
		day := h0.Truncate(24 * time.Hour)
		got, err := s.TopTagValues(ctx, r.ID, "k", day, day.Add(24*time.Hour), 10)
		noErr(t, "TopTagValues", err)
		if want := []store.TagValueCount{{Value: long[:2*store.MaxTagLength], Count: 1}}; !reflect.DeepEqual(got, want) {
			t.Errorf("TopTagValues: got %d values, want the value cut to %d characters", len(got), store.MaxTagLength)
		}
	})
}

func testSpikes(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	now := hour(0).Add(20 * time.Minute)
	cur, prev := hour(0), hour(1)
	// issue makes an issue of fingerprint fp with a baseline of base events
	// spread over the week before the previous hour, then n events at at,
	// and sets its status.
	issue := func(fp string, baseline, n int, at time.Time, status string) int64 {
		t.Helper()
		var evs []appEvent
		for i := range baseline {
			evs = append(evs, appEvent{fp: fp, received: prev.Add(-time.Duration(1+i%160) * time.Hour)})
		}
		for range n {
			evs = append(evs, appEvent{fp: fp, received: at})
		}
		got := commitApp(t, s, p, evs...)
		id := got[0].IssueID
		noErr(t, "SetIssueStatus", s.SetIssueStatus(ctx, p.ID, id, status))
		return id
	}
	spikeNow := issue("now", 0, 11, cur.Add(time.Minute), store.StatusArchived)
	spikePrev := issue("prev", 0, 11, prev.Add(time.Minute), store.StatusArchived)
	atMinimum := issue("minimum", 0, 10, cur, store.StatusArchived)
	busy := issue("busy", 336, 20, cur, store.StatusArchived)      // average 2 an hour: needs more than 20
	busier := issue("busier", 336, 21, prev, store.StatusArchived) // more than 20
	old := issue("old", 0, 50, prev.Add(-time.Hour), store.StatusArchived)
	notArchived := issue("unresolved", 0, 50, cur, store.StatusUnresolved)
	discarded := issue("discarded", 0, 50, cur, store.StatusArchived)
	noErr(t, "DiscardIssue", s.DiscardIssue(ctx, p.ID, discarded, now))
	_ = []int64{atMinimum, busy, old, notArchived}

	got, err := s.ReopenSpiking(ctx, now)
	noErr(t, "ReopenSpiking", err)
	ids := issueIDs(got)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if want := []int64{spikeNow, spikePrev, busier}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ReopenSpiking: got issues %v, want %v (now, prev, busier)", ids, want)
	}
	for _, is := range got {
		if is.Status != store.StatusUnresolved {
			t.Errorf("reopened issue %d: got status %q, want unresolved", is.ID, is.Status)
		}
	}
	for id, want := range map[int64]string{spikeNow: store.StatusUnresolved, busy: store.StatusArchived, old: store.StatusArchived, discarded: store.StatusArchived} {
		is, err := s.Issue(ctx, p.ID, id)
		noErr(t, "Issue", err)
		if is.Status != want {
			t.Errorf("issue %s: got status %q, want %q", is.Fingerprint, is.Status, want)
		}
	}
	got, err = s.ReopenSpiking(ctx, now)
	noErr(t, "ReopenSpiking again", err)
	if len(got) != 0 {
		t.Errorf("ReopenSpiking again: got %v, want none", issueIDs(got))
	}
	// Two hours later, the spikes are history.
	noErr(t, "SetIssueStatus", s.SetIssueStatus(ctx, p.ID, spikeNow, store.StatusArchived))
	got, err = s.ReopenSpiking(ctx, now.Add(2*time.Hour))
	noErr(t, "ReopenSpiking later", err)
	if len(got) != 0 {
		t.Errorf("ReopenSpiking two hours later: got %v, want none", issueIDs(got))
	}
}
