package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

const issueColumns = `id, project_id, fingerprint, title, level, status, count, first_seen, last_seen,
	coalesce(assigned_to, ''), discarded_at, dropped`

func scanIssue(row pgx.Row) (*store.Issue, error) {
	var is store.Issue
	if err := row.Scan(&is.ID, &is.ProjectID, &is.Fingerprint, &is.Title, &is.Level, &is.Status, &is.Count,
		&is.FirstSeen, &is.LastSeen, &is.AssignedTo, &is.DiscardedAt, &is.Dropped); err != nil {
		return nil, err
	}
	is.FirstSeen, is.LastSeen = is.FirstSeen.UTC(), is.LastSeen.UTC()
	if is.DiscardedAt != nil {
		t := is.DiscardedAt.UTC()
		is.DiscardedAt = &t
	}
	return &is, nil
}

func collectIssues(rows pgx.Rows) ([]*store.Issue, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Issue, error) { return scanIssue(r) })
}

// IssueByID returns an issue of any project.
func (s *Store) IssueByID(ctx context.Context, id int64) (*store.Issue, error) {
	op := fmt.Sprintf("issue %d", id)
	is, err := scanIssue(s.pool.QueryRow(ctx, "SELECT "+issueColumns+" FROM issues WHERE id = $1", id))
	if isNoRows(err) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return is, nil
}

// sqlArgs builds the numbered parameters of a query.
type sqlArgs []any

// add appends v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// ListIssues returns the page q selects.
func (s *Store) ListIssues(ctx context.Context, q store.IssueQuery) ([]*store.Issue, error) {
	pid, ok := batch.ParseUUID(q.ProjectID)
	if !ok || q.Limit <= 0 {
		return nil, nil
	}
	var args sqlArgs
	where := []string{"project_id = " + args.add(pid)}
	switch q.Status {
	case "":
		where = append(where, "discarded_at IS NULL")
	case store.StatusDiscarded:
		where = append(where, "discarded_at IS NOT NULL")
	default:
		where = append(where, "status = "+args.add(q.Status), "discarded_at IS NULL")
	}
	if q.Level != "" {
		where = append(where, "level = "+args.add(q.Level))
	}
	if q.AssignedTo != "" {
		where = append(where, "assigned_to = "+args.add(q.AssignedTo))
	}
	if q.Text != "" {
		where = append(where, "strpos(lower(title), lower("+args.add(batch.CleanText(q.Text))+")) > 0")
	}
	if c := q.After; c != nil {
		ls, id := args.add(c.LastSeen), args.add(c.ID)
		where = append(where, fmt.Sprintf("last_seen <= %s AND (last_seen < %s OR id < %s)", ls, ls, id))
	}
	sql := "SELECT " + issueColumns + " FROM issues WHERE " + strings.Join(where, " AND ") +
		" ORDER BY last_seen DESC, id DESC LIMIT " + args.add(q.Limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap("list issues", err)
	}
	issues, err := collectIssues(rows)
	return issues, wrap("list issues", err)
}

// exec runs a statement that changes one issue of a project, ErrNotFound
// if it changed none.
func (s *Store) execIssue(ctx context.Context, op, projectID string, id int64, sql string, args ...any) error {
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, sql, append([]any{pid, id}, args...)...)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// AssignIssue sets or, with "", clears the member an issue is assigned to.
func (s *Store) AssignIssue(ctx context.Context, projectID string, id int64, memberID string) error {
	return s.execIssue(ctx, fmt.Sprintf("assign issue %d of project %s", id, projectID), projectID, id,
		"UPDATE issues SET assigned_to = NULLIF($3, ''), updated_at = $4 WHERE project_id = $1 AND id = $2",
		batch.CleanText(memberID), s.now())
}

// DiscardIssue marks an issue discarded; the first time stays.
func (s *Store) DiscardIssue(ctx context.Context, projectID string, id int64, at time.Time) error {
	return s.execIssue(ctx, fmt.Sprintf("discard issue %d of project %s", id, projectID), projectID, id,
		"UPDATE issues SET discarded_at = coalesce(discarded_at, $3), updated_at = $4 WHERE project_id = $1 AND id = $2",
		at, s.now())
}

// DeleteIssue deletes an issue, its events, their ids and their counts, in
// one transaction. Locking the issue row first makes a commit adding to
// the issue either finish first (its events are deleted too) or wait. The
// project's event counts and tag counts are then locked in the order
// Commit locks them (see counts.go).
func (s *Store) DeleteIssue(ctx context.Context, projectID string, id int64) error {
	op := fmt.Sprintf("delete issue %d of project %s", id, projectID)
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var one int
	err = tx.QueryRow(ctx, "SELECT 1 FROM issues WHERE project_id = $1 AND id = $2 FOR UPDATE", pid, id).Scan(&one)
	if isNoRows(err) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return wrap(op, err)
	}
	b := &pgx.Batch{}
	// The project's counts, less the issue's (issue_counts goes with the
	// issue, by cascade).
	b.Queue(`SELECT 1 FROM event_counts c JOIN issue_counts i ON c.project_id = i.project_id AND c.hour = i.hour AND c.level = i.level
		WHERE i.issue_id = $1
		ORDER BY c.project_id, c.hour, c.level COLLATE "C"
		FOR UPDATE OF c`, id)
	b.Queue(`UPDATE event_counts c SET n = c.n - i.n FROM issue_counts i
		WHERE i.issue_id = $1 AND c.project_id = i.project_id AND c.hour = i.hour AND c.level = i.level`, id)
	b.Queue(`DELETE FROM event_counts c USING issue_counts i
		WHERE i.issue_id = $1 AND c.project_id = i.project_id AND c.hour = i.hour AND c.level = i.level AND c.n <= 0`, id)
	b.Queue("DELETE FROM issues WHERE id = $1", id)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return wrap(op+": counts", err)
	}
	rows, err := tx.Query(ctx, `WITH gone AS (
			DELETE FROM events WHERE project_id = $1 AND issue_id = $2 RETURNING id, received_at, tags
		), ids AS (
			DELETE FROM event_ids d USING gone WHERE d.project_id = $1 AND d.event_id = gone.id
		)
		SELECT left(t.key, $3), date_trunc('day', g.received_at, 'UTC'), left(t.value, $3), count(*)
		FROM gone g, jsonb_each_text(g.tags) t
		WHERE jsonb_typeof(g.tags) = 'object'
		GROUP BY 1, 2, 3`, pid, id, store.MaxTagLength)
	if err != nil {
		return wrap(op+": events", err)
	}
	var keys, values []string
	var days []time.Time
	var ns []int64
	var k, v string
	var d time.Time
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &d, &v, &n}, func() error {
		keys, days, values, ns = append(keys, k), append(days, d), append(values, v), append(ns, n)
		return nil
	}); err != nil {
		return wrap(op+": events", err)
	}
	if len(keys) > 0 {
		b := &pgx.Batch{}
		b.Queue(`SELECT 1 FROM tag_counts c
			JOIN unnest($2::text[], $3::timestamptz[], $4::text[]) AS u (k, d, v) ON c.key = u.k AND c.day = u.d AND c.value = u.v
			WHERE c.project_id = $1
			ORDER BY c.key COLLATE "C", c.day, c.value COLLATE "C"
			FOR UPDATE OF c`, pid, keys, days, values)
		b.Queue(`UPDATE tag_counts c SET n = c.n - u.n
			FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::bigint[]) AS u (k, d, v, n)
			WHERE c.project_id = $1 AND c.key = u.k AND c.day = u.d AND c.value = u.v`, pid, keys, days, values, ns)
		b.Queue(`DELETE FROM tag_counts c
			USING unnest($2::text[], $3::timestamptz[], $4::text[]) AS u (k, d, v)
			WHERE c.project_id = $1 AND c.key = u.k AND c.day = u.d AND c.value = u.v AND c.n <= 0`, pid, keys, days, values)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return wrap(op+": tag counts", err)
		}
	}
	return wrap(op, tx.Commit(ctx))
}

// DiscardedIssues returns every discarded issue.
func (s *Store) DiscardedIssues(ctx context.Context) ([]store.DiscardedIssue, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, project_id::text, fingerprint FROM issues WHERE discarded_at IS NOT NULL")
	if err != nil {
		return nil, wrap("discarded issues", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.DiscardedIssue])
	return out, wrap("discarded issues", err)
}

// AddDropped adds to issues' dropped counts.
func (s *Store) AddDropped(ctx context.Context, drops map[int64]int64) error {
	if len(drops) == 0 {
		return nil
	}
	ids, ns := make([]int64, 0, len(drops)), make([]int64, 0, len(drops))
	for id, n := range drops {
		ids, ns = append(ids, id), append(ns, n)
	}
	// In id order, so that nodes flushing at the same time cannot deadlock.
	_, err := s.pool.Exec(ctx, `UPDATE issues i SET dropped = i.dropped + u.n
		FROM (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS u (id, n) ORDER BY id) u
		WHERE i.id = u.id`, ids, ns)
	return wrap("add dropped events", err)
}

// ReopenSpiking reopens archived issues whose volume spikes. The UPDATE
// re-checks the status of each row it locks, so of nodes running it at
// the same time only one reopens, and returns, each issue.
func (s *Store) ReopenSpiking(ctx context.Context, now time.Time) ([]*store.Issue, error) {
	cur := now.UTC().Truncate(time.Hour)
	prev := cur.Add(-time.Hour)
	hours := int64(store.SpikeBaseline / time.Hour)
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT c.issue_id,
				coalesce(sum(c.n) FILTER (WHERE c.hour = $1), 0) AS cur,
				coalesce(sum(c.n) FILTER (WHERE c.hour = $2), 0) AS prev,
				coalesce(sum(c.n) FILTER (WHERE c.hour < $2), 0) AS base
			FROM issues i JOIN issue_counts c ON c.issue_id = i.id
			WHERE i.status = 'archived' AND i.discarded_at IS NULL AND c.hour >= $3 AND c.hour <= $1
			GROUP BY c.issue_id
		)
		UPDATE issues i SET status = 'unresolved', archived_until = NULL, updated_at = $7
		FROM c
		WHERE i.id = c.issue_id AND i.status = 'archived' AND i.discarded_at IS NULL
			AND greatest(c.cur, c.prev) > $4 AND greatest(c.cur, c.prev) * $6 > $5 * c.base
		RETURNING `+issueColumns,
		cur, prev, prev.Add(-store.SpikeBaseline), int64(store.SpikeMinimum), int64(store.SpikeFactor), hours, s.now())
	if err != nil {
		return nil, wrap("reopen spiking issues", err)
	}
	issues, err := collectIssues(rows)
	return issues, wrap("reopen spiking issues", err)
}
