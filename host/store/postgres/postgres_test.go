package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
	"github.com/mesher-dev/mesher/internal/pgtest"
	"github.com/mesher-dev/mesher/migrations"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open opens a store on a fresh database, closed when t ends.
func open(t testing.TB, cfg postgres.Config) *postgres.Store {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pgtest.URL(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, postgres.Config{}) })
}

func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 3
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			s, err := postgres.Open(context.Background(), postgres.Config{URL: url, Logger: quiet})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	applied := func() map[int]time.Time {
		t.Helper()
		s := open(t, postgres.Config{URL: url})
		rows, err := s.Pool().Query(context.Background(), "SELECT version, applied_at FROM schema_migrations")
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]time.Time{}
		var v int
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error {
			if _, dup := got[v]; dup {
				t.Errorf("version %d recorded twice", v)
			}
			got[v] = at
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := applied()
	if len(first) != len(all) {
		t.Errorf("schema_migrations: got %d versions, want %d", len(first), len(all))
	}
	for _, m := range all {
		if _, ok := first[m.Version]; !ok {
			t.Errorf("version %d (%s) not recorded", m.Version, m.Name)
		}
	}
	// Opening again applies nothing.
	again := applied()
	if !reflect.DeepEqual(again, first) {
		t.Errorf("schema_migrations after another Open: got %v, want %v unchanged", again, first)
	}
}

func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, postgres.Config{URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Logger: quiet})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a closed port: got error %v, want store.ErrUnavailable", err)
	}
}

// partitionOf returns the partition that holds an event.
func partitionOf(t *testing.T, s *postgres.Store, id string) string {
	t.Helper()
	var name string
	err := s.Pool().QueryRow(context.Background(), "SELECT tableoid::regclass::text FROM events WHERE id = $1", id).Scan(&name)
	if err != nil {
		t.Fatalf("partition of event %s: %v", id, err)
	}
	return name
}

func partitions(t *testing.T, s *postgres.Store) map[string]bool {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(),
		"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	return have
}

func TestPartitions(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2031, 5, 10, 12, 0, 0, 0, time.UTC)
	s := open(t, postgres.Config{Now: func() time.Time { return day }, PartitionDaysAhead: 2, PartitionInterval: -1})

	t.Run("created at open", func(t *testing.T) {
		have := partitions(t, s)
		for _, name := range []string{"events_default", "events_p20310509", "events_p20310510", "events_p20310511", "events_p20310512"} {
			if !have[name] {
				t.Errorf("partition %s: missing after Open at %v", name, day)
			}
		}
		if have["events_p20310513"] {
			t.Errorf("partition events_p20310513: exists, want only 2 days ahead")
		}
	})
	t.Run("tomorrow", func(t *testing.T) {
		if err := s.MaintainPartitions(ctx, day.Add(24*time.Hour)); err != nil {
			t.Fatalf("MaintainPartitions: %v", err)
		}
		if !partitions(t, s)["events_p20310513"] {
			t.Errorf("partition events_p20310513: missing after MaintainPartitions a day later")
		}
	})

	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	commit := func(e *store.Event) store.Committed {
		t.Helper()
		res, err := s.Commit(ctx, []*store.Event{e})
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		return res[0]
	}
	t.Run("routed by received day", func(t *testing.T) {
		e := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "f", Title: "t", Level: "error",
			Timestamp: day.AddDate(-1, 0, 0), ReceivedAt: day.Add(23 * time.Hour)}
		commit(e)
		if got, want := partitionOf(t, s, e.ID), "events_p20310511"; got != want {
			t.Errorf("partition: got %s, want %s (the received day, not the timestamp's)", got, want)
		}
	})
	t.Run("day without a partition", func(t *testing.T) {
		late := day.AddDate(0, 1, 0)
		e := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "f", Title: "t", Level: "error",
			Timestamp: late, ReceivedAt: late}
		commit(e)
		if got, want := partitionOf(t, s, e.ID), "events_default"; got != want {
			t.Errorf("partition: got %s, want %s", got, want)
		}
		if _, err := s.Event(ctx, p.ID, e.ID); err != nil {
			t.Errorf("Event in the default partition: %v", err)
		}
		// The job moves it to a partition of its own day.
		if err := s.MaintainPartitions(ctx, day); err != nil {
			t.Fatalf("MaintainPartitions: %v", err)
		}
		if got, want := partitionOf(t, s, e.ID), "events_p20310610"; got != want {
			t.Errorf("partition after the job: got %s, want %s", got, want)
		}
		var left int
		if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM events_default").Scan(&left); err != nil || left != 0 {
			t.Errorf("rows left in events_default: got %d (%v), want 0", left, err)
		}
		got, err := s.Event(ctx, p.ID, e.ID)
		if err != nil || !got.ReceivedAt.Equal(late) {
			t.Errorf("Event after the move: got %v, %v; want received %v", got, err, late)
		}
		if r := commit(e); !r.Duplicate {
			t.Errorf("resend after the move: got %+v, want a duplicate", r)
		}
		is, err := s.Issue(ctx, p.ID, got.IssueID)
		if err != nil || is.Count != 2 {
			t.Errorf("issue count: got %v, %v; want 2", is, err)
		}
	})
}

// TestPartitionJob checks that the job keeps running after Open: when the
// clock moves on, partitions of the new days appear without a call.
func TestPartitionJob(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s := open(t, postgres.Config{
		Now:                func() time.Time { return time.Unix(0, now.Load()).UTC() },
		PartitionDaysAhead: 1,
		PartitionInterval:  20 * time.Millisecond,
	})
	now.Store(time.Date(2032, 2, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	deadline := time.Now().Add(10 * time.Second)
	for !partitions(t, s)["events_p20320202"] {
		if time.Now().After(deadline) {
			t.Fatalf("partition events_p20320202: not created by the job within 10s of the clock reaching 2032-02-01")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v, want it to stop the job promptly", d)
	}
}

// TestSearch checks the generated search column: title, message and
// exception values, in both shapes an SDK sends them.
func TestSearch(t *testing.T) {
	ctx := context.Background()
	s := open(t, postgres.Config{})
	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	mk := func(title, message, body string) *store.Event {
		return &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: title, Title: title, Level: "error",
			Message: message, Timestamp: time.Now(), Body: []byte(body)}
	}
	wrapped := mk("KeyError", "", `{"exception": {"values": [{"type": "KeyError", "value": "missing quokka"}]}}`)
	bare := mk("ValueError", "", `{"exception": [{"type": "ValueError", "value": "bad wombat"}]}`)
	msg := mk("Timeout", "upstream numbat timed out", `{"message": "upstream numbat timed out"}`)
	odd := mk("Odd", "", `["not", "an", "object"]`)
	if _, err := s.Commit(ctx, []*store.Event{wrapped, bare, msg, odd}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"quokka", []string{wrapped.ID}},
		{"wombat", []string{bare.ID}},
		{"numbat", []string{msg.ID}},
		{"keyerror", []string{wrapped.ID}},
		{"odd", []string{odd.ID}},
		{"platypus", []string{}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			rows, err := s.Pool().Query(ctx, "SELECT id::text FROM events WHERE search @@ plainto_tsquery('simple', $1) ORDER BY id", c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("search %q: got %v, want %v", c.query, got, c.want)
			}
		})
	}
}
