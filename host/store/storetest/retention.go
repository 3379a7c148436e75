package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

func testRetention(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base
	const defaultDays = 30
	short := newProject(t, s)
	noErr(t, "UpdateProjectSettings", s.UpdateProjectSettings(ctx, short.ID, store.ProjectSettings{RetentionDays: 5}))
	long := newProject(t, s) // the default: 30 days

	at := func(p *store.Project, fp string, age time.Duration) *store.Event {
		e := newEvent(p, fp, "error", now.Add(-age))
		e.ReceivedAt = now.Add(-age)
		return e
	}
	d := 24 * time.Hour
	shortOld, shortNew := at(short, "a", 10*d), at(short, "a", 3*d)
	longOld, longNew := at(long, "b", 40*d), at(long, "b", 20*d)
	events := []*store.Event{shortOld, shortNew, longOld, longNew}
	_, err := s.Commit(ctx, events)
	noErr(t, "Commit", err)

	rule := newRule(t, s, short.ID, store.AlertCondition{Type: store.ConditionNewIssue}, 0)
	alert := &store.Alert{ID: NewID(), RuleID: rule.ID, Title: "t", FiredAt: now.Add(-40 * d)}
	if ok, err := s.FireAlert(ctx, alert); err != nil || !ok {
		t.Fatalf("FireAlert: %v, %v", ok, err)
	}
	for i, age := range []time.Duration{40 * d, time.Hour} {
		noErr(t, "AddWebhookDelivery", s.AddWebhookDelivery(ctx, &store.WebhookDelivery{ID: NewID(), RuleID: rule.ID,
			AlertID: alert.ID, URL: "http://x", Attempt: i + 1, At: now.Add(-age)}))
	}

	res, err := s.ApplyRetention(ctx, now, defaultDays)
	noErr(t, "ApplyRetention", err)
	if res.DeletedEvents+int64(len(res.DroppedPartitions)) == 0 {
		t.Errorf("ApplyRetention removed nothing: %+v", res)
	}
	for _, c := range []struct {
		name string
		e    *store.Event
		kept bool
	}{
		{"10 days old, 5 days kept", shortOld, false},
		{"3 days old, 5 days kept", shortNew, true},
		{"40 days old, 30 days kept", longOld, false},
		{"20 days old, 30 days kept", longNew, true},
	} {
		_, err := s.Event(ctx, c.e.ProjectID, c.e.ID)
		if c.kept {
			noErr(t, c.name+": Event", err)
		} else {
			wantErr(t, c.name+": Event", err, store.ErrNotFound)
		}
	}
	for _, e := range []*store.Event{shortNew, longNew} {
		is, err := s.Issue(ctx, e.ProjectID, e.IssueID)
		noErr(t, "Issue", err)
		if is.Count != 2 {
			t.Errorf("issue %d after retention: count %d, want 2 (issues keep their counts)", is.ID, is.Count)
		}
	}
	ds, err := s.ListWebhookDeliveries(ctx, rule.ID, 10)
	noErr(t, "ListWebhookDeliveries", err)
	if len(ds) != 1 || ds[0].Attempt != 2 {
		t.Errorf("deliveries after retention: got %+v, want only the recent one", ds)
	}

	// Retention forgot the old event, resend detection too: sent again,
	// it is stored again.
	again := *shortOld
	again.ReceivedAt = now
	rs, err := s.Commit(ctx, []*store.Event{&again})
	noErr(t, "Commit", err)
	if rs[0].Duplicate {
		t.Error("an event resent after retention removed it is a duplicate; want it stored again")
	}

	res, err = s.ApplyRetention(ctx, now, defaultDays)
	noErr(t, "ApplyRetention again", err)
	if res.DeletedEvents != 0 || len(res.DroppedPartitions) != 0 {
		t.Errorf("a second run removed more: %+v", res)
	}
}

func testUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	empty := newProject(t, s)
	_, err := s.Commit(ctx, Events(p.ID, 50, 5, base))
	noErr(t, "Commit", err)

	u, err := s.ProjectUsage(ctx, p.ID)
	noErr(t, "ProjectUsage", err)
	if u.Events != 50 || u.Issues != 5 {
		t.Errorf("ProjectUsage: %d events and %d issues, want 50 and 5", u.Events, u.Issues)
	}
	// Each event is about 1 KB of JSON.
	if u.EventBytes < 50*500 || u.EventBytes > 50*10_000 {
		t.Errorf("ProjectUsage: %d bytes of events, want about 50 KB", u.EventBytes)
	}
	if u.IssueBytes <= 0 || u.Oldest == nil || u.Newest == nil || u.Newest.Before(*u.Oldest) {
		t.Errorf("ProjectUsage: %+v", u)
	}
	if u.TotalBytes <= 0 || u.Method == "" || len(u.Tables) == 0 {
		t.Errorf("ProjectUsage: %+v", u)
	}
	var eventsTable int64
	for _, tb := range u.Tables {
		if tb.Name == "events" {
			eventsTable = tb.Bytes
		}
	}
	if eventsTable < u.EventBytes/2 {
		t.Errorf("events table %d bytes, the project's rows alone %d", eventsTable, u.EventBytes)
	}

	u, err = s.ProjectUsage(ctx, empty.ID)
	noErr(t, "ProjectUsage(empty)", err)
	if u.Events != 0 || u.EventBytes != 0 || u.Oldest != nil {
		t.Errorf("ProjectUsage of an empty project: %+v", u)
	}
	_, err = s.ProjectUsage(ctx, NewID())
	wantErr(t, "ProjectUsage(unknown)", err, store.ErrNotFound)
}
