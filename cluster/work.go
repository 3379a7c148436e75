package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// instancesInterval is how often a node republishes its instances to the
// registry: often enough that a spawn or a retirement is visible within a
// second; an unchanged set costs a comparison.
const instancesInterval = 200 * time.Millisecond

// spawnTimeout bounds one remote spawn, compile included.
const spawnTimeout = 30 * time.Second

// Work shares a node's processing with its peers: it samples load,
// publishes it and the node's instances, places instances of busy
// processors on less loaded peers through a Planner, and forwards a share
// of batches to them. When a peer dies, its placements are dropped at once
// (in-flight forwards fail and their batches are processed locally) and
// replaced on another peer if one qualifies.
type Work struct {
	c       *Cluster
	h       Host
	cfg     PlacementConfig
	planner *Planner

	mu     sync.Mutex // held while changing placements
	placed atomic.Pointer[[]Placement]
	rr     atomic.Uint64
	cancel context.CancelFunc
	done   chan struct{}
	unsub  func()

	forwarded, fallbacks atomic.Uint64
}

// StartWork starts sharing work for host h. Stop ends it.
func (c *Cluster) StartWork(h Host, cfg PlacementConfig) *Work {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Work{c: c, h: h, cfg: cfg.withDefaults(), cancel: cancel, done: make(chan struct{})}
	w.planner = NewPlanner(w.cfg)
	empty := []Placement{}
	w.placed.Store(&empty)
	w.unsub = c.Subscribe(func(e Event) {
		if e.Kind == MemberFailed || e.Kind == MemberLeft {
			go w.lost(ctx, e.Member.Name) // spawning takes time; callbacks must not block
		}
	})
	go w.loop(ctx)
	return w
}

// Placements returns the instances peers run for this node.
func (w *Work) Placements() []Placement { return slices.Clone(*w.placed.Load()) }

// Stats returns how many batches were forwarded and how many fell back to
// local processing after a failed forward.
func (w *Work) Stats() (forwarded, fallbacks uint64) { return w.forwarded.Load(), w.fallbacks.Load() }

// Stop retires every placement and stops the loop.
func (w *Work) Stop(ctx context.Context) {
	w.unsub()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range *w.placed.Load() {
		if err := w.c.Retire(ctx, p.Peer, p.ID); err != nil {
			w.c.log.Warn("retire at shutdown", "peer", p.Peer, "processor", p.Processor, "err", err)
		}
	}
	empty := []Placement{}
	w.placed.Store(&empty)
}

func (w *Work) loop(ctx context.Context) {
	defer close(w.done)
	sample := time.NewTicker(w.cfg.SampleInterval)
	defer sample.Stop()
	publish := time.NewTicker(instancesInterval)
	defer publish.Stop()
	w.publishInstances()
	for {
		select {
		case <-ctx.Done():
			return
		case <-publish.C:
			w.publishInstances()
		case <-sample.C:
			w.round(ctx)
		}
	}
}

func (w *Work) publishInstances() {
	if err := w.c.SetLocalInstances(w.h.Instances()); err != nil {
		w.c.log.Warn("publish instances", "err", err)
	}
}

// round samples load and carries out the planner's moves.
func (w *Work) round(ctx context.Context) {
	load, procs := w.h.Sample()
	w.c.SetLoad(load)
	var peers []Member
	for _, m := range w.c.Members() {
		if m.Name != w.c.Name() {
			peers = append(peers, m)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	actions := w.planner.Plan(w.c.cfg.Now(), load, peers, procs, *w.placed.Load())
	for _, a := range actions {
		if a.Spawn {
			w.spawnLocked(ctx, a.Processor, a.SHA256, a.Peer, "load")
			continue
		}
		if err := w.c.Retire(ctx, a.Retire.Peer, a.Retire.ID); err != nil {
			w.c.log.Warn("retire placement", "peer", a.Retire.Peer, "processor", a.Processor, "err", err)
		}
		w.removeLocked(func(p Placement) bool { return p.ID == a.Retire.ID && p.Peer == a.Retire.Peer })
		w.c.log.Info("retired a placement: load is low again", "processor", a.Processor, "peer", a.Retire.Peer)
	}
}

func (w *Work) spawnLocked(ctx context.Context, name, sha, peer, why string) bool {
	sctx, cancel := context.WithTimeout(ctx, spawnTimeout)
	defer cancel()
	start := time.Now()
	id, err := w.c.Spawn(sctx, peer, name, sha)
	if err != nil {
		w.c.log.Warn("spawn on peer failed", "processor", name, "peer", peer, "err", err)
		return false
	}
	next := append(slices.Clone(*w.placed.Load()), Placement{Processor: name, SHA256: sha, Peer: peer, ID: id, Since: w.c.cfg.Now()})
	w.placed.Store(&next)
	w.c.log.Info("spawned an instance on a peer", "processor", name, "peer", peer, "id", id, "reason", why, "took", time.Since(start))
	return true
}

func (w *Work) removeLocked(drop func(Placement) bool) []Placement {
	var gone []Placement
	next := slices.DeleteFunc(slices.Clone(*w.placed.Load()), func(p Placement) bool {
		if drop(p) {
			gone = append(gone, p)
			return true
		}
		return false
	})
	w.placed.Store(&next)
	return gone
}

// lost drops the placements on a peer that died or left and places the
// same processors on another peer that qualifies, at once: the need for
// them was already established.
func (w *Work) lost(ctx context.Context, peer string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	gone := w.removeLocked(func(p Placement) bool { return p.Peer == peer })
	if len(gone) == 0 {
		return
	}
	w.c.log.Warn("peer gone; its placements are dropped and re-placed", "peer", peer, "placements", len(gone))
	self := w.c.Self().Load
	var peers []Member
	for _, m := range w.c.Members() {
		if m.Name != w.c.Name() && m.Name != peer {
			peers = append(peers, m)
		}
	}
	for _, p := range gone {
		proc := ProcessorLoad{Name: p.Processor, SHA256: p.SHA256, Busy: 1}
		if target, ok := w.planner.target(self, peers, proc, *w.placed.Load()); ok {
			w.spawnLocked(ctx, p.Processor, p.SHA256, target, "replace "+peer)
		}
	}
}

// Forward decides whether a batch of a processor version goes to a peer
// and, if so, runs it there. It spreads batches round-robin over the local
// instances and the placements of that version: with one placement, every
// other batch is forwarded. ok is false when the batch should run locally;
// when ok is true and err is not nil the forward failed (the peer died, or
// dropped the instance) and the caller should run the batch locally — the
// placement is dropped if the peer no longer has it.
func (w *Work) Forward(ctx context.Context, name, sha string, settings, input []byte, count int) (out []byte, ok bool, err error) {
	placed := *w.placed.Load()
	var targets []Placement
	for _, p := range placed {
		if p.Processor == name && p.SHA256 == sha {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		return nil, false, nil
	}
	slot := int(w.rr.Add(1) % uint64(len(targets)+1))
	if slot == len(targets) {
		return nil, false, nil // this batch stays local
	}
	p := targets[slot]
	out, err = w.c.ProcessOn(ctx, p.Peer, p.ID, settings, input, count)
	if err != nil {
		w.fallbacks.Add(1)
		if errors.Is(err, errGone) {
			w.mu.Lock()
			w.removeLocked(func(q Placement) bool { return q.ID == p.ID && q.Peer == p.Peer })
			w.mu.Unlock()
		}
		return nil, true, err
	}
	w.forwarded.Add(1)
	return out, true, nil
}
