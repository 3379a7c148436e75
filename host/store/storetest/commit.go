package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

var levels = []string{"debug", "info", "warning", "error", "fatal"}

func newEvent(p *store.Project, fp, level string, at time.Time) *store.Event {
	id := NewID()
	return &store.Event{ID: id, ProjectID: p.ID, Fingerprint: fp, Title: fp + "/" + id[:8], Level: level,
		Message: "boom", Timestamp: at, ReceivedAt: time.Now(), Body: json.RawMessage(`{"message":"boom"}`)}
}

func testCommit(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)

	// The table is one story: each case commits a batch after the cases
	// before it and checks the results and the issues afterwards.
	type ev struct {
		name  string // same name, same event id
		fp    string
		level string
		at    int // seconds after base
	}
	type res struct {
		fp                       string // of the issue the event is grouped into
		dup, newIssue, regressed bool
	}
	type iss struct {
		count     int64
		level     string
		status    string
		first     int
		last      int
		titleFrom string // the event whose title the issue has
	}
	cases := []struct {
		name   string
		before func(t *testing.T, issues map[string]int64)
		batch  []ev
		want   []res
		issues map[string]iss
	}{
		{
			name:  "new issues",
			batch: []ev{{"e1", "A", "info", 10}, {"e2", "A", "error", 30}, {"e3", "B", "warning", 20}, {"e4", "A", "warning", 20}},
			want:  []res{{fp: "A", newIssue: true}, {fp: "A"}, {fp: "B", newIssue: true}, {fp: "A"}},
			issues: map[string]iss{
				"A": {3, "error", store.StatusUnresolved, 10, 30, "e1"},
				"B": {1, "warning", store.StatusUnresolved, 20, 20, "e3"},
			},
		},
		{
			name:  "counts add up",
			batch: []ev{{"e5", "A", "fatal", 5}, {"e6", "B", "debug", 40}},
			want:  []res{{fp: "A"}, {fp: "B"}},
			issues: map[string]iss{
				"A": {4, "fatal", store.StatusUnresolved, 5, 30, "e1"},
				"B": {2, "warning", store.StatusUnresolved, 20, 40, "e3"},
			},
		},
		{
			name:   "level never goes down",
			batch:  []ev{{"e7", "A", "debug", 31}},
			want:   []res{{fp: "A"}},
			issues: map[string]iss{"A": {5, "fatal", store.StatusUnresolved, 5, 31, "e1"}},
		},
		{
			name:  "resend is a duplicate",
			batch: []ev{{"e1", "A", "info", 10}, {"e8", "B", "info", 41}},
			want:  []res{{fp: "A", dup: true}, {fp: "B"}},
			issues: map[string]iss{
				"A": {5, "fatal", store.StatusUnresolved, 5, 31, "e1"},
				"B": {3, "warning", store.StatusUnresolved, 20, 41, "e3"},
			},
		},
		{
			name:  "resend with another fingerprint changes nothing",
			batch: []ev{{"e2", "B", "fatal", 99}},
			want:  []res{{fp: "A", dup: true}},
			issues: map[string]iss{
				"A": {5, "fatal", store.StatusUnresolved, 5, 31, "e1"},
				"B": {3, "warning", store.StatusUnresolved, 20, 41, "e3"},
			},
		},
		{
			name:   "duplicate within a batch",
			batch:  []ev{{"e9", "A", "info", 32}, {"e9", "A", "info", 32}},
			want:   []res{{fp: "A"}, {fp: "A", dup: true}},
			issues: map[string]iss{"A": {6, "fatal", store.StatusUnresolved, 5, 32, "e1"}},
		},
		{
			name: "regression",
			before: func(t *testing.T, issues map[string]int64) {
				noErr(t, "SetIssueStatus", s.SetIssueStatus(ctx, p.ID, issues["A"], store.StatusResolved))
			},
			batch:  []ev{{"e10", "A", "info", 33}, {"e11", "A", "info", 34}},
			want:   []res{{fp: "A", regressed: true}, {fp: "A"}},
			issues: map[string]iss{"A": {8, "fatal", store.StatusUnresolved, 5, 34, "e1"}},
		},
		{
			name:   "no second regression",
			batch:  []ev{{"e12", "A", "info", 35}},
			want:   []res{{fp: "A"}},
			issues: map[string]iss{"A": {9, "fatal", store.StatusUnresolved, 5, 35, "e1"}},
		},
		{
			name: "archived stays archived",
			before: func(t *testing.T, issues map[string]int64) {
				noErr(t, "SetIssueStatus", s.SetIssueStatus(ctx, p.ID, issues["B"], store.StatusArchived))
			},
			batch:  []ev{{"e13", "B", "error", 42}},
			want:   []res{{fp: "B"}},
			issues: map[string]iss{"B": {4, "error", store.StatusArchived, 20, 42, "e3"}},
		},
		{
			name:  "new issue among resends",
			batch: []ev{{"e3", "B", "warning", 20}, {"e14", "C", "info", 50}, {"e14", "C", "info", 50}, {"e1", "A", "info", 10}},
			want:  []res{{fp: "B", dup: true}, {fp: "C", newIssue: true}, {fp: "C", dup: true}, {fp: "A", dup: true}},
			issues: map[string]iss{
				"A": {9, "fatal", store.StatusUnresolved, 5, 35, "e1"},
				"B": {4, "error", store.StatusArchived, 20, 42, "e3"},
				"C": {1, "info", store.StatusUnresolved, 50, 50, "e14"},
			},
		},
	}

	ids := map[string]string{}    // event name → id
	titles := map[string]string{} // event name → title
	issues := map[string]int64{}  // fingerprint → issue id
	received := time.Now().Add(-time.Minute)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before(t, issues)
			}
			batch := make([]*store.Event, len(c.batch))
			for i, e := range c.batch {
				if ids[e.name] == "" {
					ids[e.name] = NewID()
					titles[e.name] = e.fp + "/" + e.name
				}
				batch[i] = &store.Event{ID: ids[e.name], ProjectID: p.ID, Fingerprint: e.fp, Title: titles[e.name],
					Level: e.level, Timestamp: base.Add(time.Duration(e.at) * time.Second), ReceivedAt: received,
					Body: json.RawMessage(`{"n":"` + e.name + `"}`)}
			}
			got, err := s.Commit(ctx, batch)
			noErr(t, "Commit", err)
			if len(got) != len(batch) {
				t.Fatalf("Commit: got %d results, want %d", len(got), len(batch))
			}
			for i, w := range c.want {
				if issues[w.fp] == 0 && w.newIssue {
					issues[w.fp] = got[i].IssueID
				}
				want := store.Committed{Duplicate: w.dup, IssueID: issues[w.fp], NewIssue: w.newIssue, Regressed: w.regressed}
				if got[i] != want || want.IssueID == 0 {
					t.Errorf("result %d (%s): got %+v, want %+v", i, c.batch[i].name, got[i], want)
				}
				if batch[i].IssueID != want.IssueID {
					t.Errorf("event %d (%s): got IssueID %d, want %d", i, c.batch[i].name, batch[i].IssueID, want.IssueID)
				}
			}
			for fp, w := range c.issues {
				is, err := s.Issue(ctx, p.ID, issues[fp])
				noErr(t, "Issue "+fp, err)
				want := store.Issue{ID: issues[fp], ProjectID: p.ID, Fingerprint: fp, Title: titles[w.titleFrom],
					Level: w.level, Status: w.status, Count: w.count,
					FirstSeen: utc(base.Add(time.Duration(w.first) * time.Second)),
					LastSeen:  utc(base.Add(time.Duration(w.last) * time.Second))}
				if !reflect.DeepEqual(*is, want) {
					t.Errorf("issue %s:\n got %+v\nwant %+v", fp, *is, want)
				}
				checkUTC(t, "FirstSeen", is.FirstSeen)
				checkUTC(t, "LastSeen", is.LastSeen)
			}
		})
	}

	t.Run("stored events keep their first version", func(t *testing.T) {
		e, err := s.Event(ctx, p.ID, ids["e2"])
		noErr(t, "Event", err)
		if e.Fingerprint != "A" || e.Level != "error" || e.IssueID != issues["A"] {
			t.Errorf("e2 after a resend with other fields: got fingerprint %q level %q issue %d, want A error %d",
				e.Fingerprint, e.Level, e.IssueID, issues["A"])
		}
	})
	t.Run("same id in another project is new", func(t *testing.T) {
		q := newProject(t, s)
		e := &store.Event{ID: ids["e1"], ProjectID: q.ID, Fingerprint: "A", Title: "A", Level: "info", Timestamp: base}
		got, err := s.Commit(ctx, []*store.Event{e})
		noErr(t, "Commit", err)
		if got[0].Duplicate || !got[0].NewIssue || got[0].IssueID == issues["A"] {
			t.Errorf("Commit: got %+v, want a new event in a new issue (not %d)", got[0], issues["A"])
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		got, err := s.Commit(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("Commit(nil): got %v, %v; want no results, no error", got, err)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		e := &store.Event{
			ID: NewID(), ProjectID: p.ID, Fingerprint: "R", Title: "TypeError: x is undefined", Level: "error",
			Message: "x is undefined", Environment: "production", Release: "web@1.2.3",
			Tags:      map[string]string{"browser": "Firefox", "os": "Linux"},
			Timestamp: base.Add(-time.Hour), ReceivedAt: base,
			Body:  json.RawMessage(`{"message": "x is undefined", "extra": {"n": 1, "list": [1, 2, 3]}, "exception": {"values": [{"type": "TypeError", "value": "x is undefined"}]}}`),
			Flags: json.RawMessage(`[{"processor": "scrub", "reason": "timeout"}]`),
		}
		_, err := s.Commit(ctx, []*store.Event{e})
		noErr(t, "Commit", err)
		got, err := s.Event(ctx, p.ID, e.ID)
		noErr(t, "Event", err)
		checkUTC(t, "Timestamp", got.Timestamp)
		checkUTC(t, "ReceivedAt", got.ReceivedAt)
		if !jsonEqual(got.Body, e.Body) {
			t.Errorf("Body: got %s, want %s", got.Body, e.Body)
		}
		if !jsonEqual(got.Flags, e.Flags) {
			t.Errorf("Flags: got %s, want %s", got.Flags, e.Flags)
		}
		want := *e
		want.Timestamp, want.ReceivedAt = utc(e.Timestamp), utc(e.ReceivedAt)
		want.Body, want.Flags = got.Body, got.Flags
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("Event:\n got %+v\nwant %+v", *got, want)
		}
	})
	t.Run("zero received time is now", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		e := newEvent(p, "Z", "info", base)
		e.ReceivedAt = time.Time{}
		_, err := s.Commit(ctx, []*store.Event{e})
		noErr(t, "Commit", err)
		if e.ReceivedAt.Before(before) || e.ReceivedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("ReceivedAt: got %v, want about now", e.ReceivedAt)
		}
		got, err := s.Event(ctx, p.ID, e.ID)
		noErr(t, "Event", err)
		if !got.ReceivedAt.Equal(utc(e.ReceivedAt)) {
			t.Errorf("stored ReceivedAt: got %v, want %v", got.ReceivedAt, utc(e.ReceivedAt))
		}
	})
	t.Run("NUL characters", func(t *testing.T) {
		e := newEvent(p, "N", "info", base)
		e.Message = "a\x00b"
		e.Body = json.RawMessage(`{"m":"x\u0000y","path":"C:\\u0000"}`)
		_, err := s.Commit(ctx, []*store.Event{e})
		noErr(t, "Commit", err)
		got, err := s.Event(ctx, p.ID, e.ID)
		noErr(t, "Event", err)
		if got.Message != "a\uFFFDb" {
			t.Errorf("Message: got %q, want %q", got.Message, "a\uFFFDb")
		}
		var body map[string]string
		if err := json.Unmarshal(got.Body, &body); err != nil || body["m"] != "x\uFFFDy" || body["path"] != `C:\u0000` {
			t.Errorf("Body: got %s (%v), want m %q and path %q", got.Body, err, "x\uFFFDy", `C:\u0000`)
		}
	})
}

func testCommitAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	// notStored checks that e left nothing behind: it is not found, and
	// committing it now is new, in a new issue.
	notStored := func(t *testing.T, e *store.Event) {
		t.Helper()
		_, err := s.Event(ctx, e.ProjectID, e.ID)
		wantErr(t, "Event after a failed Commit", err, store.ErrNotFound)
		got, err := s.Commit(ctx, []*store.Event{e})
		noErr(t, "Commit again", err)
		if got[0].Duplicate || !got[0].NewIssue {
			t.Errorf("Commit again: got %+v, want a new event in a new issue", got[0])
		}
		is, err := s.Issue(ctx, p.ID, got[0].IssueID)
		noErr(t, "Issue", err)
		if is.Count != 1 {
			t.Errorf("issue count: got %d, want 1", is.Count)
		}
	}
	t.Run("unknown project", func(t *testing.T) {
		ok := newEvent(p, "atomic-1", "error", base)
		bad := newEvent(&store.Project{ID: NewID()}, "atomic-1", "error", base)
		_, err := s.Commit(ctx, []*store.Event{ok, bad})
		wantErr(t, "Commit with an unknown project", err, store.ErrNotFound)
		notStored(t, ok)
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newEvent(p, "atomic-2", "error", base)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Commit(cctx, []*store.Event{e}); !errors.Is(err, context.Canceled) {
			t.Errorf("Commit with a cancelled context: got error %v, want context.Canceled", err)
		}
		notStored(t, e)
	})
	t.Run("deadline mid-way", func(t *testing.T) {
		// A deadline that expires while the batch is being written: the
		// commit either completes or leaves nothing.
		batch := make([]*store.Event, 500)
		for i := range batch {
			batch[i] = newEvent(p, fmt.Sprintf("atomic-3-%d", i%7), "error", base)
		}
		dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err := s.Commit(dctx, batch)
		stored := 0
		for _, e := range batch {
			if _, err := s.Event(ctx, p.ID, e.ID); err == nil {
				stored++
			}
		}
		// An error does not prove the commit failed (the deadline may
		// expire after the database committed), but it is all or none.
		if (stored != 0 && stored != len(batch)) || (err == nil && stored != len(batch)) {
			t.Errorf("Commit returned %v and %d of %d events are stored, want all or none", err, stored, len(batch))
		}
	})
}

func testLookups(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	e := newEvent(p, "L", "error", base)
	res, err := s.Commit(ctx, []*store.Event{e})
	noErr(t, "Commit", err)
	issue := res[0].IssueID

	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"event of another project", func() error { _, err := s.Event(ctx, q.ID, e.ID); return err }, store.ErrNotFound},
		{"unknown event", func() error { _, err := s.Event(ctx, p.ID, NewID()); return err }, store.ErrNotFound},
		{"event id not a UUID", func() error { _, err := s.Event(ctx, p.ID, "nope"); return err }, store.ErrNotFound},
		{"issue of another project", func() error { _, err := s.Issue(ctx, q.ID, issue); return err }, store.ErrNotFound},
		{"unknown issue", func() error { _, err := s.Issue(ctx, p.ID, issue+1000); return err }, store.ErrNotFound},
		{"set status of another project's issue", func() error {
			return s.SetIssueStatus(ctx, q.ID, issue, store.StatusResolved)
		}, store.ErrNotFound},
		{"own event", func() error { _, err := s.Event(ctx, p.ID, e.ID); return err }, nil},
		{"own issue", func() error { _, err := s.Issue(ctx, p.ID, issue); return err }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if c.want == nil {
				noErr(t, c.name, err)
				return
			}
			wantErr(t, c.name, err, c.want)
		})
	}
	t.Run("invalid status", func(t *testing.T) {
		if err := s.SetIssueStatus(ctx, p.ID, issue, "fixed"); err == nil {
			t.Errorf("SetIssueStatus(%q): got no error, want one", "fixed")
		}
		is, err := s.Issue(ctx, p.ID, issue)
		noErr(t, "Issue", err)
		if is.Status != store.StatusUnresolved {
			t.Errorf("status: got %q, want %q", is.Status, store.StatusUnresolved)
		}
	})
}

// testCommitHammer commits overlapping batches from several goroutines:
// every event is sent by two of them, in different orders and batches, and
// the fingerprints are shared. Each event must be stored once, each issue
// created once, and the counts must be exact.
func testCommitHammer(t *testing.T, s store.Store) {
	const (
		workers   = 4
		fps       = 5
		events    = 200 // sent twice each
		batchSize = 25
	)
	ctx := context.Background()
	p := newProject(t, s)
	all := make([]*store.Event, events)
	type want struct {
		count       int64
		first, last time.Time
		level       int
	}
	wants := make(map[string]*want)
	for k := range all {
		fp := fmt.Sprintf("hammer-%d", k%fps)
		lvl := (k / fps) % len(levels)
		at := base.Add(time.Duration(k*7%events) * time.Second)
		all[k] = newEvent(p, fp, levels[lvl], at)
		w := wants[fp]
		if w == nil {
			w = &want{first: at, last: at}
			wants[fp] = w
		}
		w.count++
		w.level = max(w.level, lvl)
		if at.Before(w.first) {
			w.first = at
		}
		if at.After(w.last) {
			w.last = at
		}
	}

	var mu sync.Mutex
	stored := map[string]int{}    // event id → times reported new
	issueOf := map[string]int64{} // fingerprint → issue id
	newIssues := map[string]int{} // fingerprint → times reported new
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*store.Event
			for k, e := range all {
				if k%2 == w%2 {
					c := *e // each sender has its own copy, as two requests would
					mine = append(mine, &c)
				}
			}
			rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
			for len(mine) > 0 {
				n := min(batchSize, len(mine))
				b := mine[:n]
				mine = mine[n:]
				res, err := s.Commit(ctx, b)
				if err != nil {
					t.Errorf("worker %d: Commit: %v", w, err)
					return
				}
				mu.Lock()
				for i, r := range res {
					fp := b[i].Fingerprint
					if !r.Duplicate {
						stored[b[i].ID]++
					}
					if r.NewIssue {
						newIssues[fp]++
					}
					if r.Regressed {
						t.Errorf("event %s: reported a regression, want none", b[i].ID)
					}
					if id, ok := issueOf[fp]; ok && id != r.IssueID {
						t.Errorf("fingerprint %s: got issue %d, want %d as before", fp, r.IssueID, id)
					}
					issueOf[fp] = r.IssueID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(stored) != events {
		t.Errorf("events reported new: got %d, want %d", len(stored), events)
	}
	for id, n := range stored {
		if n != 1 {
			t.Errorf("event %s: reported new %d times, want once", id, n)
		}
	}
	for fp, w := range wants {
		if newIssues[fp] != 1 {
			t.Errorf("issue %s: reported new %d times, want once", fp, newIssues[fp])
		}
		is, err := s.Issue(ctx, p.ID, issueOf[fp])
		if err != nil {
			t.Errorf("Issue %s: %v", fp, err)
			continue
		}
		if is.Count != w.count || !is.FirstSeen.Equal(utc(w.first)) || !is.LastSeen.Equal(utc(w.last)) || is.Level != levels[w.level] {
			t.Errorf("issue %s: got count %d, seen %v..%v, level %s; want %d, %v..%v, %s", fp,
				is.Count, is.FirstSeen, is.LastSeen, is.Level, w.count, utc(w.first), utc(w.last), levels[w.level])
		}
	}
}
