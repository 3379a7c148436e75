package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of SingletonConfig.
const (
	// DefaultSingletonTTL is how long a lease lasts in the database
	// without renewal, so how long a singleton stays without an owner
	// after its owner dies or is cut off: a few failure-detection times,
	// short enough that a dead owner is replaced within seconds.
	DefaultSingletonTTL = 6 * time.Second

	// DefaultSingletonMargin is how much sooner than the database a node
	// gives up a lease it cannot renew. It covers the time between a
	// check of ownership and the work it allows, and the drift between
	// the node's clock rate and the database's. Applied only if it is at
	// most a quarter of the TTL; otherwise the margin is TTL/4.
	DefaultSingletonMargin = time.Second
)

// Leases is what the cluster layer needs from the database that holds the
// ownership of singleton processors. The binary implements it over the
// PostgreSQL store. Its methods must be safe for concurrent use and give up
// when ctx is done.
type Leases interface {
	// Acquire takes or renews name's lease for owner for ttl, atomically
	// (compare-and-set): it succeeds if there is no lease, if the lease
	// expired (by the database's clock), or if owner already holds it. A
	// new holder gets token = previous token + 1 (the fencing token); a
	// renewal keeps the token. It returns the lease as it stands after
	// the call; Held reports whether owner holds it. A refusal is not an
	// error.
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error)
	// Release gives the lease up if owner still holds it with that
	// token, so another owner may take it at once. The next holder's
	// token is still larger.
	Release(ctx context.Context, name, owner string, token int64) error
}

// Lease is the ownership record of a singleton processor.
type Lease struct {
	// Name is the singleton processor.
	Name string
	// Owner holds or last held the lease.
	Owner string
	// Token grows each time the lease changes hands: work stamped with a
	// smaller token than the current one comes from a former owner.
	Token int64
	// Expires is when the lease runs out by the database's clock.
	Expires time.Time
	// Held reports whether the caller holds the lease.
	Held bool
}

// SingletonConfig tunes singleton ownership. The zero value of each field
// means its default. The defaults satisfy Margin < TTL and
// Renew < TTL − Margin; StartSingletons panics on a config that does not.
type SingletonConfig struct {
	// TTL is the lease duration written to the database. Default
	// DefaultSingletonTTL.
	TTL time.Duration
	// Renew is how often every wanted lease is renewed or tried. Default
	// TTL/3, so that two renewals in a row can fail before the node gives
	// the lease up.
	Renew time.Duration
	// Margin is how much before TTL has passed since a successful
	// renewal began the node stops considering itself owner. Default
	// DefaultSingletonMargin, or TTL/4 if that is smaller.
	Margin time.Duration
}

func (c SingletonConfig) withDefaults() SingletonConfig {
	if c.TTL == 0 {
		c.TTL = DefaultSingletonTTL
	}
	if c.Margin == 0 {
		c.Margin = min(DefaultSingletonMargin, c.TTL/4)
	}
	if c.Renew == 0 {
		c.Renew = c.TTL / 3
	}
	return c
}

func (c SingletonConfig) validate() error {
	switch {
	case c.TTL <= 0 || c.Renew <= 0 || c.Margin <= 0:
		return fmt.Errorf("ttl %v, renew %v, margin %v: must be positive", c.TTL, c.Renew, c.Margin)
	case c.Margin >= c.TTL:
		return fmt.Errorf("margin %v: must be shorter than the ttl %v", c.Margin, c.TTL)
	case c.Renew >= c.TTL-c.Margin:
		return fmt.Errorf("renew %v: must be shorter than ttl − margin (%v), or a lease lapses between renewals", c.Renew, c.TTL-c.Margin)
	}
	return nil
}

// Singletons decides where the singleton processors run: each is owned by
// the node that holds its lease in the database. Every Renew it renews the
// leases this node holds and tries to take those it wants and does not
// hold, so the lease of a dead owner is taken over at most Renew after it
// expires.
//
// # Validity
//
// The database decides who holds a lease, but a node cut off from it (or
// paused) cannot learn that it lost it. So a node counts a lease as its
// own only until validUntil = (when the last successful Acquire began, by
// the local monotonic clock) + TTL − Margin. The database's expiry is at
// least TTL after that Acquire began (the statement runs after the call
// starts), so the node stops acting as owner at least Margin before
// another node can take over, whatever the nodes' wall clocks say. Only a
// jump of the database's own clock, or a local clock running Margin/TTL
// slower than the database's, can break this; the fencing token still
// tells the two owners apart. Local times come from Config.Now: time.Now
// carries a monotonic reading, so wall-clock steps do not matter; an
// injected clock (tests) drives validity as it likes.
//
// # Fencing
//
// Each holding of a lease has its own token, larger than every earlier
// one. Work done on behalf of a singleton (a forwarded batch, a write) can
// carry the token its owner had, and the receiver checks it with Owns, so
// a former owner's late work is refused. The owner recorded in the table is
// this node's incarnation, name@epoch: a node restarted under the same
// name does not inherit its previous incarnation's lease and token, but
// takes the lease over when it expires (or at once, if the previous
// incarnation released it).
//
// # Concurrency
//
// Its methods are safe for concurrent use and never block on the database,
// except Stop.
type Singletons struct {
	c      *Cluster
	leases Leases
	wanted func() []string
	cfg    SingletonConfig
	id     string // the owner written in the table: this incarnation

	mu      sync.Mutex
	names   map[string]*singleton
	changed chan struct{} // closed and replaced on each change of ownership
	stopped bool

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// singleton is this node's view of one singleton's lease.
type singleton struct {
	read       Lease     // as last read from the database; Owner is an owner id
	validUntil time.Time // zero unless the last Acquire made this node the holder
	owned      bool      // as last reported (logs, Changed)
	ownedToken int64
	failing    bool // the last Acquire failed
}

// StartSingletons starts managing the leases of the singleton processors
// that wanted returns: those this node's pipelines use. wanted is called
// once per renewal from a background goroutine; it must be fast and safe
// for concurrent use. A name that wanted stops returning is released. The
// first round of Acquire calls starts at once. Stop ends it.
//
// It panics if cfg, with its defaults applied, is invalid (see
// SingletonConfig).
func (c *Cluster) StartSingletons(l Leases, wanted func() []string, cfg SingletonConfig) *Singletons {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic("cluster: singleton config: " + err.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Singletons{
		c:       c,
		leases:  l,
		wanted:  wanted,
		cfg:     cfg,
		id:      ownerID(c.name, c.epoch),
		names:   map[string]*singleton{},
		changed: make(chan struct{}),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go s.loop(ctx)
	return s
}

// ownerID is the owner a node's incarnation writes in the lease table.
// Node names never contain '@'.
func ownerID(node string, epoch uint64) string {
	return node + "@" + strconv.FormatUint(epoch, 10)
}

// nodeOf returns the node name of an owner id.
func nodeOf(owner string) string {
	node, _, _ := strings.Cut(owner, "@")
	return node
}

func (s *Singletons) now() time.Time { return s.c.cfg.Now() }

// Owner returns who owns the singleton name. self is true while this node
// holds the lease and its validity has not passed; then node is this
// node's name and token is its fencing token. Otherwise node and token are
// the lease's holder as last read from the database, which may be stale
// (a cut-off node cannot read it), and node is "" if no lease was read for
// name — it is not wanted here, or not read yet — or if the lease last read
// is this node's own but no longer valid.
func (s *Singletons) Owner(name string) (node string, token int64, self bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.names[name]
	switch {
	case st == nil:
		return "", 0, false
	case st.valid(now):
		return s.c.name, st.read.Token, true
	case st.read.Owner == "" || nodeOf(st.read.Owner) == s.c.name:
		return "", 0, false
	}
	return nodeOf(st.read.Owner), st.read.Token, false
}

// Owns reports whether this node owns the singleton name now with the
// fencing token token. Work for a singleton stamped with another token
// comes from another holding of its lease and must be refused.
func (s *Singletons) Owns(name string, token int64) bool {
	_, t, self := s.Owner(name)
	return self && t == token
}

// Held returns the leases this node holds and may act on now, by name,
// with Owner set to this node's name: the singletons to run here and list
// in the registry.
func (s *Singletons) Held() []Lease {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lease
	for name, st := range s.names {
		if st.valid(now) {
			out = append(out, Lease{Name: name, Owner: s.c.name, Token: st.read.Token, Expires: st.read.Expires, Held: true})
		}
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Changed returns a channel that is closed at the next change of the
// leases this node holds: one acquired, lost, released, or held again
// with a new token. Take the channel before reading Held, then wait on it:
//
//	for {
//		ch := s.Changed()
//		apply(s.Held())
//		<-ch
//	}
//
// A lease stops being held when its validity passes even if the change has
// not been signalled yet; Owner, Owns and Held always tell the truth at
// the time of the call.
func (s *Singletons) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Stop stops renewing, gives up every lease this node holds — first
// locally, so Owns refuses before another node can take over, then in the
// database with Release, bounded by ctx — and signals Changed. Stop the
// singleton instances before calling it, or as Changed fires. A lease whose
// Release fails expires by itself after TTL.
func (s *Singletons) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		var release []Lease
		for name, st := range s.names {
			if st.read.Held && st.read.Owner == s.id {
				release = append(release, st.read)
			}
			if st.owned {
				s.c.log.Info("gave up singleton lease: stopping", "processor", name, "token", st.ownedToken)
			}
		}
		clear(s.names)
		s.stopped = true
		s.notifyLocked()
		s.mu.Unlock()
		for _, l := range release {
			if err := s.leases.Release(ctx, l.Name, s.id, l.Token); err != nil {
				s.c.log.Warn("release singleton lease; it will expire by itself", "processor", l.Name, "err", err)
			}
		}
	})
}

// valid reports whether this node may act as the owner at now.
func (st *singleton) valid(now time.Time) bool {
	return !st.validUntil.IsZero() && now.Before(st.validUntil)
}

func (s *Singletons) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// loop runs a round of renewals every Renew, at most one at a time (a
// round missed while one was running starts as soon as it ends), and
// notices leases whose validity passes between rounds.
func (s *Singletons) loop(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Renew)
	defer tick.Stop()
	expiry := time.NewTimer(s.cfg.TTL)
	defer expiry.Stop()
	rounds := make(chan struct{})
	start := func() {
		go func() {
			s.round(ctx)
			rounds <- struct{}{}
		}()
	}
	busy, missed := true, false
	start()
	for {
		select {
		case <-ctx.Done():
			if busy {
				<-rounds
			}
			return
		case <-tick.C:
			if busy {
				missed = true
			} else {
				busy = true
				start()
			}
			continue
		case <-rounds:
			busy = false
			if missed {
				busy, missed = true, false
				start()
			}
		case <-expiry.C:
		}
		expiry.Reset(s.reconcile())
	}
}

// round renews or tries every wanted lease, concurrently, and releases
// the leases no longer wanted.
func (s *Singletons) round(ctx context.Context) {
	names := slices.Clone(s.wanted())
	slices.Sort(names)
	names = slices.Compact(names)
	var drop []string
	s.mu.Lock()
	for name := range s.names {
		if _, ok := slices.BinarySearch(names, name); !ok {
			drop = append(drop, name)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { s.renew(ctx, name) })
	}
	for _, name := range drop {
		wg.Go(func() { s.drop(ctx, name) })
	}
	wg.Wait()
}

// renew calls Acquire for name and records the result. A successful
// renewal makes the lease valid until TTL − Margin after the call began.
func (s *Singletons) renew(ctx context.Context, name string) {
	// A call that takes longer than Renew is as good as failed: the next
	// round is due.
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Renew)
	began := s.now()
	l, err := s.leases.Acquire(cctx, name, s.id, s.cfg.TTL)
	cancel()
	if err != nil && ctx.Err() != nil {
		return // stopping
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.names[name]
	if st == nil {
		st = &singleton{}
		s.names[name] = st
	}
	if err != nil {
		if !st.failing {
			st.failing = true
			if st.owned {
				s.c.log.Warn("cannot renew singleton lease; giving it up if this lasts", "processor", name,
					"token", st.ownedToken, "valid_for", st.validUntil.Sub(s.now()).Round(time.Millisecond), "err", err)
			} else {
				s.c.log.Warn("cannot read singleton lease", "processor", name, "err", err)
			}
		} else {
			s.c.log.Debug("cannot renew singleton lease", "processor", name, "err", err)
		}
		return
	}
	if st.failing {
		st.failing = false
		s.c.log.Info("singleton lease reachable again", "processor", name, "owner", nodeOf(l.Owner), "token", l.Token)
	}
	st.read = l
	st.validUntil = time.Time{}
	if l.Held && l.Owner == s.id {
		st.validUntil = began.Add(s.cfg.TTL - s.cfg.Margin)
	}
}

// drop gives up a lease no longer wanted, locally first, then in the
// database.
func (s *Singletons) drop(ctx context.Context, name string) {
	s.mu.Lock()
	st := s.names[name]
	if st == nil {
		s.mu.Unlock()
		return
	}
	delete(s.names, name)
	if st.owned {
		s.c.log.Info("gave up singleton lease: no longer wanted", "processor", name, "token", st.ownedToken)
		s.notifyLocked()
	}
	s.mu.Unlock()
	if st.read.Held && st.read.Owner == s.id {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Renew)
		defer cancel()
		if err := s.leases.Release(cctx, name, s.id, st.read.Token); err != nil && ctx.Err() == nil {
			s.c.log.Warn("release singleton lease; it will expire by itself", "processor", name, "err", err)
		}
	}
}

// reconcile compares each lease's validity now with what was last
// reported, logs and signals the changes, and returns how long until the
// next validity ends (at most TTL).
func (s *Singletons) reconcile() time.Duration {
	now := s.now()
	next := s.cfg.TTL
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return next
	}
	changed := false
	for name, st := range s.names {
		valid := st.valid(now)
		switch {
		case valid && (!st.owned || st.ownedToken != st.read.Token):
			if st.owned {
				s.c.log.Warn("singleton lease expired and was taken again: new token", "processor", name,
					"old_token", st.ownedToken, "token", st.read.Token)
			} else {
				s.c.log.Info("acquired singleton lease", "processor", name, "token", st.read.Token)
			}
			st.owned, st.ownedToken, changed = true, st.read.Token, true
		case !valid && st.owned:
			reason := "could not renew it in time"
			if holder := st.read.Owner; holder != s.id && holder != "" {
				reason = fmt.Sprintf("taken by %s with token %d", nodeOf(holder), st.read.Token)
			} else if !st.failing {
				reason = "its validity passed before a renewal"
			}
			s.c.log.Warn("lost singleton lease", "processor", name, "token", st.ownedToken, "reason", reason)
			st.owned, st.ownedToken, changed = false, 0, true
		}
		if valid {
			next = min(next, st.validUntil.Sub(now))
		}
	}
	if changed {
		s.notifyLocked()
	}
	return max(next, time.Millisecond)
}
