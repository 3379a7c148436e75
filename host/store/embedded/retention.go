package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// retentionBatch is how many rows one retention DELETE removes, so that
// ingestion, which shares the one write connection, waits for at most one
// batch.
const retentionBatch = 2000

const day = 24 * time.Hour

// ApplyRetention deletes each project's events older than its retention,
// a batch at a time (their full-text rows go with them, by trigger), and
// webhook delivery records older than the longest retention. Issues are
// kept with their counts. There are no partitions to drop, and resend
// detection needs no pruning: it reads the events themselves.
func (s *Store) ApplyRetention(ctx context.Context, now time.Time, defaultDays int) (store.RetentionResult, error) {
	var res store.RetentionResult
	projects, err := s.ListProjects(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	longest := 0
	var errs []error
	for _, p := range projects {
		days := store.RetentionDays(p.Settings, defaultDays)
		longest = max(longest, days)
		n, err := s.deleteBatches(ctx, `DELETE FROM events WHERE seq IN (
			SELECT seq FROM events WHERE project_id = ? AND received_at < ? LIMIT ?)`,
			p.ID, micros(now.Add(-time.Duration(days)*day)))
		res.DeletedEvents += n
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: delete events of project %s: %w", p.Slug, err))
		}
	}
	if longest == 0 {
		longest = store.RetentionDays(store.ProjectSettings{}, defaultDays)
	}
	n, err := s.deleteBatches(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE at < ? LIMIT ?)`, micros(now.Add(-time.Duration(longest)*day)))
	res.DeletedDeliveries = n
	if err != nil {
		errs = append(errs, fmt.Errorf("retention: delete webhook deliveries: %w", err))
	}
	return res, errors.Join(errs...)
}

// deleteBatches runs q with args and, as its last parameter, the batch
// size, until it deletes fewer rows than that, and returns how many it
// deleted.
func (s *Store) deleteBatches(ctx context.Context, q string, args ...any) (int64, error) {
	args = append(args, retentionBatch)
	var total int64
	for {
		r, err := s.w.ExecContext(ctx, q, args...)
		if err != nil {
			return total, wrap("delete", err)
		}
		n, _ := r.RowsAffected()
		total += n
		if n < retentionBatch {
			return total, nil
		}
	}
}

// eventBytesSQL is the stored size of an events row: the bytes of its
// text and JSON columns plus 8 for each integer column.
const eventBytesSQL = `octet_length(id) + octet_length(project_id) + octet_length(fingerprint) + octet_length(title)
	+ octet_length(level) + octet_length(message) + octet_length(environment) + octet_length(release)
	+ coalesce(octet_length(tags), 0) + coalesce(octet_length(body), 0) + coalesce(octet_length(flags), 0) + 4 * 8`

// issueBytesSQL is the same for an issues row.
const issueBytesSQL = `octet_length(project_id) + octet_length(fingerprint) + octet_length(title) + octet_length(level)
	+ octet_length(status) + coalesce(octet_length(assigned_to), 0) + coalesce(octet_length(resolved_in_release), 0) + 10 * 8`

// ProjectUsage measures a project: exact counts of its events and issues
// and the bytes of their columns, and the pages each table and its
// indexes take in the file, from SQLite's dbstat table (which reads every
// page of the file: a slow call on a large database).
func (s *Store) ProjectUsage(ctx context.Context, projectID string) (*store.ProjectUsage, error) {
	p, err := s.Project(ctx, projectID)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("usage of project %s", p.Slug)
	u := &store.ProjectUsage{
		ProjectID: p.ID,
		Method: "events and issues: exact row counts and the sum of the byte lengths of the project's columns " +
			"(integers as 8 bytes; SQLite's record headers and indexes excluded); tables: pages in use by " +
			"each table and its indexes, from dbstat, shared by every project; total: page_count × page_size",
	}
	var oldest, newest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(`+eventBytesSQL+`), 0), min(received_at), max(received_at)
		FROM events WHERE project_id = ?`, p.ID).Scan(&u.Events, &u.EventBytes, &oldest, &newest); err != nil {
		return nil, wrap(op, err)
	}
	u.Oldest, u.Newest = timePtr(oldest), timePtr(newest)
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(`+issueBytesSQL+`), 0) FROM issues WHERE project_id = ?`,
		p.ID).Scan(&u.Issues, &u.IssueBytes); err != nil {
		return nil, wrap(op, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize)
		FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1`)
	if err != nil {
		return nil, wrap(op, err)
	}
	sizes := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return nil, wrap(op, err)
		}
		if strings.HasPrefix(name, "events_fts") {
			name = "events_fts" // FTS5's shadow tables
		}
		sizes[name] += n
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	for _, name := range []string{"events", "events_fts", "issues", "alerts", "webhook_deliveries"} {
		u.Tables = append(u.Tables, store.TableUsage{Name: name, Bytes: sizes[name]})
	}
	if err := s.r.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").
		Scan(&u.TotalBytes); err != nil {
		return nil, wrap(op, err)
	}
	return u, nil
}
