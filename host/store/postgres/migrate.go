package postgres

import (
	"context"
	"fmt"

	"github.com/mesher-dev/mesher/migrations"
)

// migrateLockKey is the pg_advisory_lock key under which nodes apply
// migrations one at a time ("mesher:m" in ASCII).
const migrateLockKey int64 = 0x6d65736865723a6d

// migrate applies, in order, each migration not yet recorded in
// schema_migrations, each in its own transaction. It holds a session
// advisory lock throughout, so nodes starting together apply each migration
// once: the others wait, then find it recorded.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrations.All()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap("migrate: connect", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return wrap("migrate: lock", err)
	}
	defer func() {
		// A failed unlock leaves the lock to die with the session, so
		// the connection must not go back to the pool.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return wrap("migrate: create schema_migrations", err)
	}
	applied := make(map[int]bool)
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return wrap("migrate: read schema_migrations", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return wrap("migrate: read schema_migrations", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return wrap("migrate: read schema_migrations", err)
	}
	for v := range applied {
		if v > len(all) {
			return fmt.Errorf("migrate: the database is at schema version %d, this build knows %d: run a newer build", v, len(all))
		}
	}
	for _, m := range all {
		if applied[m.Version] {
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return wrap(fmt.Sprintf("migrate: apply %s", m.Name), err)
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return wrap(fmt.Sprintf("migrate: apply %s", m.Name), err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return wrap(fmt.Sprintf("migrate: record %s", m.Name), err)
		}
		if err := tx.Commit(ctx); err != nil {
			return wrap(fmt.Sprintf("migrate: commit %s", m.Name), err)
		}
	}
	return nil
}
