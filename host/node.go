// Package host assembles one Mesher node: the Wasm runtime and the node's
// processors, ingestion, the HTTP API and live streams, over a store. The
// parts live in subpackages; Node wires them and runs their background
// work. The cluster layer (package cluster) plugs in through the small
// interfaces of Config.
package host

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/metrics"
	"github.com/mesher-dev/mesher/host/processors"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/wasm"
)

// DefaultSyncInterval is how often a node re-reads pipelines and processor
// versions from the store, so that changes made through another node apply.
const DefaultSyncInterval = 2 * time.Second

// streamCloseGrace is how long shutdown waits for stream clients to answer
// their close frame.
const streamCloseGrace = 2 * time.Second

// Publisher receives committed events to push to live streams.
type Publisher interface {
	ingest.Observer
	api.Streams
	// Close says goodbye to every subscriber.
	Close(ctx context.Context) error
}

// Config configures a Node. Store and Runtime are required.
type Config struct {
	NodeName string
	Store    store.Store
	Runtime  *wasm.Runtime
	// Streams publishes committed events and serves WebSocket streams; nil
	// disables streams.
	Streams Publisher
	// Cluster answers GET /api/v1/cluster; nil on a standalone node.
	Cluster api.Cluster
	// AdminTokenHash is the hex SHA-256 of the admin token.
	AdminTokenHash string
	Limits         api.Limits
	// Ingest tunes queues and batching; its Store, Pipelines, Observer,
	// Metrics, Logger and Now are set by the node.
	Ingest       ingest.Config
	SyncInterval time.Duration     // default DefaultSyncInterval
	Metrics      *metrics.Registry // nil: a new registry
	Logger       *slog.Logger      // nil: slog.Default()
	Now          func() time.Time  // nil: time.Now
	// Alerts tunes the alert engine; its Store, Publisher, Logger and Now
	// are set by the node.
	Alerts alert.Config
	// RetentionDays is the retention of projects that set none; 0 means
	// store.DefaultRetentionDays.
	RetentionDays int
	// RetentionInterval is how often retention runs; 0 means
	// DefaultRetentionInterval, negative turns the job off.
	RetentionInterval time.Duration
	// SpikeInterval is how often archived issues are checked for a spike
	// in volume; 0 means DefaultSpikeInterval, negative turns it off.
	SpikeInterval time.Duration
}

// Node is a running Mesher node.
type Node struct {
	cfg       Config
	log       *slog.Logger
	Registry  *processors.Registry
	Spawned   *Spawned
	Ingester  *ingest.Ingester
	triage    *triage
	Alerts    *alert.Engine
	API       *api.API
	Metrics   *metrics.Registry
	stop      context.CancelFunc
	bg        sync.WaitGroup
	storeOK   sync.Mutex
	reachable bool
	sampler   sampler
}

// New assembles a node; Start starts it.
func New(cfg Config) *Node {
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.SpikeInterval == 0 {
		cfg.SpikeInterval = DefaultSpikeInterval
	}
	if cfg.RetentionInterval == 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	n := &Node{cfg: cfg, log: cfg.Logger, Metrics: cfg.Metrics, reachable: true}
	n.Registry = processors.New(cfg.Store, cfg.Runtime, cfg.Logger)
	n.Spawned = NewSpawned(cfg.Runtime, cfg.Now)
	pub, _ := cfg.Streams.(issuePublisher)
	n.triage = newTriage(cfg.Store, pub, cfg.Logger, cfg.Now)
	alc := cfg.Alerts
	alc.Store, alc.Logger, alc.Now = cfg.Store, cfg.Logger.With("component", "alert"), cfg.Now
	if p, ok := cfg.Streams.(alert.Publisher); ok {
		alc.Publisher = p
	}
	n.Alerts = alert.New(alc)
	ic := cfg.Ingest
	ic.Store, ic.Pipelines, ic.Metrics, ic.Logger, ic.Now = cfg.Store, n.Registry, cfg.Metrics, cfg.Logger, cfg.Now
	ic.Observer = n.Alerts
	if cfg.Streams != nil {
		ic.Observer = observers{cfg.Streams, n.Alerts}
	}
	if ic.Filter == nil {
		ic.Filter = n.triage // drops the events of discarded issues
	}
	n.Ingester = ingest.New(ic)
	ac := api.Config{
		Store:          cfg.Store,
		Ingester:       n.Ingester,
		Processors:     n.Registry,
		Cluster:        cfg.Cluster,
		AdminTokenHash: cfg.AdminTokenHash,
		Limits:         cfg.Limits,
		Metrics:        cfg.Metrics,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
		NodeName:       cfg.NodeName,
		RetentionDays:  cfg.RetentionDays,
	}
	if cfg.Streams != nil {
		ac.Streams = cfg.Streams
	}
	ac.Issues = n.triage
	n.API = api.New(ac)
	n.API.SetReady(n.ready)
	n.registerMetrics()
	return n
}

// Handler returns the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.API }

// Start builds every pipeline and starts ingestion and the background
// sync. A pipeline that cannot be built is logged and skipped: the node
// still serves.
func (n *Node) Start(ctx context.Context) error {
	if err := n.Registry.Sync(ctx); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return err
		}
		n.log.Error("some pipelines could not be built at start", "err", err)
	}
	n.Ingester.Start()
	bg, stop := context.WithCancel(context.Background())
	n.stop = stop
	n.bg.Add(1)
	go n.syncLoop(bg)
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.triage.run(bg, n.cfg.SyncInterval, n.cfg.SpikeInterval)
	}()
	n.Alerts.Start()
	if n.cfg.RetentionInterval > 0 {
		n.bg.Add(1)
		go n.retentionLoop(bg)
	}
	return nil
}

func (n *Node) syncLoop(ctx context.Context) {
	defer n.bg.Done()
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := n.cfg.Store.Ping(ctx)
		n.storeOK.Lock()
		n.reachable = err == nil
		n.storeOK.Unlock()
		if err != nil {
			n.log.Warn("store unreachable", "err", err)
			continue
		}
		if err := n.Registry.Sync(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("pipeline sync", "err", err)
		}
	}
}

func (n *Node) ready() bool {
	n.storeOK.Lock()
	defer n.storeOK.Unlock()
	return n.reachable
}

// Shutdown stops ingestion after committing what is queued, closes live
// streams with a close frame, and stops background work. The HTTP server
// must have stopped accepting requests first.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	if err := n.Ingester.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	// After ingestion, so that issues committed last still alert; before
	// streams, so that those alerts still reach them.
	if err := n.Alerts.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if n.cfg.Streams != nil {
		// Subscribers get a close frame; those that do not answer it within
		// the grace period are cut off rather than holding up the exit.
		sctx, cancel := context.WithTimeout(ctx, streamCloseGrace)
		err := n.cfg.Streams.Close(sctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
	}
	if n.stop != nil {
		n.stop()
	}
	n.bg.Wait()
	n.Spawned.Close(ctx)
	return errors.Join(errs...)
}

func (n *Node) registerMetrics() {
	m := n.Metrics
	if s, ok := n.cfg.Streams.(interface {
		Subscribers() int
		Dropped() uint64
	}); ok {
		subs := m.Gauge("mesher_stream_subscribers", "Live-stream subscribers connected to this node.")
		dropped := m.Gauge("mesher_stream_dropped_messages", "Messages dropped for subscribers that could not keep up.")
		m.OnScrape(func() {
			subs.Set(float64(s.Subscribers()))
			dropped.Set(float64(s.Dropped()))
		})
	}
	m.OnScrape(func() {
		for _, sp := range n.Spawned.List() {
			labels := []string{"processor", sp.Name, "for", sp.For, "id", sp.ID}
			m.Gauge("mesher_spawned_batches", "Batches an instance spawned for another node ran.", labels...).Set(float64(sp.Status.Batches))
			m.Gauge("mesher_spawned_events", "Events an instance spawned for another node processed.", labels...).Set(float64(sp.Status.Events))
		}
		for _, s := range n.Registry.Statuses() {
			labels := []string{"processor", s.Name, "version", s.SHA256[:12]}
			st := s.Status
			setCounter := func(name, help string, v float64) { m.Gauge(name, help, labels...).Set(v) }
			setCounter("mesher_processor_batches", "Batches run by a processor version on this node.", float64(st.Batches))
			setCounter("mesher_processor_failed_batches", "Batches a processor version failed.", float64(st.FailedBatches))
			setCounter("mesher_processor_events", "Events given to a processor version.", float64(st.Events))
			setCounter("mesher_processor_skipped_events", "Events passed on unprocessed because the processor was quarantined.", float64(st.SkippedEvents))
			setCounter("mesher_processor_busy_seconds", "Time instances of a processor version spent on batches.", st.BusySeconds)
			setCounter("mesher_processor_instances", "Live instances of a processor version.", float64(st.Instances))
			q := 0.0
			if st.State == wasm.Quarantined {
				q = 1
			}
			setCounter("mesher_processor_quarantined", "1 while a processor version is quarantined.", q)
		}
	})
}
