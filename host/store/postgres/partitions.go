package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionLockKey is the pg_advisory_xact_lock key under which nodes
// create partitions one at a time ("mesher:p" in ASCII).
const partitionLockKey int64 = 0x6d65736865723a70

const day = 24 * time.Hour

// eventColumns are the columns Commit writes, in COPY order; search is
// generated.
var eventColumns = []string{"id", "project_id", "issue_id", "fingerprint", "title", "level", "message",
	"environment", "release", "tags", "timestamp", "received_at", "body", "flags"}

// PartitionName returns the name of the events partition of the UTC day
// of t: events_pYYYYMMDD.
func PartitionName(t time.Time) string {
	return "events_p" + t.UTC().Format("20060102")
}

// MaintainPartitions creates the events partitions of each UTC day from
// the day before now (a node whose clock is behind, near midnight) to
// Config.PartitionDaysAhead days after it, and of each day that has rows in
// the default partition, moving those rows into it. Nodes may run it at the
// same time: an advisory lock makes them take turns, and a partition that
// exists is left alone. Each partition is created in its own transaction;
// MaintainPartitions tries every day and returns the errors joined.
//
// The job started by Open calls it with Config.Now every
// Config.PartitionInterval; tests call it with the time they want.
func (s *Store) MaintainPartitions(ctx context.Context, now time.Time) error {
	today := now.UTC().Truncate(day)
	want := make(map[time.Time]bool)
	for d := -1; d <= s.cfg.PartitionDaysAhead; d++ {
		want[today.Add(time.Duration(d)*day)] = true
	}
	stray, err := s.defaultPartitionDays(ctx)
	if err != nil {
		return err
	}
	for _, d := range stray {
		want[d] = true
	}
	have, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	var days []time.Time
	for d := range want {
		if !have[PartitionName(d)] {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	var errs []error
	for _, d := range days {
		if err := s.createPartition(ctx, d); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// defaultPartitionDays returns the UTC days of the rows in events_default,
// normally none.
func (s *Store) defaultPartitionDays(ctx context.Context) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT date_trunc('day', received_at, 'UTC') FROM events_default")
	if err != nil {
		return nil, wrap("partitions: read default partition", err)
	}
	days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (time.Time, error) {
		var t time.Time
		err := r.Scan(&t)
		return t.UTC(), err
	})
	return days, wrap("partitions: read default partition", err)
}

// partitions returns the names of the partitions of events.
func (s *Store) partitions(ctx context.Context) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, wrap("partitions: list", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("partitions: list", err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	return have, nil
}

// createPartition creates the partition of day d, moving into it the rows
// of that day that are in the default partition.
//
// It builds the table on its own and attaches it, rather than CREATE TABLE
// … PARTITION OF: ATTACH takes a SHARE UPDATE EXCLUSIVE lock on events,
// which lets inserts and queries go on, where CREATE … PARTITION OF takes an
// ACCESS EXCLUSIVE lock that stops them. Both lock the default partition
// exclusively for a moment, to check that it holds no row of the new range;
// that lock is taken first, so no row can arrive there between the move and
// the attach.
func (s *Store) createPartition(ctx context.Context, d time.Time) error {
	name := PartitionName(d)
	from, to := pgTimestamp(d), pgTimestamp(d.Add(day))
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap("partitions: create "+name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	cols := strings.Join(quoteIdents(eventColumns), ", ")
	steps := []string{
		fmt.Sprintf("SET LOCAL lock_timeout = %d", s.cfg.PartitionLockTimeout.Milliseconds()),
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", partitionLockKey),
		"LOCK TABLE ONLY events IN SHARE UPDATE EXCLUSIVE MODE",
		"LOCK TABLE events_default IN ACCESS EXCLUSIVE MODE",
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return wrap("partitions: create "+name, err)
		}
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
		return wrap("partitions: create "+name, err)
	}
	if exists { // another node made it while this one waited
		return nil
	}
	steps = []string{
		fmt.Sprintf(`CREATE TABLE %s (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED
			INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)`, name),
		fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM events_default WHERE received_at >= %s AND received_at < %s",
			name, cols, cols, from, to),
		fmt.Sprintf("DELETE FROM events_default WHERE received_at >= %s AND received_at < %s", from, to),
		fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)", name, from, to),
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return wrap("partitions: create "+name, err)
		}
	}
	return wrap("partitions: create "+name, tx.Commit(ctx))
}

// partitionJob runs MaintainPartitions every Config.PartitionInterval
// until ctx ends.
func (s *Store) partitionJob(ctx context.Context) {
	defer s.jobDone.Done()
	t := time.NewTicker(s.cfg.PartitionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.MaintainPartitions(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("postgres: create events partitions", "err", err)
		}
	}
}

// pgTimestamp writes t as a timestamptz literal.
func pgTimestamp(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05") + "+00'"
}

func quoteIdents(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}
