package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
)

// TestRetentionDropsPartitions runs retention on an injected clock: daily
// partitions older than the longest retention are dropped whole, with
// their event_ids rows; a project with a shorter retention has its older
// rows deleted from the partitions that stay; issues keep their counts.
func TestRetentionDropsPartitions(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2031, 5, 10, 12, 0, 0, 0, time.UTC)
	s := open(t, postgres.Config{Now: func() time.Time { return now }, PartitionDaysAhead: 1, PartitionInterval: -1})
	long := &store.Project{ID: storetest.NewID(), Slug: "long", Name: "Long", Settings: store.ProjectSettings{RetentionDays: 30}}
	short := &store.Project{ID: storetest.NewID(), Slug: "short", Name: "Short", Settings: store.ProjectSettings{RetentionDays: 3}}
	for _, p := range []*store.Project{long, short} {
		if err := s.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	event := func(p *store.Project, age time.Duration) *store.Event {
		return &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "f", Title: "t", Level: "error",
			Timestamp: now.Add(-age), ReceivedAt: now.Add(-age)}
	}
	// Days 2031-04-05 and 2031-04-07 are past every retention; 2031-05-05
	// is past short's only.
	old1, old2 := event(long, 35*day), event(short, 33*day)
	mid, midShort := event(long, 5*day), event(short, 5*day)
	fresh := event(short, time.Hour)
	events := []*store.Event{old1, old2, mid, midShort, fresh}
	if _, err := s.Commit(ctx, events); err != nil {
		t.Fatal(err)
	}
	// The partition job gives the old days partitions of their own.
	if err := s.MaintainPartitions(ctx, now); err != nil {
		t.Fatal(err)
	}
	have := partitions(t, s)
	for _, name := range []string{"events_p20310405", "events_p20310407", "events_p20310505"} {
		if !have[name] {
			t.Fatalf("partition %s missing before retention", name)
		}
	}

	res, err := s.ApplyRetention(ctx, now, 90)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	if got := res.DroppedPartitions; len(got) != 2 || got[0] != "events_p20310405" || got[1] != "events_p20310407" {
		t.Errorf("dropped partitions %v, want events_p20310405 and events_p20310407", got)
	}
	if res.DeletedEvents != 1 {
		t.Errorf("deleted %d events row by row, want 1 (short's 5-day-old event)", res.DeletedEvents)
	}
	if res.PrunedEventIDs != 3 {
		t.Errorf("pruned %d event ids, want 3", res.PrunedEventIDs)
	}
	have = partitions(t, s)
	if have["events_p20310405"] || have["events_p20310407"] || !have["events_p20310505"] {
		t.Errorf("partitions after retention: %v", have)
	}
	for _, c := range []struct {
		e    *store.Event
		kept bool
	}{{old1, false}, {old2, false}, {mid, true}, {midShort, false}, {fresh, true}} {
		_, err := s.Event(ctx, c.e.ProjectID, c.e.ID)
		if c.kept != (err == nil) {
			t.Errorf("event received %v ago: kept = %v (%v), want %v", now.Sub(c.e.ReceivedAt), err == nil, err, c.kept)
		}
	}
	var ids int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM event_ids").Scan(&ids); err != nil || ids != 2 {
		t.Errorf("event_ids rows: %d (%v), want 2", ids, err)
	}
	is, err := s.Issue(ctx, short.ID, fresh.IssueID)
	if err != nil || is.Count != 3 {
		t.Errorf("short's issue: %+v, %v; want it kept with count 3", is, err)
	}

	// An hour later nothing more goes.
	now = now.Add(time.Hour)
	res, err = s.ApplyRetention(ctx, now, 90)
	if err != nil || len(res.DroppedPartitions) != 0 || res.DeletedEvents != 0 {
		t.Errorf("second run: %+v, %v; want nothing removed", res, err)
	}
}
