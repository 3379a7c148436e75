// Package ingest turns accepted JSON events into stored ones: it validates
// and normalizes them, limits each project's rate, queues them with a
// bound, runs each project's pipeline over batches, groups commits across
// concurrent requests, and answers each request only once its events are
// committed.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mesher-dev/mesher/host/metrics"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/store"
)

// Committer stores processed events; store.Store implements it. See
// store.Events.Commit for the contract.
type Committer interface {
	Commit(ctx context.Context, events []*store.Event) ([]store.Committed, error)
}

// Pipelines returns the pipeline a project's next batch runs through, or
// nil for none. It is called for every batch, so that a changed pipeline
// applies to the next batch; it must be fast and safe for concurrent use.
type Pipelines interface {
	Pipeline(projectID string) *pipeline.Pipeline
}

// Observer learns of events once they are committed, in commit order. It is
// called from the committing goroutine and must not block.
type Observer interface {
	Committed(events []*store.Event, results []store.Committed)
}

// Filter may drop processed events before they are stored, such as events
// of issues a user discarded. It must be fast and safe for concurrent use.
type Filter interface {
	Keep(e *store.Event) bool
}

// Defaults of Config.
const (
	DefaultMaxQueued     = 50_000
	DefaultMaxBatch      = 1_000
	DefaultMaxCommit     = 5_000
	DefaultCommitters    = 1
	DefaultCommitTimeout = 10 * time.Second
)

// Errors of Submit.
var (
	// ErrBusy: the queue is full; the client should retry later (503).
	ErrBusy = errors.New("ingestion queue is full")
	// ErrClosed: the node is shutting down (503).
	ErrClosed = errors.New("ingestion is shutting down")
)

// Config configures an Ingester. Zero fields mean the defaults.
type Config struct {
	Store     Committer // required
	Pipelines Pipelines // nil: no processors
	Observer  Observer  // nil: nobody is told
	Filter    Filter    // nil: keep every event
	// MaxQueued bounds the events accepted but not yet committed (default
	// 50,000); past it Submit returns ErrBusy instead of growing memory.
	MaxQueued int
	// MaxBatch bounds the events a worker runs through pipelines at once
	// (default 1,000).
	MaxBatch int
	// MaxCommit bounds the events of one commit (default 5,000).
	MaxCommit int
	// Workers run pipelines (default GOMAXPROCS) while Committers commit
	// (default 1: concurrent commits of one store contend for the same
	// issue and count rows, so a second committer mostly waits; see
	// RATIONALE.md).
	Workers, Committers int
	// CommitTimeout bounds one commit (default 10 s).
	CommitTimeout time.Duration
	Metrics       *metrics.Registry // nil: a private registry
	Logger        *slog.Logger      // nil: slog.Default()
	Now           func() time.Time  // nil: time.Now
}

// Ingester queues, processes and commits events.
type Ingester struct {
	cfg     Config
	log     *slog.Logger
	queue   chan *submission
	ready   chan *processed
	queued  atomic.Int64
	mu      sync.RWMutex // held for reading while enqueuing
	closed  bool
	workers sync.WaitGroup
	commits sync.WaitGroup

	mAccepted, mDuplicates, mDropped, mFiltered *metrics.Counter
	mBusy, mFailed                              *metrics.Counter
	mBatch, mCommitSeconds, mPipelineSeconds    *metrics.Histogram
	mQueue                                      *metrics.Gauge
}

// submission is one request's events waiting to be committed.
type submission struct {
	project string
	events  []*Normalized
	done    chan struct{}
	err     error
}

// processed is a worker's output: events to commit for some submissions.
type processed struct {
	events []*store.Event
	subs   []*submission
}

// New returns an ingester; Start starts its goroutines.
func New(cfg Config) *Ingester {
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxCommit <= 0 {
		cfg.MaxCommit = DefaultMaxCommit
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Committers <= 0 {
		cfg.Committers = DefaultCommitters
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	in := &Ingester{
		cfg:   cfg,
		log:   cfg.Logger,
		queue: make(chan *submission, cfg.MaxQueued),
		ready: make(chan *processed, cfg.Workers),
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	m := cfg.Metrics
	in.mAccepted = m.Counter("mesher_events_stored_total", "Events committed to the store.")
	in.mDuplicates = m.Counter("mesher_events_duplicate_total", "Events not stored again because their id was already stored.")
	in.mDropped = m.Counter("mesher_events_dropped_total", "Events dropped on purpose after acceptance.", "reason", "processor")
	in.mFiltered = m.Counter("mesher_events_dropped_total", "Events dropped on purpose after acceptance.", "reason", "discarded_issue")
	in.mBusy = m.Counter("mesher_events_rejected_total", "Events refused, by reason.", "reason", "queue_full")
	in.mFailed = m.Counter("mesher_events_rejected_total", "Events refused, by reason.", "reason", "commit_failed")
	in.mBatch = m.Histogram("mesher_commit_batch_events", "Events per commit.", metrics.SizeBuckets)
	in.mCommitSeconds = m.Histogram("mesher_commit_seconds", "Time to commit a batch.", metrics.LatencyBuckets)
	in.mPipelineSeconds = m.Histogram("mesher_pipeline_seconds", "Time to run a project's pipeline over a batch.", metrics.LatencyBuckets)
	in.mQueue = m.Gauge("mesher_queue_events", "Events accepted and not yet committed.")
	return in
}

// Start starts the workers and committers.
func (in *Ingester) Start() {
	for i := 0; i < in.cfg.Workers; i++ {
		in.workers.Add(1)
		go in.work()
	}
	for i := 0; i < in.cfg.Committers; i++ {
		in.commits.Add(1)
		go in.commit()
	}
	go func() {
		in.workers.Wait()
		close(in.ready)
	}()
}

// Stored returns the events committed so far, duplicates excluded.
func (in *Ingester) Stored() uint64 { return in.mAccepted.Value() }

// Queued returns the events accepted and not yet committed.
func (in *Ingester) Queued() int { return int(in.queued.Load()) }

// Submit queues a project's normalized events and waits until they are
// committed. It returns ErrBusy at once if the queue is full, ErrClosed
// during shutdown, the commit's error if it failed (nothing was stored),
// or ctx's error if the caller gave up waiting (the events may still be
// stored).
func (in *Ingester) Submit(ctx context.Context, project string, events []*Normalized) error {
	n := int64(len(events))
	if n == 0 {
		return nil
	}
	in.mu.RLock()
	if in.closed {
		in.mu.RUnlock()
		return ErrClosed
	}
	if in.queued.Add(n) > int64(in.cfg.MaxQueued) {
		in.queued.Add(-n)
		in.mu.RUnlock()
		in.mBusy.Add(uint64(n))
		return ErrBusy
	}
	s := &submission{project: project, events: events, done: make(chan struct{})}
	in.queue <- s // never blocks: capacity MaxQueued ≥ queued submissions
	in.mu.RUnlock()
	in.mQueue.Set(float64(in.queued.Load()))
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, then processes and commits everything
// queued, or gives up when ctx ends.
func (in *Ingester) Close(ctx context.Context) error {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.queue)
	}
	in.mu.Unlock()
	done := make(chan struct{})
	go func() {
		in.commits.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingestion: %d events not committed at shutdown: %w", in.queued.Load(), ctx.Err())
	}
}

// work takes submissions, runs their pipelines and hands the results to
// the committers.
func (in *Ingester) work() {
	defer in.workers.Done()
	for s := range in.queue {
		subs, n := []*submission{s}, len(s.events)
	gather:
		for n < in.cfg.MaxBatch {
			select {
			case more, ok := <-in.queue:
				if !ok {
					break gather
				}
				subs = append(subs, more)
				n += len(more.events)
			default:
				break gather
			}
		}
		p, failed := in.process(subs)
		for _, f := range failed {
			in.finish(f, errors.New("pipeline stopped"))
		}
		if p != nil {
			in.ready <- p
		}
	}
}

// process runs each project's pipeline once over all of its events in the
// batch and finalizes the results.
func (in *Ingester) process(subs []*submission) (*processed, []*submission) {
	byProject := map[string][]*submission{}
	var order []string
	for _, s := range subs {
		if _, ok := byProject[s.project]; !ok {
			order = append(order, s.project)
		}
		byProject[s.project] = append(byProject[s.project], s)
	}
	received := in.cfg.Now().UTC()
	out := &processed{}
	var failed []*submission
	for _, project := range order {
		group := byProject[project]
		var events []pipeline.Event
		origs := map[string]*Normalized{}
		for _, s := range group {
			for _, e := range s.events {
				events = append(events, e.Event)
				origs[e.ID] = e
			}
		}
		inputs := len(events)
		if in.cfg.Pipelines != nil {
			if p := in.cfg.Pipelines.Pipeline(project); p != nil && len(p.Steps) > 0 {
				start := time.Now()
				var err error
				events, err = p.Run(context.Background(), events)
				in.mPipelineSeconds.Observe(time.Since(start).Seconds())
				if err != nil {
					failed = append(failed, group...)
					continue
				}
			}
		}
		kept, filtered := 0, 0
		for i := range events {
			e := &events[i]
			var orig *Normalized
			if o, ok := origs[e.ID]; ok && len(o.Body) == len(e.Body) && (len(e.Body) == 0 || &o.Body[0] == &e.Body[0]) {
				orig = o // body unchanged: reuse what Normalize read
			}
			se, err := Finalize(e, orig, project, received)
			if err != nil {
				in.log.Error("cannot finalize a processed event", "project", project, "event", e.ID, "err", err)
				continue
			}
			if in.cfg.Filter != nil && !in.cfg.Filter.Keep(se) {
				in.mFiltered.Inc()
				filtered++
				continue
			}
			out.events = append(out.events, se)
			kept++
		}
		// What the pipeline dropped, or could not be finalized; filtered
		// events have their own reason.
		if dropped := inputs - kept - filtered; dropped > 0 {
			in.mDropped.Add(uint64(dropped))
		}
		out.subs = append(out.subs, group...)
	}
	if len(out.subs) == 0 {
		return nil, failed
	}
	return out, failed
}

// commit groups processed batches into commits.
func (in *Ingester) commit() {
	defer in.commits.Done()
	for p := range in.ready {
		batch := []*processed{p}
		n := len(p.events)
	gather:
		for n < in.cfg.MaxCommit {
			select {
			case more, ok := <-in.ready:
				if !ok {
					break gather
				}
				batch = append(batch, more)
				n += len(more.events)
			default:
				break gather
			}
		}
		events := make([]*store.Event, 0, n)
		for _, b := range batch {
			events = append(events, b.events...)
		}
		err := in.store(events)
		for _, b := range batch {
			for _, s := range b.subs {
				in.finish(s, err)
			}
		}
	}
}

func (in *Ingester) store(events []*store.Event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.CommitTimeout)
	defer cancel()
	start := time.Now()
	results, err := in.cfg.Store.Commit(ctx, events)
	in.mCommitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		in.log.Error("commit failed; the batch's requests get an error", "events", len(events), "err", err)
		in.mFailed.Add(uint64(len(events)))
		return fmt.Errorf("commit: %w", err)
	}
	in.mBatch.Observe(float64(len(events)))
	dups := 0
	for _, r := range results {
		if r.Duplicate {
			dups++
		}
	}
	in.mAccepted.Add(uint64(len(events) - dups))
	in.mDuplicates.Add(uint64(dups))
	if in.cfg.Observer != nil {
		in.cfg.Observer.Committed(events, results)
	}
	return nil
}

func (in *Ingester) finish(s *submission, err error) {
	s.err = err
	in.queued.Add(-int64(len(s.events)))
	in.mQueue.Set(float64(in.queued.Load()))
	close(s.done)
}
