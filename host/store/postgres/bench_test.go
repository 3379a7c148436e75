package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
)

// BenchmarkCommit compares Commit of 1,000 new events (one project, 20
// fingerprints) with a plain CopyFrom of the same rows, prepared in advance,
// into a table of the same columns and indexes that is not partitioned and
// has no dedupe table nor issues (raw-copyfrom): the difference is the cost
// of idempotency, grouping and partition routing. raw-copyfrom-noindex
// copies into a table without indexes or the generated search column, to
// show what those cost.
func BenchmarkCommit(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	s := open(b, postgres.Config{})
	p := &store.Project{ID: storetest.NewID(), Slug: "bench", Name: "Bench"}
	if err := s.CreateProject(ctx, p); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "CREATE TABLE raw_events (LIKE events INCLUDING ALL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "CREATE TABLE raw_events_noindex (LIKE events INCLUDING DEFAULTS)"); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	}

	b.Run("store/1000", func(b *testing.B) {
		batches := make([][]*store.Event, b.N)
		for i := range batches {
			batches[i] = storetest.Events(p.ID, n, 20, time.Now())
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Commit(ctx, batches[i]); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	for _, raw := range []struct{ name, table string }{
		{"raw-copyfrom/1000", "raw_events"},
		{"raw-copyfrom-noindex/1000", "raw_events_noindex"},
	} {
		b.Run(raw.name, func(b *testing.B) {
			batches := make([][][]any, b.N)
			for i := range batches {
				for _, e := range storetest.Events(p.ID, n, 20, time.Now()) {
					id, _ := batch.ParseUUID(e.ID)
					pid, _ := batch.ParseUUID(e.ProjectID)
					tags, _ := json.Marshal(e.Tags)
					batches[i] = append(batches[i], []any{id, pid, int64(1), e.Fingerprint, e.Title, e.Level, e.Message,
						e.Environment, e.Release, tags, e.Timestamp, e.ReceivedAt, []byte(e.Body), nil})
				}
			}
			cols := []string{"id", "project_id", "issue_id", "fingerprint", "title", "level", "message",
				"environment", "release", "tags", "timestamp", "received_at", "body", "flags"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Pool().CopyFrom(ctx, pgx.Identifier{raw.table}, cols, pgx.CopyFromRows(batches[i])); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}
