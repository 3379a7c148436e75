package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/storetest"
)

// BenchmarkCommit compares Commit of 1,000 new events (one project, 20
// fingerprints) with plain prepared INSERTs of the same rows, prepared in
// advance, in one transaction on the same connection (raw-insert): into a
// table of the same columns and indexes, and into a full-text table like
// events_fts, without the resend check or issues. raw-insert-noindex
// inserts into a table with neither indexes nor full-text table, to show
// what those cost.
func BenchmarkCommit(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := &store.Project{ID: storetest.NewID(), Slug: "bench", Name: "Bench"}
	if err := s.CreateProject(ctx, p); err != nil {
		b.Fatal(err)
	}
	const columns = `(seq INTEGER PRIMARY KEY, id TEXT NOT NULL, project_id TEXT NOT NULL, issue_id INTEGER NOT NULL,
		fingerprint TEXT NOT NULL, title TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
		environment TEXT NOT NULL, release TEXT NOT NULL, tags TEXT, timestamp INTEGER NOT NULL,
		received_at INTEGER NOT NULL, body TEXT, flags TEXT`
	if _, err := s.w.ExecContext(ctx, `
		CREATE TABLE raw_events `+columns+`, UNIQUE (project_id, id));
		CREATE INDEX raw_events_project_idx ON raw_events (project_id, received_at);
		CREATE INDEX raw_events_issue_idx ON raw_events (issue_id, received_at);
		CREATE VIRTUAL TABLE raw_events_fts USING fts5 (title, message, exception, content = '', contentless_delete = 1);
		CREATE TABLE raw_events_noindex `+columns+`);`); err != nil {
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
	for _, raw := range []struct {
		name, table string
		fts         bool
	}{
		{"raw-insert/1000", "raw_events", true},
		{"raw-insert-noindex/1000", "raw_events_noindex", false},
	} {
		b.Run(raw.name, func(b *testing.B) {
			batches := make([][][]any, b.N)
			texts := make([][]string, b.N)
			for i := range batches {
				for _, e := range storetest.Events(p.ID, n, 20, time.Now()) {
					tags, _ := json.Marshal(e.Tags)
					batches[i] = append(batches[i], []any{e.ID, e.ProjectID, int64(1), e.Fingerprint, e.Title, e.Level,
						e.Message, e.Environment, e.Release, string(tags), micros(e.Timestamp), micros(e.ReceivedAt),
						string(e.Body), nil})
					texts[i] = append(texts[i], exceptionText(e.Body))
				}
			}
			q := `INSERT INTO ` + raw.table + ` (id, project_id, issue_id, fingerprint, title, level, message,
				environment, release, tags, timestamp, received_at, body, flags)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tx, err := s.w.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				stmt, err := tx.PrepareContext(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				var index *sql.Stmt
				if raw.fts {
					if index, err = tx.PrepareContext(ctx, "INSERT INTO raw_events_fts (rowid, title, message, exception) VALUES (?, ?, ?, ?)"); err != nil {
						b.Fatal(err)
					}
				}
				for j, row := range batches[i] {
					res, err := stmt.ExecContext(ctx, row...)
					if err != nil {
						b.Fatal(err)
					}
					if index != nil {
						seq, _ := res.LastInsertId()
						if _, err := index.ExecContext(ctx, seq, row[4], row[6], texts[i][j]); err != nil {
							b.Fatal(err)
						}
					}
				}
				stmt.Close()
				if index != nil {
					index.Close()
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}
