// Package embedded is the store.Store of a single node without PostgreSQL:
// one SQLite file (modernc.org/sqlite, pure Go) in the data directory.
//
// Commits are durable when they return (WAL journal, synchronous=FULL).
// Writes go through one connection, so they are serialized and a commit
// never waits on another writer's lock; reads use a pool of read-only
// connections that WAL lets run beside the writer.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mesher-dev/mesher/host/store"
)

// FileName is the database file in Config.Dir. SQLite keeps FileName-wal
// and FileName-shm beside it.
const FileName = "mesher.db"

// Defaults of Config.
const (
	// DefaultBusyTimeout: how long a connection waits for another's lock
	// (a checkpoint, another process on the same file) before failing.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultReaders: enough for the API's reads on a small machine;
	// SQLite reads are fast and CPU-bound.
	DefaultReaders = 4
)

// Config configures a Store. Only Dir is required.
type Config struct {
	// Dir is the data directory (MESHER_DATA_DIR); it is created if
	// missing, and the database is Dir/FileName.
	Dir string
	// Now is the clock, for created and received times the caller leaves
	// zero. nil means time.Now.
	Now func() time.Time
	// BusyTimeout: 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Readers is the number of read connections. 0 means DefaultReaders.
	Readers int
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // one connection: every write
	r   *sql.DB // read-only connections
	cfg Config
}

var _ store.Store = (*Store)(nil)

// Open opens, or creates, the database in cfg.Dir and brings its schema up
// to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded: Config.Dir is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = DefaultBusyTimeout
	}
	if cfg.Readers == 0 {
		cfg.Readers = DefaultReaders
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(cfg.Dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		} else {
			q.Set("_txlock", "immediate") // take the write lock at BEGIN, not halfway
		}
		return (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	}
	w, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, cfg: cfg}
	// Create the file and its WAL before a reader opens it.
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.Readers)
	r.SetMaxIdleConns(cfg.Readers)
	s.r = r
	return s, nil
}

// migrate applies the schema entries the database lacks, each in its own
// transaction with the version it reaches.
func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return wrap("read schema version", err)
	}
	if v > len(schema) {
		return fmt.Errorf("the database is at schema version %d, this build knows %d: run a newer build", v, len(schema))
	}
	for ; v < len(schema); v++ {
		err := s.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, schema[v]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema version %d: %w", v+1, err)
		}
	}
	return nil
}

// Close closes the database. SQLite checkpoints the WAL into the file when
// the last connection closes.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping reports whether the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return wrap("ping", s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}

func (s *Store) now() time.Time { return s.cfg.Now().UTC() }

// write runs f in a write transaction and commits it, or rolls it back if
// f fails.
func (s *Store) write(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// micros and fromMicros convert times to and from the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// sqliteCode returns the extended result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isConflict(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY }

// wrap names what failed and, when err means the database cannot be used
// now (locked, disk full, I/O error, not within the caller's deadline),
// adds store.ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
