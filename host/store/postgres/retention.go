package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// retentionBatch is how many rows one retention DELETE removes, so that no
// statement holds locks or builds up dead rows for long.
const retentionBatch = 5000

// ApplyRetention removes what no project keeps any more, in three steps:
//
//  1. Each daily partition of events whose whole day is older than the
//     longest retention of any project is dropped, one partition per
//     transaction, under the advisory lock the partition job takes and
//     with its lock timeout (a DROP needs an exclusive lock on events for
//     a moment): nothing is scanned, and the space goes back at once.
//  2. Each project's events older than its own retention are deleted,
//     from what is left, a batch at a time; with its event_ids rows, so
//     that resend detection forgets what retention forgot.
//  3. Webhook delivery records older than the longest retention go too.
//
// Issues are kept with their counts. A partition that cannot be dropped
// now (its lock timed out) is left for the next run; its rows past a
// project's retention are still deleted in step 2.
func (s *Store) ApplyRetention(ctx context.Context, now time.Time, defaultDays int) (store.RetentionResult, error) {
	var res store.RetentionResult
	now = now.UTC()
	projects, err := s.ListProjects(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	longest := 0
	for _, p := range projects {
		longest = max(longest, store.RetentionDays(p.Settings, defaultDays))
	}
	if longest == 0 { // no project: keep what the default keeps
		longest = store.RetentionDays(store.ProjectSettings{}, defaultDays)
	}
	var errs []error

	// 1. Whole partitions.
	horizon := now.Add(-time.Duration(longest) * day)
	have, err := s.partitions(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	var names []string
	for name := range have {
		d, ok := partitionDay(name)
		if ok && !d.Add(day).After(horizon) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		d, _ := partitionDay(name)
		pruned, err := s.dropPartition(ctx, name, d)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return res, errors.Join(errs...)
			}
			continue
		}
		res.DroppedPartitions = append(res.DroppedPartitions, name)
		res.PrunedEventIDs += pruned
	}

	// 2. Each project's older rows.
	for _, p := range projects {
		cutoff := now.Add(-time.Duration(store.RetentionDays(p.Settings, defaultDays)) * day)
		pid, _ := batch.ParseUUID(p.ID)
		n, err := s.deleteBatches(ctx, `DELETE FROM events WHERE (project_id, received_at, id) IN (
			SELECT project_id, received_at, id FROM events WHERE project_id = $1 AND received_at < $2 LIMIT $3)`, pid, cutoff)
		res.DeletedEvents += n
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: delete events of project %s: %w", p.Slug, err))
			continue
		}
		n, err = s.deleteBatches(ctx, `DELETE FROM event_ids WHERE (project_id, event_id) IN (
			SELECT project_id, event_id FROM event_ids WHERE project_id = $1 AND received_at < $2 LIMIT $3)`, pid, cutoff)
		res.PrunedEventIDs += n
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: prune event ids of project %s: %w", p.Slug, err))
		}
	}

	// 3. Delivery log.
	n, err := s.deleteBatches(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE at < $1 LIMIT $2)`, horizon)
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
		tag, err := s.pool.Exec(ctx, q, args...)
		if err != nil {
			return total, wrap("delete", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < retentionBatch {
			return total, nil
		}
	}
}

// partitionDay returns the UTC day of a partition named by PartitionName.
func partitionDay(name string) (time.Time, bool) {
	digits, ok := strings.CutPrefix(name, "events_p")
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse("20060102", digits)
	return d, err == nil
}

// dropPartition drops the events partition of day d, with the event_ids
// rows of that day, and returns how many of those it deleted.
func (s *Store) dropPartition(ctx context.Context, name string, d time.Time) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, wrap("retention: drop "+name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, q := range []string{
		fmt.Sprintf("SET LOCAL lock_timeout = %d", s.cfg.PartitionLockTimeout.Milliseconds()),
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", partitionLockKey),
		"DROP TABLE IF EXISTS " + quoteIdents([]string{name})[0],
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, wrap("retention: drop "+name, err)
		}
	}
	tag, err := tx.Exec(ctx, "DELETE FROM event_ids WHERE received_at >= $1 AND received_at < $2", d, d.Add(day))
	if err != nil {
		return 0, wrap("retention: drop "+name+": prune event ids", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, wrap("retention: drop "+name, err)
	}
	return tag.RowsAffected(), nil
}

// usageTables are the tables whose sizes ProjectUsage reports besides
// events.
var usageTables = []string{"event_ids", "issues", "alerts", "webhook_deliveries"}

// ProjectUsage measures a project: exact counts and row bytes
// (pg_column_size of each whole row, as stored, compression included)
// of its events and issues, and the on-disk size of the shared tables
// (pg_total_relation_size: heap, indexes and TOAST; events summed over
// its partitions).
func (s *Store) ProjectUsage(ctx context.Context, projectID string) (*store.ProjectUsage, error) {
	p, err := s.Project(ctx, projectID)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("usage of project %s", p.Slug)
	pid, _ := batch.ParseUUID(p.ID)
	u := &store.ProjectUsage{
		ProjectID: p.ID,
		Method: "events and issues: exact row counts and the sum of pg_column_size of the project's rows " +
			"(as stored, after compression; indexes excluded); tables: pg_total_relation_size " +
			"(heap, indexes and TOAST) shared by every project; total: pg_database_size",
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(pg_column_size(e.*)), 0), min(received_at), max(received_at)
		FROM events e WHERE project_id = $1`, pid).Scan(&u.Events, &u.EventBytes, &u.Oldest, &u.Newest); err != nil {
		return nil, wrap(op, err)
	}
	for _, t := range []**time.Time{&u.Oldest, &u.Newest} {
		if *t != nil {
			v := (*t).UTC()
			*t = &v
		}
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(pg_column_size(i.*)), 0) FROM issues i WHERE project_id = $1`,
		pid).Scan(&u.Issues, &u.IssueBytes); err != nil {
		return nil, wrap(op, err)
	}
	ev := store.TableUsage{Name: "events"}
	if err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint
		FROM pg_inherits WHERE inhparent = 'events'::regclass`).Scan(&ev.Partitions, &ev.Bytes); err != nil {
		return nil, wrap(op, err)
	}
	u.Tables = append(u.Tables, ev)
	for _, name := range usageTables {
		t := store.TableUsage{Name: name}
		if err := s.pool.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", name).Scan(&t.Bytes); err != nil {
			return nil, wrap(op, err)
		}
		u.Tables = append(u.Tables, t)
	}
	if err := s.pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&u.TotalBytes); err != nil {
		return nil, wrap(op, err)
	}
	return u, nil
}
