package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

const issueColumns = `id, project_id, fingerprint, title, level, status, count, first_seen, last_seen,
	coalesce(assigned_to, ''), discarded_at, dropped`

func scanIssue(row interface{ Scan(...any) error }) (*store.Issue, error) {
	var is store.Issue
	var first, last int64
	var discarded sql.NullInt64
	if err := row.Scan(&is.ID, &is.ProjectID, &is.Fingerprint, &is.Title, &is.Level, &is.Status, &is.Count,
		&first, &last, &is.AssignedTo, &discarded, &is.Dropped); err != nil {
		return nil, err
	}
	is.FirstSeen, is.LastSeen = fromMicros(first), fromMicros(last)
	if discarded.Valid {
		t := fromMicros(discarded.Int64)
		is.DiscardedAt = &t
	}
	return &is, nil
}

// IssueByID returns an issue of any project.
func (s *Store) IssueByID(ctx context.Context, id int64) (*store.Issue, error) {
	op := fmt.Sprintf("issue %d", id)
	is, err := scanIssue(s.r.QueryRowContext(ctx, "SELECT "+issueColumns+" FROM issues WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return is, nil
}

// ListIssues returns the page q selects.
func (s *Store) ListIssues(ctx context.Context, q store.IssueQuery) ([]*store.Issue, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	where := []string{"project_id = ?"}
	args := []any{canonical(q.ProjectID)}
	switch q.Status {
	case "":
		where = append(where, "discarded_at IS NULL")
	case store.StatusDiscarded:
		where = append(where, "discarded_at IS NOT NULL")
	default:
		where = append(where, "status = ?", "discarded_at IS NULL")
		args = append(args, q.Status)
	}
	if q.Level != "" {
		where = append(where, "level = ?")
		args = append(args, q.Level)
	}
	if q.AssignedTo != "" {
		where = append(where, "assigned_to = ?")
		args = append(args, q.AssignedTo)
	}
	if q.Text != "" {
		where = append(where, "instr(lower(title), lower(?)) > 0")
		args = append(args, batch.CleanText(q.Text))
	}
	if c := q.After; c != nil {
		ls := micros(c.LastSeen)
		where = append(where, "last_seen <= ? AND (last_seen < ? OR id < ?)")
		args = append(args, ls, ls, c.ID)
	}
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, "SELECT "+issueColumns+" FROM issues WHERE "+strings.Join(where, " AND ")+
		" ORDER BY last_seen DESC, id DESC LIMIT ?", args...)
	if err != nil {
		return nil, wrap("list issues", err)
	}
	issues, err := collect(rows, scanIssue)
	return issues, wrap("list issues", err)
}

// AssignIssue sets or, with "", clears the member an issue is assigned to.
func (s *Store) AssignIssue(ctx context.Context, projectID string, id int64, memberID string) error {
	return s.execOne(ctx, fmt.Sprintf("assign issue %d of project %s", id, projectID),
		"UPDATE issues SET assigned_to = nullif(?, ''), updated_at = ? WHERE project_id = ? AND id = ?",
		batch.CleanText(memberID), micros(s.now()), canonical(projectID), id)
}

// DiscardIssue marks an issue discarded; the first time stays.
func (s *Store) DiscardIssue(ctx context.Context, projectID string, id int64, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("discard issue %d of project %s", id, projectID),
		"UPDATE issues SET discarded_at = coalesce(discarded_at, ?), updated_at = ? WHERE project_id = ? AND id = ?",
		micros(at), micros(s.now()), canonical(projectID), id)
}

// DeleteIssue deletes an issue, its events (the trigger removes them from
// the full-text index) and their counts.
func (s *Store) DeleteIssue(ctx context.Context, projectID string, id int64) error {
	op := fmt.Sprintf("delete issue %d of project %s", id, projectID)
	project := canonical(projectID)
	var failure error
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM issues WHERE project_id = ? AND id = ?", project, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			failure = fmt.Errorf("%s: %w", op, store.ErrNotFound)
			return errRollback
		}
		if err != nil {
			return err
		}
		// What the tag counts hold of the events.
		rows, err := tx.QueryContext(ctx, "SELECT received_at, tags FROM events WHERE issue_id = ? AND project_id = ? AND tags IS NOT NULL", id, project)
		if err != nil {
			return err
		}
		type tagKey struct {
			key   string
			day   int64
			value string
		}
		tags := map[tagKey]int64{}
		for rows.Next() {
			var received int64
			var raw string
			if err := rows.Scan(&received, &raw); err != nil {
				rows.Close()
				return err
			}
			var m map[string]string
			if json.Unmarshal([]byte(raw), &m) != nil {
				continue
			}
			day := micros(fromMicros(received).Truncate(24 * time.Hour))
			for k, v := range m {
				tags[tagKey{batch.TagText(k), day, batch.TagText(v)}]++
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE issue_id = ? AND project_id = ?", id, project); err != nil {
			return err
		}
		for k, n := range tags {
			if _, err := tx.ExecContext(ctx, "UPDATE tag_counts SET n = n - ? WHERE project_id = ? AND key = ? AND day = ? AND value = ?",
				n, project, k.key, k.day, k.value); err != nil {
				return err
			}
		}
		if len(tags) > 0 {
			if _, err := tx.ExecContext(ctx, "DELETE FROM tag_counts WHERE project_id = ? AND n <= 0", project); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE event_counts SET n = n - (SELECT i.n FROM issue_counts i
				WHERE i.issue_id = ?1 AND i.hour = event_counts.hour AND i.level = event_counts.level)
			WHERE project_id = ?2 AND EXISTS (SELECT 1 FROM issue_counts i
				WHERE i.issue_id = ?1 AND i.hour = event_counts.hour AND i.level = event_counts.level)`, id, project); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM event_counts WHERE project_id = ? AND n <= 0", project); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM issues WHERE id = ?", id) // issue_counts cascade
		return err
	})
	if errors.Is(err, errRollback) {
		return failure
	}
	return wrap(op, err)
}

// DiscardedIssues returns every discarded issue.
func (s *Store) DiscardedIssues(ctx context.Context) ([]store.DiscardedIssue, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, project_id, fingerprint FROM issues WHERE discarded_at IS NOT NULL")
	if err != nil {
		return nil, wrap("discarded issues", err)
	}
	out, err := collect(rows, func(r interface{ Scan(...any) error }) (store.DiscardedIssue, error) {
		var d store.DiscardedIssue
		err := r.Scan(&d.ID, &d.ProjectID, &d.Fingerprint)
		return d, err
	})
	return out, wrap("discarded issues", err)
}

// AddDropped adds to issues' dropped counts.
func (s *Store) AddDropped(ctx context.Context, drops map[int64]int64) error {
	if len(drops) == 0 {
		return nil
	}
	return wrap("add dropped events", s.write(ctx, func(tx *sql.Tx) error {
		for id, n := range drops {
			if _, err := tx.ExecContext(ctx, "UPDATE issues SET dropped = dropped + ? WHERE id = ?", n, id); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ReopenSpiking reopens archived issues whose volume spikes. Writes are
// serialized, so the read and the update need no lock between them.
func (s *Store) ReopenSpiking(ctx context.Context, now time.Time) ([]*store.Issue, error) {
	cur := now.UTC().Truncate(time.Hour)
	prev := cur.Add(-time.Hour)
	hours := int64(store.SpikeBaseline / time.Hour)
	var out []*store.Issue
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `WITH c AS (
				SELECT c.issue_id,
					coalesce(sum(c.n) FILTER (WHERE c.hour = ?1), 0) AS cur,
					coalesce(sum(c.n) FILTER (WHERE c.hour = ?2), 0) AS prev,
					coalesce(sum(c.n) FILTER (WHERE c.hour < ?2), 0) AS base
				FROM issues i JOIN issue_counts c ON c.issue_id = i.id
				WHERE i.status = 'archived' AND i.discarded_at IS NULL AND c.hour >= ?3 AND c.hour <= ?1
				GROUP BY c.issue_id
			)
			UPDATE issues SET status = 'unresolved', archived_until = NULL, updated_at = ?7
			FROM c
			WHERE issues.id = c.issue_id AND max(c.cur, c.prev) > ?4 AND max(c.cur, c.prev) * ?6 > ?5 * c.base
			RETURNING `+issueColumns,
			micros(cur), micros(prev), micros(prev.Add(-store.SpikeBaseline)),
			int64(store.SpikeMinimum), int64(store.SpikeFactor), hours, micros(s.now()))
		if err != nil {
			return err
		}
		out, err = collect(rows, scanIssue)
		return err
	})
	return out, wrap("reopen spiking issues", err)
}
