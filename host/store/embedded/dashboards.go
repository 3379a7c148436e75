package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// The dashboards read event_counts, issue_counts and tag_counts (see
// schemaTriage).

// EventVolume returns events per bucket in [from, to).
func (s *Store) EventVolume(ctx context.Context, projectID string, issueID int64, from, to time.Time, b store.Bucket) ([]store.CountPoint, error) {
	op := "event volume of project " + projectID
	if err := batch.CheckRange(from, to, b.Duration()); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	width := b.Duration().Microseconds()
	q := "SELECT hour - (hour % ?) AS t, sum(n) FROM event_counts WHERE project_id = ? AND hour >= ? AND hour < ?"
	args := []any{width, canonical(projectID), micros(from), micros(to)}
	if issueID != 0 {
		q = "SELECT hour - (hour % ?) AS t, sum(n) FROM issue_counts WHERE project_id = ? AND hour >= ? AND hour < ? AND issue_id = ?"
		args = append(args, issueID)
	}
	rows, err := s.r.QueryContext(ctx, q+" GROUP BY t ORDER BY t", args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	points, err := collect(rows, func(r interface{ Scan(...any) error }) (store.CountPoint, error) {
		var p store.CountPoint
		var t int64
		err := r.Scan(&t, &p.Count)
		p.Time = fromMicros(t)
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
	rows, err := s.r.QueryContext(ctx, `SELECT level, sum(n) FROM event_counts
		WHERE project_id = ? AND hour >= ? AND hour < ? GROUP BY level`, canonical(projectID), micros(from), micros(to))
	if err != nil {
		return nil, wrap(op, err)
	}
	type lc struct {
		level string
		n     int64
	}
	counts, err := collect(rows, func(r interface{ Scan(...any) error }) (lc, error) {
		var c lc
		err := r.Scan(&c.level, &c.n)
		return c, err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make(map[string]int64, len(counts))
	for _, c := range counts {
		out[c.level] = c.n
	}
	return out, nil
}

// TopIssues returns the issues with the most events in [from, to).
func (s *Store) TopIssues(ctx context.Context, projectID string, from, to time.Time, limit int) ([]store.IssueEvents, error) {
	op := "top issues of project " + projectID
	if err := batch.CheckRange(from, to, time.Hour); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `WITH top AS (
			SELECT issue_id, sum(n) AS n FROM issue_counts
			WHERE project_id = ? AND hour >= ? AND hour < ? GROUP BY issue_id
		)
		SELECT `+issueColumns+`, top.n FROM top JOIN issues i ON i.id = top.issue_id
		WHERE i.discarded_at IS NULL
		ORDER BY top.n DESC, i.id LIMIT ?`, canonical(projectID), micros(from), micros(to), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := collect(rows, func(r interface{ Scan(...any) error }) (store.IssueEvents, error) {
		var ie store.IssueEvents
		var n int64
		is, err := scanIssue(scanTail{r, &n})
		ie.Issue, ie.Events = is, n
		return ie, err
	})
	return out, wrap(op, err)
}

// scanTail scans a row into what scan is given, then into tail.
type scanTail struct {
	row  interface{ Scan(...any) error }
	tail any
}

func (s scanTail) Scan(dest ...any) error { return s.row.Scan(append(dest, s.tail)...) }

// TopTagValues returns the values of a tag the most events in [from, to)
// had.
func (s *Store) TopTagValues(ctx context.Context, projectID, key string, from, to time.Time, limit int) ([]store.TagValueCount, error) {
	op := fmt.Sprintf("top values of tag %q of project %s", key, projectID)
	if err := batch.CheckRange(from, to, store.Day.Duration()); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT value, sum(n) AS total FROM tag_counts
		WHERE project_id = ? AND key = ? AND day >= ? AND day < ?
		GROUP BY value HAVING total > 0
		ORDER BY total DESC, value LIMIT ?`, canonical(projectID), batch.TagText(key), micros(from), micros(to), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := collect(rows, func(r interface{ Scan(...any) error }) (store.TagValueCount, error) {
		var c store.TagValueCount
		err := r.Scan(&c.Value, &c.Count)
		return c, err
	})
	return out, wrap(op, err)
}

// ProjectHealth returns a project's health at now: whole hours of the last
// 24 from event_counts, the partial hours at either end from events.
func (s *Store) ProjectHealth(ctx context.Context, projectID string, now time.Time) (*store.Health, error) {
	op := "health of project " + projectID
	now = now.UTC()
	start := now.Add(-24 * time.Hour)
	firstHour := start.Truncate(time.Hour)
	if firstHour.Before(start) {
		firstHour = firstHour.Add(time.Hour)
	}
	lastHour := now.Truncate(time.Hour)
	midnight := now.Truncate(24 * time.Hour)
	h := &store.Health{}
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM issues WHERE project_id = ?1 AND status = 'unresolved' AND discarded_at IS NULL),
		(SELECT count(*) FROM issues WHERE project_id = ?1 AND created_at >= ?2 AND created_at <= ?3),
		(SELECT coalesce(sum(n), 0) FROM event_counts WHERE project_id = ?1 AND hour >= ?5 AND hour < ?6)
		+ (SELECT count(*) FROM events WHERE project_id = ?1 AND received_at >= ?4 AND received_at < ?5)
		+ (SELECT count(*) FROM events WHERE project_id = ?1 AND received_at >= ?6 AND received_at <= ?3)`,
		canonical(projectID), micros(midnight), micros(now), micros(start), micros(firstHour), micros(lastHour)).Scan(
		&h.UnresolvedCount, &h.NewToday, &h.Events24h)
	if err != nil {
		return nil, wrap(op, err)
	}
	return h, nil
}
