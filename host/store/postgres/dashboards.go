package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// The dashboards read event_counts, issue_counts and tag_counts (see
// migration 0003) through their primary keys and issue_counts_project_idx.

// EventVolume returns events per bucket in [from, to).
func (s *Store) EventVolume(ctx context.Context, projectID string, issueID int64, from, to time.Time, b store.Bucket) ([]store.CountPoint, error) {
	op := "event volume of project " + projectID
	if err := batch.CheckRange(from, to, b.Duration()); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return nil, nil
	}
	var args sqlArgs
	table := "event_counts"
	if issueID != 0 {
		table = "issue_counts"
	}
	sql := "SELECT date_trunc(" + args.add(string(b)) + ", hour, 'UTC'), sum(n) FROM " + table + " WHERE project_id = " +
		args.add(pid) + " AND hour >= " + args.add(from) + " AND hour < " + args.add(to)
	if issueID != 0 {
		sql += " AND issue_id = " + args.add(issueID)
	}
	rows, err := s.pool.Query(ctx, sql+" GROUP BY 1 ORDER BY 1", args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	points, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.CountPoint, error) {
		var p store.CountPoint
		err := r.Scan(&p.Time, &p.Count)
		p.Time = p.Time.UTC()
		return p, err
	})
	return points, wrap(op, err)
}

// LevelCounts returns events in [from, to) by level.
func (s *Store) LevelCounts(ctx context.Context, projectID string, from, to time.Time) (map[string]int64, error) {
	op := "level counts of project " + projectID
	if err := batch.CheckRange(from, to, time.Hour); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := map[string]int64{}
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT level, sum(n) FROM event_counts
		WHERE project_id = $1 AND hour >= $2 AND hour < $3 GROUP BY level`, pid, from, to)
	if err != nil {
		return nil, wrap(op, err)
	}
	var level string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&level, &n}, func() error {
		out[level] = n
		return nil
	})
	return out, wrap(op, err)
}

// TopIssues returns the issues with the most events in [from, to).
func (s *Store) TopIssues(ctx context.Context, projectID string, from, to time.Time, limit int) ([]store.IssueEvents, error) {
	op := "top issues of project " + projectID
	if err := batch.CheckRange(from, to, time.Hour); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pid, ok := batch.ParseUUID(projectID)
	if !ok || limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `WITH top AS (
			SELECT issue_id, sum(n) AS n FROM issue_counts
			WHERE project_id = $1 AND hour >= $2 AND hour < $3 GROUP BY issue_id
		)
		SELECT `+issueColumns+`, top.n FROM top JOIN issues i ON i.id = top.issue_id
		WHERE i.discarded_at IS NULL
		ORDER BY top.n DESC, i.id LIMIT $4`, pid, from, to, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.IssueEvents, error) {
		var is store.Issue
		var ie store.IssueEvents
		err := r.Scan(&is.ID, &is.ProjectID, &is.Fingerprint, &is.Title, &is.Level, &is.Status, &is.Count,
			&is.FirstSeen, &is.LastSeen, &is.AssignedTo, &is.DiscardedAt, &is.Dropped, &ie.Events)
		is.FirstSeen, is.LastSeen = is.FirstSeen.UTC(), is.LastSeen.UTC()
		ie.Issue = &is
		return ie, err
	})
	return out, wrap(op, err)
}

// TopTagValues returns the values of a tag the most events in [from, to)
// had.
func (s *Store) TopTagValues(ctx context.Context, projectID, key string, from, to time.Time, limit int) ([]store.TagValueCount, error) {
	op := fmt.Sprintf("top values of tag %q of project %s", key, projectID)
	if err := batch.CheckRange(from, to, store.Day.Duration()); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pid, ok := batch.ParseUUID(projectID)
	if !ok || limit <= 0 {
		return nil, nil
	}
	// Planned for each call's values (an unnamed statement, described
	// first so that parameters keep their types): a tag with a
	// value per user spans most rows of its days, and the generic plan a
	// cached statement switches to after five calls guesses a few rows and
	// walks the index, measured 2× slower here than the scan it replaces.
	rows, err := s.pool.Query(ctx, `SELECT value, sum(n) FROM tag_counts
		WHERE project_id = $1 AND key = $2 AND day >= $3 AND day < $4
		GROUP BY value HAVING sum(n) > 0
		ORDER BY 2 DESC, value COLLATE "C" LIMIT $5`, pgx.QueryExecModeDescribeExec, pid, batch.TagText(key), from, to, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.TagValueCount])
	return out, wrap(op, err)
}

// ProjectHealth returns a project's health at now. Events of the last 24
// hours are summed from event_counts for whole hours, and counted in
// events (an index range of at most two hours) for the hour the range
// starts in and the hour of now.
func (s *Store) ProjectHealth(ctx context.Context, projectID string, now time.Time) (*store.Health, error) {
	op := "health of project " + projectID
	h := &store.Health{}
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return h, nil
	}
	now = now.UTC()
	start := now.Add(-24 * time.Hour)
	firstHour := start.Truncate(time.Hour)
	if firstHour.Before(start) {
		firstHour = firstHour.Add(time.Hour)
	}
	lastHour := now.Truncate(time.Hour)
	midnight := now.Truncate(24 * time.Hour)
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM issues WHERE project_id = $1 AND status = 'unresolved' AND discarded_at IS NULL),
		(SELECT count(*) FROM issues WHERE project_id = $1 AND created_at >= $2 AND created_at <= $3),
		(SELECT coalesce(sum(n), 0) FROM event_counts WHERE project_id = $1 AND hour >= $5 AND hour < $6)
		+ (SELECT count(*) FROM events WHERE project_id = $1 AND received_at >= $4 AND received_at < $5)
		+ (SELECT count(*) FROM events WHERE project_id = $1 AND received_at >= $6 AND received_at <= $3)`,
		pid, midnight, now, start, firstHour, lastHour).Scan(&h.UnresolvedCount, &h.NewToday, &h.Events24h)
	if err != nil {
		return nil, wrap(op, err)
	}
	return h, nil
}
