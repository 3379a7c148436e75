package cluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// streamTimeout bounds memberlist's TCP exchanges (join, push/pull,
	// direct record pushes). A LAN push/pull takes milliseconds.
	streamTimeout = 3 * time.Second

	// reclaimAfter lets a node that restarted on another address take
	// its name back as soon as the old incarnation is dead (memberlist
	// refuses a dead name from a new address forever by default).
	reclaimAfter = time.Millisecond

	// aloneRejoinInterval is the rejoin period of a node with seeds but
	// no peer, so a cluster whose nodes start together forms quickly.
	aloneRejoinInterval = time.Second

	// conflictRetry is how soon a node that found an earlier incarnation
	// of itself in its peers' view joins again.
	conflictRetry = 500 * time.Millisecond

	// retention is how long dead and departed members stay in Members
	// (and their records in memory) before they are forgotten.
	retention = 5 * time.Minute

	// leaveTimeout bounds Leave when its context has no deadline.
	leaveTimeout = 5 * time.Second
)

// Cluster is this node's membership in the cluster. Its methods are safe
// for concurrent use. Create one with Start; stop it with Leave or
// Shutdown.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	name   string
	epoch  uint64
	ml     *memberlist.Memberlist
	queue  *memberlist.TransmitLimitedQueue
	auth   signer
	client *http.Client

	// mu guards everything below. It is taken inside memberlist's
	// callbacks, so nothing holding it calls into memberlist.
	mu      sync.Mutex
	meta    nodeMeta
	members map[string]*memberState
	records map[recordKey]*record // other nodes' records
	own     [3]*record            // this node's records, by recordKind
	seq     uint64
	subs    []*subscription
	pending []Event
	// lastAlone is when a failed rejoin was last logged.
	lastAlone time.Time

	snap     atomic.Pointer[snapshot] // nil when stale
	numAlive atomic.Int32             // alive members, this node included
	conflict atomic.Bool              // see delegate.NotifyConflict
	joins    atomic.Int64             // join attempts, for tests

	stop     chan struct{}
	eventCh  chan struct{}
	loadCh   chan struct{}
	pushCh   chan struct{}
	rejoinCh chan struct{}
	wg       sync.WaitGroup

	lifeMu sync.Mutex // serializes Leave and Shutdown
	closed bool
}

// Start starts this node's gossip on cfg.BindAddr and joins cfg.Seeds. If
// no seed answers it still starts, alone, and keeps trying in the
// background. ctx bounds the first join attempt only.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	c := &Cluster{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.NodeName),
		name:     cfg.NodeName,
		epoch:    uint64(max(cfg.Now().UnixMicro(), 1)),
		members:  map[string]*memberState{},
		records:  map[recordKey]*record{},
		stop:     make(chan struct{}),
		eventCh:  make(chan struct{}, 1),
		loadCh:   make(chan struct{}, 1),
		pushCh:   make(chan struct{}, 1),
		rejoinCh: make(chan struct{}, 1),
	}
	c.meta = nodeMeta{epoch: c.epoch, httpAddr: cfg.HTTPAddr}
	c.auth = newSigner(cfg.NodeName, cfg.Cookie, cfg.Now)
	c.client = newClient(&c.auth)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	} else {
		host, port, _ := splitHostPort(cfg.BindAddr)
		mc.BindAddr, mc.BindPort, mc.AdvertisePort = host, port, port
	}
	mc.SecretKey = deriveKey(cfg.Cookie, gossipKeyLabel)
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = streamTimeout
	mc.DeadNodeReclaimTime = reclaimAfter
	d := delegate{c}
	mc.Delegate, mc.Events, mc.Conflict, mc.Ping, mc.Merge = d, d, d, d, d
	mc.DelegateProtocolVersion, mc.DelegateProtocolMin, mc.DelegateProtocolMax = 1, 1, 1
	mc.Logger = memberlistLogger(c.log)
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(max(c.numAlive.Load(), 1)) },
		RetransmitMult: mc.RetransmitMult,
	}

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	c.ml = ml
	c.wg.Add(3)
	go c.dispatchLoop()
	go c.loadLoop()
	go c.pushLoop()

	joined := make(chan struct{})
	go func() {
		defer close(joined)
		c.rejoin()
	}()
	select {
	case <-joined:
	case <-ctx.Done():
		c.Shutdown()
		<-joined
		return nil, fmt.Errorf("join seeds: %w", ctx.Err())
	}
	c.wg.Add(1)
	go c.rejoinLoop()
	c.log.Info("cluster node started", "gossip", c.Self().GossipAddr, "http", cfg.HTTPAddr, "epoch", c.epoch, "members", c.numAlive.Load())
	return c, nil
}

// Name returns this node's name.
func (c *Cluster) Name() string { return c.name }

// Self returns this node as a member.
func (c *Cluster) Self() Member {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[c.name]; m != nil {
		return c.publicLocked(m, now)
	}
	return Member{Name: c.name, HTTPAddr: c.cfg.HTTPAddr, Epoch: c.epoch, State: StateAlive}
}

// Members returns every member this node knows, itself included, sorted by
// name. Dead and departed members stay listed for a few minutes.
func (c *Cluster) Members() []Member {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, c.publicLocked(m, now))
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Member returns the member called name, if this node knows it.
func (c *Cluster) Member(name string) (Member, bool) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[name]
	if m == nil {
		return Member{}, false
	}
	return c.publicLocked(m, now), true
}

// publicLocked returns m as callers see it, with StateSuspect for a peer
// that has not answered this node's direct probes for three probe rounds
// (each peer is probed once per round of N-1 probe intervals).
func (c *Cluster) publicLocked(m *memberState, now time.Time) Member {
	p := m.Member
	if p.State == StateAlive && p.Name != c.name {
		peers := time.Duration(max(c.numAlive.Load()-1, 1))
		if now.Sub(m.lastAck) > 3*peers*c.cfg.ProbeInterval+c.cfg.ProbeTimeout {
			p.State = StateSuspect
		}
	}
	return p
}

// SetLoad publishes this node's load summary in its metadata. It only
// records the value; a background loop gossips the latest one at most once
// per Config.LoadInterval (an unchanged load is not gossiped), so calling
// it often is cheap.
func (c *Cluster) SetLoad(l Load) {
	c.mu.Lock()
	c.meta.load = l
	if m := c.members[c.name]; m != nil {
		m.Load = l
	}
	c.mu.Unlock()
	select {
	case c.loadCh <- struct{}{}:
	default:
	}
}

// Leave announces a graceful departure, so that peers see this node as
// left rather than dead, waits (bounded by ctx, or 5 s) for the
// announcement to go out, and shuts down. The Cluster cannot be used
// afterwards.
func (c *Cluster) Leave(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return nil
	}
	timeout := leaveTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	c.mu.Lock()
	c.meta.leaving = true
	c.mu.Unlock()
	// The leaving flag must reach peers before the leave message: they
	// read it from the metadata they hold when NotifyLeave fires.
	// UpdateNode returns once the update has been fully retransmitted.
	var errs []error
	if err := c.ml.UpdateNode(timeout / 2); err != nil {
		errs = append(errs, fmt.Errorf("announce leaving: %w", err))
	}
	if err := c.ml.Leave(timeout / 2); err != nil {
		errs = append(errs, fmt.Errorf("leave: %w", err))
	}
	if err := c.shutdownLocked(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Shutdown stops gossip without leaving: peers will declare this node dead,
// as after a crash. It is idempotent. No subscriber callback runs after it
// returns; do not call it from one.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	return c.shutdownLocked()
}

func (c *Cluster) shutdownLocked() error {
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stop)
	err := c.ml.Shutdown()
	c.wg.Wait()
	c.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("shut down gossip: %w", err)
	}
	return nil
}

// nodeAlive handles memberlist's NotifyJoin and NotifyUpdate.
func (c *Cluster) nodeAlive(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("member has unreadable metadata", "member", n.Name, "err", err)
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[n.Name]
	switch {
	case m == nil || m.State != StateAlive:
		if m == nil {
			m = &memberState{}
			c.members[n.Name] = m
		}
		m.update(n, meta)
		m.State, m.Since, m.lastAck = StateAlive, now, now
		c.numAlive.Add(1)
		c.dropRecordsLocked(n.Name, meta.epoch)
		c.invalidateLocked()
		c.emitLocked(MemberJoined, m)
		c.kickPush()
	case m.Epoch != meta.epoch:
		// A restart on the same address is accepted by memberlist as
		// an update (the new process refutes the old incarnation).
		old := c.publicLocked(m, now)
		old.State, old.Since = StateDead, now
		c.emitEventLocked(Event{Kind: MemberFailed, Member: old}, n.Name)
		m.update(n, meta)
		m.Since, m.lastAck = now, now
		c.dropRecordsLocked(n.Name, meta.epoch)
		c.invalidateLocked()
		c.emitLocked(MemberJoined, m)
		c.kickPush()
	default:
		before := m.Member
		m.update(n, meta)
		if m.Member != before {
			c.emitLocked(MemberUpdated, m)
		}
	}
}

// nodeGone handles memberlist's NotifyLeave, which fires both for a node
// declared dead and for one that left; the leaving flag of its metadata
// tells them apart.
func (c *Cluster) nodeGone(n *memberlist.Node) {
	meta, _ := decodeMeta(n.Meta)
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[n.Name]
	if m == nil || m.State != StateAlive {
		return
	}
	kind := MemberFailed
	m.State = StateDead
	if meta.leaving {
		kind, m.State = MemberLeft, StateLeft
	}
	m.Since = now
	c.numAlive.Add(-1)
	c.invalidateLocked()
	c.emitLocked(kind, m)
}

func (m *memberState) update(n *memberlist.Node, meta nodeMeta) {
	m.node = memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
	m.Name = n.Name
	m.GossipAddr = n.Address()
	m.HTTPAddr = meta.httpAddr
	m.Epoch = meta.epoch
	m.Load = meta.load
}

func (c *Cluster) acked(name string) {
	now := c.cfg.Now()
	c.mu.Lock()
	if m := c.members[name]; m != nil {
		m.lastAck = now
	}
	c.mu.Unlock()
}

// loadLoop gossips the latest load, at most once per LoadInterval.
func (c *Cluster) loadLoop() {
	defer c.wg.Done()
	c.mu.Lock()
	published := c.meta.encode()
	c.mu.Unlock()
	for {
		select {
		case <-c.stop:
			return
		case <-c.loadCh:
		}
		c.mu.Lock()
		meta := c.meta.encode()
		c.mu.Unlock()
		if bytes.Equal(meta, published) {
			continue
		}
		published = meta
		// UpdateNode waits until the update has been retransmitted;
		// a timeout only means few peers heard it yet.
		if err := c.ml.UpdateNode(c.cfg.LoadInterval); err != nil {
			c.log.Debug("gossip load", "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(c.cfg.LoadInterval):
		}
	}
}

// rejoinLoop runs rejoin every RejoinInterval (sooner after a name
// conflict), and forgets long-dead members.
func (c *Cluster) rejoinLoop() {
	defer c.wg.Done()
	t := time.NewTimer(c.rejoinDelay())
	defer t.Stop()
	due := time.Now().Add(c.rejoinDelay())
	for {
		select {
		case <-c.stop:
			return
		case <-c.rejoinCh:
			if time.Until(due) > conflictRetry {
				due = time.Now().Add(conflictRetry)
				t.Reset(conflictRetry)
			}
			continue
		case <-t.C:
		}
		c.rejoin()
		c.sweep()
		d := c.rejoinDelay()
		due = time.Now().Add(d)
		t.Reset(d)
	}
}

func (c *Cluster) rejoinDelay() time.Duration {
	if len(c.cfg.Seeds) > 0 && c.numAlive.Load() <= 1 {
		return min(c.cfg.RejoinInterval, aloneRejoinInterval)
	}
	return c.cfg.RejoinInterval
}

// staleSelf notes that peers hold an earlier incarnation of this node at
// old, and schedules a join of every peer soon.
func (c *Cluster) staleSelf(old string) {
	if !c.conflict.Swap(true) {
		c.log.Info("peers still know an earlier incarnation of this node; joining again", "old", old)
	}
	select {
	case c.rejoinCh <- struct{}{}:
	default:
	}
}

// rejoin joins the seeds that are not alive members, and the members
// declared dead in the last few minutes: after a partition heals, each side
// then hears of the other at once rather than by chance. After a name
// conflict it also joins the alive peers, to present this incarnation
// again. Targets are joined in parallel, so an unreachable one (a dial
// that times out) does not hold up the others.
func (c *Cluster) rejoin() {
	alive := map[string]bool{}
	var dead, peers []string
	now := c.cfg.Now()
	c.mu.Lock()
	for _, m := range c.members {
		switch {
		case m.State == StateAlive:
			alive[m.GossipAddr] = true
			if m.Name != c.name {
				peers = append(peers, m.GossipAddr)
			}
		case m.State == StateDead && now.Sub(m.Since) < retention:
			dead = append(dead, m.GossipAddr)
		}
	}
	c.mu.Unlock()

	var targets []string
	for _, s := range c.cfg.Seeds {
		if !c.seedAlive(s, alive) {
			targets = append(targets, s)
		}
	}
	targets = append(targets, dead...)
	if c.conflict.Swap(false) {
		targets = append(targets, peers...)
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	if len(targets) == 0 {
		return
	}
	c.joins.Add(1)
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { _, errs[i] = c.ml.Join([]string{t}) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		return
	}
	t := time.Now()
	c.mu.Lock()
	warn := c.numAlive.Load() <= 1 && len(c.cfg.Seeds) > 0 && t.Sub(c.lastAlone) > 30*time.Second
	if warn {
		c.lastAlone = t
	}
	c.mu.Unlock()
	if warn {
		c.log.Warn("no seed could be joined; running alone and retrying", "seeds", c.cfg.Seeds, "err", err)
	} else {
		c.log.Debug("rejoin", "targets", targets, "err", err)
	}
}

// seedAlive reports whether seed resolves to the address of an alive member
// (this node included).
func (c *Cluster) seedAlive(seed string, alive map[string]bool) bool {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return false
	}
	if net.ParseIP(host) != nil {
		return alive[net.JoinHostPort(host, port)]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if alive[net.JoinHostPort(ip, port)] {
			return true
		}
	}
	return false
}

// sweep forgets members that have been dead or gone for longer than
// retention, and records of nodes that are not members.
func (c *Cluster) sweep() {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, m := range c.members {
		if m.State != StateAlive && now.Sub(m.Since) > retention {
			delete(c.members, name)
		}
	}
	for k := range c.records {
		if c.members[k.node] == nil {
			delete(c.records, k)
		}
	}
}
