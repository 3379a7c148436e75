package embedded

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// addCounts adds a batch's new events to issue_counts, event_counts and
// tag_counts, in
// Commit's transaction. results holds each event's issue id.
func addCounts(ctx context.Context, tx *sql.Tx, events []*store.Event, isNew []bool, results []store.Committed) error {
	type issueKey struct{ project, fingerprint string }
	issues := map[issueKey]int64{}
	for i, e := range events {
		if isNew[i] {
			issues[issueKey{canonical(e.ProjectID), batch.CleanText(e.Fingerprint)}] = results[i].IssueID
		}
	}
	hc, tc := batch.Counts(events, func(i int) bool { return isNew[i] })
	if len(hc) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO issue_counts (issue_id, project_id, hour, level, n) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (issue_id, hour, level) DO UPDATE SET n = n + excluded.n`)
		if err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		defer st.Close()
		type projectKey struct {
			project string
			hour    int64
			level   string
		}
		projects := map[projectKey]int64{}
		for _, c := range hc {
			id := issues[issueKey{c.ProjectID, c.Fingerprint}]
			if _, err := st.ExecContext(ctx, id, c.ProjectID, micros(c.Hour), c.Level, c.N); err != nil {
				return fmt.Errorf("count events of issue %d: %w", id, err)
			}
			projects[projectKey{c.ProjectID, micros(c.Hour), c.Level}] += c.N
		}
		for k, n := range projects {
			if _, err := tx.ExecContext(ctx, `INSERT INTO event_counts (project_id, hour, level, n) VALUES (?, ?, ?, ?)
				ON CONFLICT (project_id, hour, level) DO UPDATE SET n = n + excluded.n`, k.project, k.hour, k.level, n); err != nil {
				return fmt.Errorf("count events of project %s: %w", k.project, err)
			}
		}
	}
	if len(tc) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO tag_counts (project_id, key, day, value, n) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project_id, key, day, value) DO UPDATE SET n = n + excluded.n`)
		if err != nil {
			return fmt.Errorf("count tags: %w", err)
		}
		defer st.Close()
		for _, c := range tc {
			if _, err := st.ExecContext(ctx, c.ProjectID, c.Key, micros(c.Day), c.Value, c.N); err != nil {
				return fmt.Errorf("count tag %q: %w", c.Key, err)
			}
		}
	}
	return nil
}
