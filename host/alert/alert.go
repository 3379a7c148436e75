// Package alert fires a project's alert rules and carries out their
// actions.
//
// Rules whose condition is new_issue or regression fire from committed
// events: the Engine is an ingest.Observer, told of every committed batch,
// and the store's commit says which event created or reopened an issue —
// once, on the node that committed it. Threshold and rate_of_change rules
// are evaluated on a schedule, once per period (Config.Interval) across
// the cluster: every node's Engine claims the period's rules with a
// compare-and-set in the store (store.Alerts.ClaimAlertRules), so each
// rule is evaluated by one node per period, and firing is a second
// compare-and-set that honours the rule's cooldown (FireAlert), so that
// not even two event-driven fires on two nodes break it.
//
// A fired alert is stored as active, published on the project's live
// stream as {"type":"alert",…} when the rule says so, and POSTed to the
// rule's webhook, signed (see Sign), retried with exponential backoff, each
// attempt recorded in the delivery log.
package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// Defaults of Config.
const (
	// DefaultInterval: a threshold rule notices a burst within half a
	// minute, and a node runs a cheap claim twice a minute.
	DefaultInterval = 30 * time.Second
	// DefaultWebhookAttempts: five tries over about fifteen seconds of
	// backoff ride out a receiver's restart.
	DefaultWebhookAttempts = 5
	// DefaultWebhookBackoff is the wait after the first failed attempt;
	// it doubles after each one.
	DefaultWebhookBackoff = time.Second
	// DefaultWebhookTimeout bounds one attempt.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultQueue bounds the new and reopened issues waiting for their
	// rules; past it they are dropped and counted, so that ingestion never
	// waits for alerting.
	DefaultQueue = 10_000
	// maxBackoff caps one wait between attempts.
	maxBackoff = time.Minute
	// maxDeliveries bounds the webhook deliveries in flight.
	maxDeliveries = 16
)

// Store is what the Engine needs from the store.
type Store interface {
	store.Alerts
	Project(ctx context.Context, idOrSlug string) (*store.Project, error)
}

// Publisher publishes a message on a project's live stream, to its
// subscribers on every node. It must not block.
type Publisher interface {
	Broadcast(m stream.Message)
}

// Config configures an Engine. Store is required.
type Config struct {
	Store Store
	// Publisher carries stream actions; nil skips them.
	Publisher Publisher
	// Interval is the evaluation period of threshold and rate_of_change
	// rules. 0 means DefaultInterval. All nodes of a cluster should use
	// the same one.
	Interval time.Duration
	// Client sends webhooks. nil means a client with a timeout of
	// DefaultWebhookTimeout per attempt.
	Client *http.Client
	// WebhookAttempts, WebhookBackoff: 0 means the defaults.
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// Queue bounds the issues waiting for event-driven rules. 0 means
	// DefaultQueue.
	Queue  int
	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
}

// Engine fires alert rules. Start its loops with Start, stop them with
// Close; Committed and Evaluate are safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	notes chan note

	mu      sync.Mutex
	dropped int64 // issues dropped because the queue was full

	// stop ends the loops; ctx bounds the store calls and deliveries,
	// and is canceled once the loops have ended.
	stop       chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	loops      sync.WaitGroup
	deliveries sync.WaitGroup
	sem        chan struct{}
	startOnce  sync.Once
	closeOnce  sync.Once
}

var _ ingest.Observer = (*Engine)(nil)

// New returns an Engine; Start starts it.
func New(cfg Config) *Engine {
	if cfg.Store == nil {
		panic("alert: Config.Store is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = DefaultWebhookAttempts
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = DefaultWebhookBackoff
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{cfg: cfg, log: cfg.Logger, notes: make(chan note, cfg.Queue), stop: make(chan struct{}),
		ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxDeliveries)}
}

// Start starts the scheduled evaluation and the worker that matches new
// and reopened issues against rules.
func (e *Engine) Start() {
	e.startOnce.Do(func() {
		e.loops.Add(2)
		go e.schedule()
		go e.work()
	})
}

// Close stops the schedule, lets the worker match the issues already
// queued (so that an issue committed before shutdown still alerts), then
// cancels the webhook deliveries in flight — each records its last
// attempt as canceled; they are not resumed after a restart — and waits
// for them. If ctx ends first, it cancels at once.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() { close(e.stop) })
	loops := make(chan struct{})
	go func() {
		e.loops.Wait()
		close(loops)
	}()
	var err error
	select {
	case <-loops:
	case <-ctx.Done():
		err = fmt.Errorf("alert: close: %w", ctx.Err())
	}
	e.cancel()
	<-loops
	e.deliveries.Wait()
	return err
}

// Wait waits for the webhook deliveries in flight: for tests, and for a
// graceful stop.
func (e *Engine) Wait() { e.deliveries.Wait() }

// Dropped returns how many new or reopened issues were not matched against
// rules because the queue was full.
func (e *Engine) Dropped() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

// schedule runs Evaluate once per period, just after each period starts.
func (e *Engine) schedule() {
	defer e.loops.Done()
	iv := e.cfg.Interval
	for {
		now := e.cfg.Now()
		wait := now.Truncate(iv).Add(iv).Sub(now) + iv/100 // a little past the boundary
		t := time.NewTimer(wait)
		select {
		case <-e.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if err := e.Evaluate(e.ctx, e.cfg.Now()); err != nil && e.ctx.Err() == nil {
			e.log.Error("alert: evaluate scheduled rules", "err", err)
		}
	}
}

// Evaluate evaluates the scheduled rules of the period that holds now,
// those this node claims (each is claimed by one node per period), and
// fires those whose condition holds at now. The Engine calls it once per
// period; tests call it with the time they want.
func (e *Engine) Evaluate(ctx context.Context, now time.Time) error {
	period := now.Truncate(e.cfg.Interval).Unix()
	rules, err := e.cfg.Store.ClaimAlertRules(ctx, period)
	if err != nil {
		return fmt.Errorf("claim rules for period %d: %w", period, err)
	}
	var errs []error
	for _, r := range rules {
		a, err := e.measure(ctx, r, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.ID, err))
			continue
		}
		if a != nil {
			if err := e.fire(ctx, r, a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// measure evaluates a scheduled rule at now and returns the alert to fire,
// or nil.
//
// threshold: the events received in [now − W, now) that match the rule's
// filters number more than Count.
//
// rate_of_change: with cur those events and prev the ones of the window
// before, [now − 2W, now − W): cur ≥ MinCount and cur ≥ Factor × prev.
// A window after an empty one fires on MinCount events.
func (e *Engine) measure(ctx context.Context, r *store.AlertRule, now time.Time) (*store.Alert, error) {
	c := r.Condition
	w := time.Duration(c.WindowMinutes) * time.Minute
	count := func(from, to time.Time) (int64, error) {
		return e.cfg.Store.CountEvents(ctx, store.EventCount{ProjectID: r.ProjectID, From: from, To: to, Level: c.Level, Tags: c.Tags})
	}
	cur, err := count(now.Add(-w), now)
	if err != nil {
		return nil, err
	}
	var title string
	details := map[string]any{"window_minutes": c.WindowMinutes, "count": cur, "from": now.Add(-w).UTC(), "to": now.UTC()}
	switch c.Type {
	case store.ConditionThreshold:
		if cur <= c.Count {
			return nil, nil
		}
		details["threshold"] = c.Count
		title = fmt.Sprintf("%d events in %d min, more than %d", cur, c.WindowMinutes, c.Count)
	case store.ConditionRateOfChange:
		if cur < c.MinCount {
			return nil, nil
		}
		prev, err := count(now.Add(-2*w), now.Add(-w))
		if err != nil {
			return nil, err
		}
		if float64(cur) < c.Factor*float64(prev) {
			return nil, nil
		}
		details["previous_count"], details["factor"], details["min_count"] = prev, c.Factor, c.MinCount
		if prev > 0 {
			details["ratio"] = float64(cur) / float64(prev)
		}
		title = fmt.Sprintf("%d events in %d min, up from %d in the %d min before", cur, c.WindowMinutes, prev, c.WindowMinutes)
	default:
		return nil, nil
	}
	if c.Level != "" {
		details["level"] = c.Level
	}
	if len(c.Tags) > 0 {
		details["tags"] = c.Tags
	}
	b, err := json.Marshal(details)
	if err != nil {
		return nil, err
	}
	return &store.Alert{ID: ingest.NewUUID(), RuleID: r.ID, Title: title, Details: b, FiredAt: now}, nil
}

// fire stores a if the rule's cooldown allows and carries out the rule's
// actions.
func (e *Engine) fire(ctx context.Context, r *store.AlertRule, a *store.Alert) error {
	ok, err := e.cfg.Store.FireAlert(ctx, a)
	if err != nil {
		return fmt.Errorf("fire rule %s: %w", r.ID, err)
	}
	if !ok {
		return nil // cooling down, disabled or deleted meanwhile
	}
	e.log.Info("alert fired", "rule", r.ID, "project", r.ProjectID, "alert", a.ID, "title", a.Title)
	if r.Actions.Stream && e.cfg.Publisher != nil {
		if m, err := stream.NewMessage(a.ProjectID, stream.TypeAlert, alertMessage{Action: "fired", Alert: a}); err == nil {
			e.cfg.Publisher.Broadcast(m)
		} else {
			e.log.Error("alert: encode stream message", "alert", a.ID, "err", err)
		}
	}
	if r.Actions.WebhookURL != "" {
		e.deliver(r, a)
	}
	return nil
}

// alertMessage is the payload of {"type":"alert",…} on a live stream.
type alertMessage struct {
	Action string       `json:"action"`
	Alert  *store.Alert `json:"alert"`
}
