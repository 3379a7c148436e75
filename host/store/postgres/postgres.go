// Package postgres is the PostgreSQL backend of store.Store, the one a
// cluster shares.
//
// Open applies the schema of package migrations under an advisory lock and
// starts a job that keeps the daily partitions of the events table created
// ahead of time (see MaintainPartitions). Commit stores a batch of events in
// one transaction: a row per event in event_ids, whose primary key makes a
// resend a no-op; one upsert of the batch's issues, locked in a fixed order
// so that nodes committing at the same time cannot deadlock; and the events
// themselves with COPY.
//
// Errors that mean the server cannot be reached wrap store.ErrUnavailable.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mesher-dev/mesher/host/store"
)

// Defaults of Config.
const (
	// DefaultPartitionDaysAhead: a week of partitions ahead survives a week
	// of the job failing (say, a lock it cannot get) before a row lands in
	// the default partition; empty partitions cost next to nothing.
	DefaultPartitionDaysAhead = 7
	// DefaultPartitionInterval: hourly, so a node that runs for days keeps
	// creating partitions, and a failed run is retried soon.
	DefaultPartitionInterval = time.Hour
	// DefaultPartitionLockTimeout bounds how long partition DDL waits for a
	// table lock. Attaching a partition needs a lock that queues behind a
	// long query on events and makes the inserts behind it wait too, so it
	// gives up instead and the next run tries again.
	DefaultPartitionLockTimeout = 5 * time.Second
)

// Config configures a Store. Only URL is required.
type Config struct {
	// URL is the database, as postgres://user:password@host:port/db?…;
	// pgxpool parameters such as pool_max_conns are accepted.
	URL string
	// Logger receives the partition job's failures. nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock, for created and received times the caller leaves
	// zero and for the partition job. nil means time.Now.
	Now func() time.Time
	// PartitionDaysAhead is how many days after today get their events
	// partition created ahead of time. 0 means DefaultPartitionDaysAhead.
	PartitionDaysAhead int
	// PartitionInterval is how often the partition job runs. 0 means
	// DefaultPartitionInterval; negative turns the job off (Open still runs
	// it once), for tests that drive MaintainPartitions themselves.
	PartitionInterval time.Duration
	// PartitionLockTimeout bounds each wait of partition DDL for a lock.
	// 0 means DefaultPartitionLockTimeout.
	PartitionLockTimeout time.Duration
}

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger

	stop      context.CancelFunc
	jobDone   sync.WaitGroup
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to cfg.URL, applies the migrations this build has and the
// database lacks, creates the events partitions of the coming days and
// starts the job that keeps creating them. Close stops it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: Config.URL is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PartitionDaysAhead == 0 {
		cfg.PartitionDaysAhead = DefaultPartitionDaysAhead
	}
	if cfg.PartitionDaysAhead < 0 {
		return nil, fmt.Errorf("postgres: Config.PartitionDaysAhead is %d, must not be negative", cfg.PartitionDaysAhead)
	}
	if cfg.PartitionInterval == 0 {
		cfg.PartitionInterval = DefaultPartitionInterval
	}
	if cfg.PartitionLockTimeout == 0 {
		cfg.PartitionLockTimeout = DefaultPartitionLockTimeout
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, wrap("postgres: connect", err)
	}
	s := &Store{pool: pool, cfg: cfg, log: cfg.Logger}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// Rows land in the default partition if this fails, and the job
	// retries: a node still starts.
	if err := s.MaintainPartitions(ctx, cfg.Now()); err != nil {
		if ctx.Err() != nil {
			pool.Close()
			return nil, err
		}
		s.log.Warn("postgres: create events partitions; retrying later", "err", err)
	}
	jobCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.PartitionInterval > 0 {
		s.jobDone.Add(1)
		go s.partitionJob(jobCtx)
	}
	return s, nil
}

// Close stops the partition job and closes the connections. It waits for
// queries in progress.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.jobDone.Wait()
		s.pool.Close()
	})
	return nil
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.pool.Ping(ctx))
}

// Pool returns the connection pool, for packages that keep their own
// tables in the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) now() time.Time { return s.cfg.Now().UTC() }

// wrap names what failed and, when err means the server cannot be reached,
// adds store.ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unavailable reports whether err says the server cannot be reached or
// cannot serve now (including: not within the caller's deadline), rather
// than that the request was wrong or the caller gave up.
func unavailable(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return true // the server did not answer in time: retry later
	case errors.Is(err, context.Canceled):
		return false // the caller gave up; not the server's fault
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case strings.HasPrefix(pgErr.Code, "53"): // insufficient resources: too many connections, disk full
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutting down, starting up
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err)
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// SQLSTATEs the store branches on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// isNoRows reports whether err is pgx's "no rows".
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
