package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mesher-dev/mesher/abi"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// State is a processor's health.
type State string

// Processor states.
const (
	// Healthy processors run every batch.
	Healthy State = "healthy"
	// Quarantined processors are skipped until their quarantine ends.
	Quarantined State = "quarantined"
	// Probation follows a quarantine: the next batch runs; success makes
	// the processor healthy, failure quarantines it again.
	Probation State = "probation"
)

// Processor runs one module under a name and limits, with its own pool of
// instances and its own health. It is safe for concurrent use.
type Processor struct {
	name   string
	mod    *Module
	rt     *Runtime
	limits Limits
	log    *slog.Logger

	slots chan struct{} // one per instance allowed to exist

	mu          sync.Mutex
	idle        []*instance
	live        int
	closed      bool
	state       State
	failures    []time.Time // within the failure window
	until       time.Time   // end of quarantine
	lastErr     string
	lastErrAt   time.Time
	quarantines int

	batches   atomic.Uint64
	events    atomic.Uint64
	failed    atomic.Uint64
	skipped   atomic.Uint64
	busyNanos atomic.Int64
}

type instance struct {
	mod     api.Module
	process api.Function
	stderr  *logWriter
	uses    int
}

// NewProcessor returns a processor running m. The memory cap is the one m
// was loaded with; other zero fields of limits mean the runtime's limits.
func (r *Runtime) NewProcessor(name string, m *Module, limits Limits) *Processor {
	l := limits.or(r.cfg.Limits)
	l.MemoryBytes = uint64(m.pages) * 65536
	return &Processor{
		name:   name,
		mod:    m,
		rt:     r,
		limits: l,
		log:    r.log.With("processor", name, "module", m.SHA256[:12]),
		slots:  make(chan struct{}, l.Instances),
		state:  Healthy,
	}
}

// Name returns the processor's name.
func (p *Processor) Name() string { return p.name }

// Module returns the module the processor runs.
func (p *Processor) Module() *Module { return p.mod }

// Limits returns the processor's limits, defaults filled in.
func (p *Processor) Limits() Limits { return p.limits }

// Warm starts one instance ahead of the first batch.
func (p *Processor) Warm(ctx context.Context) error {
	inst, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	p.release(inst, true)
	return nil
}

// Process runs one batch: input holds count records encoded as in abi
// (FieldEvent and optionally FieldFingerprint and FieldTitle), settings the
// processor's configuration (nil for the manifest's defaults). It returns
// the output records, validated: indexes are below count and fields well
// formed. A failed batch returns a *ProcessError; the instance is discarded.
func (p *Processor) Process(ctx context.Context, input []byte, count int, settings *Settings) ([]abi.Record, error) {
	if err := p.admit(); err != nil {
		p.skipped.Add(uint64(count))
		return nil, err
	}
	if settings == nil {
		settings = p.mod.defaults()
	}
	start := time.Now()
	inst, err := p.acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &ProcessError{Processor: p.name, Reason: ReasonCanceled, Err: err}
		}
		p.recordFailure(err)
		return nil, &ProcessError{Processor: p.name, Reason: ReasonStart, Err: err}
	}
	c := &call{p: p, settings: settings, input: input, count: uint32(count), process: true}
	status, reason, err := p.invoke(ctx, inst, c, inst.process, uint64(count), uint64(len(input)))
	if err == nil && status != 0 {
		reason, err = ReasonStatus, fmt.Errorf("mesher_process returned status %d", status)
	}
	p.busyNanos.Add(int64(time.Since(start)))
	p.batches.Add(1)
	p.events.Add(uint64(count))
	p.release(inst, err == nil)
	if err != nil {
		pe := &ProcessError{Processor: p.name, Reason: reason, Err: err}
		if reason != ReasonCanceled {
			p.failed.Add(1)
			p.recordFailure(pe)
			p.log.Warn("batch failed; instance discarded", "reason", reason, "err", err)
		}
		return nil, pe
	}
	p.recordSuccess()
	return c.records, nil
}

// errDeadline is the cause of a call's context when its deadline passes.
var errDeadline = errors.New("deadline passed")

// invoke calls fn on inst with c in the context, bounded by the deadline,
// which the guest notices at its next yield (see hostYield).
func (p *Processor) invoke(ctx context.Context, inst *instance, c *call, fn api.Function, params ...uint64) (uint32, Reason, error) {
	inst.uses++
	ctx, cancel := context.WithTimeoutCause(context.WithValue(ctx, callKey{}, c), p.limits.Timeout, errDeadline)
	defer cancel()
	res, err := fn.Call(ctx, params...)
	switch {
	case err == nil && len(res) > 0:
		return api.DecodeU32(res[0]), "", nil
	case err == nil:
		return 0, "", nil
	case c.err != nil:
		return 0, c.reason, c.err
	case ctx.Err() != nil && p.rt.cfg.Interrupt == InterruptContext:
		if context.Cause(ctx) == errDeadline {
			return 0, ReasonTimeout, fmt.Errorf("exceeded its %s deadline", p.limits.Timeout)
		}
		return 0, ReasonCanceled, fmt.Errorf("canceled: %w", ctx.Err())
	}
	return 0, p.classify(inst, err), p.explain(inst, err)
}

// classify tells a guest running out of memory from other traps: a Go
// guest exits after "out of memory", a hand-written one traps when
// memory.grow fails at the cap.
func (p *Processor) classify(inst *instance, err error) Reason {
	if strings.Contains(inst.stderr.last, "out of memory") {
		return ReasonMemoryLimit
	}
	if mem := inst.mod.Memory(); mem != nil && uint64(mem.Size())+(1<<20) > p.limits.MemoryBytes {
		return ReasonMemoryLimit
	}
	return ReasonTrap
}

func (p *Processor) explain(inst *instance, err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "\nwasm stack trace"); i >= 0 {
		msg = msg[:i]
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		msg = fmt.Sprintf("guest exited with code %d", exit.ExitCode())
	}
	inst.stderr.flush()
	if inst.stderr.last != "" {
		msg += " (last stderr line: " + inst.stderr.last + ")"
	}
	return errors.New(msg)
}

func (p *Processor) acquire(ctx context.Context) (*instance, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an instance: %w", ctx.Err())
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, errors.New("processor closed")
	}
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.live++
	p.mu.Unlock()
	inst, err := p.start(ctx)
	if err != nil {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		<-p.slots
		return nil, err
	}
	return inst, nil
}

func (p *Processor) release(inst *instance, reuse bool) {
	p.mu.Lock()
	if reuse && !p.closed {
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
	} else {
		p.live--
		p.mu.Unlock()
		inst.mod.Close(context.Background())
	}
	<-p.slots
}

// start instantiates the module and runs its initializer under the deadline.
func (p *Processor) start(ctx context.Context) (*instance, error) {
	stdout := &logWriter{log: p.log, level: slog.LevelInfo}
	stderr := &logWriter{log: p.log, level: slog.LevelWarn}
	mod, err := p.rt.engine.InstantiateModule(experimental.WithMemoryAllocator(ctx, allocator), p.mod.compiled, p.rt.moduleConfig(stdout, stderr))
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	inst := &instance{mod: mod, process: mod.ExportedFunction(abi.ExportProcess), stderr: stderr}
	if p.mod.hasInit {
		c := &call{p: p, settings: p.mod.defaults()}
		if _, _, err := p.invoke(ctx, inst, c, mod.ExportedFunction(abi.ExportInitialize)); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("%s: %w", abi.ExportInitialize, err)
		}
	}
	return inst, nil
}

// Close discards idle instances; instances in use are discarded when
// released. Later batches fail.
func (p *Processor) Close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.live -= len(idle)
	p.mu.Unlock()
	for _, inst := range idle {
		inst.mod.Close(ctx)
	}
}

// Health.

func (p *Processor) admit() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != Quarantined {
		return nil
	}
	if p.rt.now().Before(p.until) {
		return &ProcessError{Processor: p.name, Reason: ReasonQuarantined,
			Err: fmt.Errorf("%w until %s (last error: %s)", ErrQuarantined, p.until.UTC().Format(time.RFC3339), p.lastErr)}
	}
	p.state = Probation
	p.log.Info("quarantine over; next batch is a trial")
	return nil
}

func (p *Processor) recordSuccess() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == Probation {
		p.state = Healthy
		p.failures = p.failures[:0]
		p.log.Info("processor recovered from quarantine")
	}
}

func (p *Processor) recordFailure(err error) {
	now := p.rt.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr, p.lastErrAt = err.Error(), now
	cut := now.Add(-p.limits.FailureWindow)
	kept := p.failures[:0]
	for _, t := range p.failures {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	p.failures = append(kept, now)
	if p.state == Probation || len(p.failures) >= p.limits.FailureThreshold {
		p.state = Quarantined
		p.until = now.Add(p.limits.Quarantine)
		p.quarantines++
		p.log.Error("processor quarantined", "failures", len(p.failures), "window", p.limits.FailureWindow,
			"until", p.until, "last_error", p.lastErr)
	}
}

// Reset lifts a quarantine and forgets recent failures.
func (p *Processor) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = Healthy
	p.failures = p.failures[:0]
	p.until = time.Time{}
}

// Status is a processor's health and counters.
type Status struct {
	State            State     `json:"state"`
	RecentFailures   int       `json:"recent_failures"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
	QuarantinedUntil time.Time `json:"quarantined_until,omitzero"`
	Quarantines      int       `json:"quarantines"`
	Instances        int       `json:"instances"`
	IdleInstances    int       `json:"idle_instances"`
	Batches          uint64    `json:"batches"`
	Events           uint64    `json:"events"`
	FailedBatches    uint64    `json:"failed_batches"`
	SkippedEvents    uint64    `json:"skipped_events"`
	BusySeconds      float64   `json:"busy_seconds"`
}

// Status reports the processor's health and counters.
func (p *Processor) Status() Status {
	p.mu.Lock()
	s := Status{
		State:          p.state,
		RecentFailures: len(p.failures),
		LastError:      p.lastErr,
		LastErrorAt:    p.lastErrAt,
		Quarantines:    p.quarantines,
		Instances:      p.live,
		IdleInstances:  len(p.idle),
	}
	if p.state == Quarantined {
		s.QuarantinedUntil = p.until
	}
	p.mu.Unlock()
	s.Batches = p.batches.Load()
	s.Events = p.events.Load()
	s.FailedBatches = p.failed.Load()
	s.SkippedEvents = p.skipped.Load()
	s.BusySeconds = time.Duration(p.busyNanos.Load()).Seconds()
	return s
}

// Settings is a processor's configuration, checked against its manifest,
// with declared defaults filled in.
type Settings struct {
	raw  []byte
	keys map[string]json.RawMessage
}

func (s *Settings) lookup(key string) ([]byte, bool) {
	if s == nil {
		if key == "" {
			return []byte("{}"), true
		}
		return nil, false
	}
	if key == "" {
		return s.raw, true
	}
	v, ok := s.keys[key]
	return v, ok
}

// Raw returns the configuration as a JSON object, defaults included.
func (s *Settings) Raw() []byte { return s.raw }

// Settings checks a configuration against the module's manifest and fills
// in defaults.
func (m *Module) Settings(cfg map[string]json.RawMessage) (*Settings, error) {
	if err := m.Manifest.CheckConfig(cfg); err != nil {
		return nil, err
	}
	s := &Settings{keys: make(map[string]json.RawMessage, len(m.Manifest.Config))}
	for _, k := range m.Manifest.Config {
		if len(k.Default) > 0 {
			s.keys[k.Key] = k.Default
		}
	}
	for k, v := range cfg {
		s.keys[k] = v
	}
	raw, err := json.Marshal(s.keys)
	if err != nil {
		return nil, fmt.Errorf("processor %s: config: %w", m.Manifest.Name, err)
	}
	s.raw = raw
	return s, nil
}

// DefaultSettings returns the configuration of a processor given none: the
// manifest's defaults.
func (m *Module) DefaultSettings() *Settings { return m.defaults() }

func (m *Module) defaults() *Settings {
	m.defaultsOnce.Do(func() {
		s, err := m.Settings(nil)
		if err != nil {
			// A required key without a value: the guest sees no config.
			s = &Settings{raw: []byte("{}"), keys: map[string]json.RawMessage{}}
		}
		m.defaultSettings = s
	})
	return m.defaultSettings
}
