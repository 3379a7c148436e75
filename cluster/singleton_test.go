package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// Short leases keep the tests fast: a dead owner is replaced in about
// 600 ms. The renew period is the default, TTL/3.
var testSingletons = SingletonConfig{TTL: 600 * time.Millisecond, Margin: 150 * time.Millisecond}

// pgLeases is the real PostgreSQL store as Leases, with a switch that cuts
// the node off from the database: while cut, every call hangs until its
// context ends, as on a network that drops packets.
type pgLeases struct {
	s   *postgres.Store
	cut atomic.Bool
}

func (l *pgLeases) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	if l.cut.Load() {
		<-ctx.Done()
		return Lease{}, fmt.Errorf("acquire lease on %q: %w", name, ctx.Err())
	}
	pl, err := l.s.Acquire(ctx, name, owner, ttl)
	return Lease(pl), err
}

func (l *pgLeases) Release(ctx context.Context, name, owner string, token int64) error {
	if l.cut.Load() {
		<-ctx.Done()
		return fmt.Errorf("release lease on %q: %w", name, ctx.Err())
	}
	return l.s.Release(ctx, name, owner, token)
}

// openLeases opens a store of its own (its own connections) on the
// database at url, as each node would.
func openLeases(t *testing.T, url string) *pgLeases {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, postgres.Config{URL: url, Logger: testLogger(), PartitionInterval: -1})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &pgLeases{s: s}
}

// startSingletons starts a manager on each node, each with its own
// connection to the database at url, all wanting names.
func startSingletons(t *testing.T, url string, nodes []*Cluster, names ...string) ([]*Singletons, []*pgLeases) {
	t.Helper()
	ms := make([]*Singletons, len(nodes))
	ls := make([]*pgLeases, len(nodes))
	for i, c := range nodes {
		ls[i] = openLeases(t, url)
		ms[i] = c.StartSingletons(ls[i], func() []string { return names }, testSingletons)
		t.Cleanup(func() {
			ls[i].cut.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ms[i].Stop(ctx)
		})
	}
	return ms, ls
}

// selfOwner returns the index of the manager that owns name, or -1; it
// fails the test if several do.
func selfOwner(t *testing.T, ms []*Singletons, name string) int {
	t.Helper()
	owner := -1
	for i, m := range ms {
		if _, _, self := m.Owner(name); self {
			if owner >= 0 {
				t.Fatalf("%s: managers %d and %d both own it", name, owner, i)
			}
			owner = i
		}
	}
	return owner
}

func waitOwner(t *testing.T, ms []*Singletons, name string, timeout time.Duration) int {
	t.Helper()
	owner := -1
	waitFor(t, timeout, name+" to have an owner", func() string {
		if owner = selfOwner(t, ms, name); owner < 0 {
			return "no manager owns it"
		}
		return ""
	})
	return owner
}

// watchOwners samples the owner of each name on every manager until the
// returned function is called, and fails the test if two managers own the
// same name in one sample. A sample that took longer than the margin (the
// goroutine was descheduled) proves nothing and is skipped: an owner's
// validity ends at least a margin before another can acquire the lease.
func watchOwners(t *testing.T, margin time.Duration, ms []*Singletons, names ...string) (stop func() (samples int)) {
	t.Helper()
	done := make(chan struct{})
	var n int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, name := range names {
				start := time.Now()
				var selves []string
				for _, m := range ms {
					if node, token, self := m.Owner(name); self {
						selves = append(selves, fmt.Sprintf("%s (token %d)", node, token))
					}
				}
				if len(selves) > 1 && time.Since(start) < margin {
					t.Errorf("%s has %d owners at once: %s", name, len(selves), strings.Join(selves, ", "))
				}
				n++
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestSingletonFailover runs one singleton on three nodes through the
// faults of issue 4: its owner is partitioned from the other nodes (it
// keeps the lease: the database decides, not gossip), then cut off from the
// database too (it stops acting as owner before another node takes over,
// which happens once the lease expires, with a larger token), then the
// network heals (one cluster, one owner, the old owner's token refused).
func TestSingletonFailover(t *testing.T) {
	const name = "dedupe"
	url := pgtest.URL(t)
	network := newNetwork()
	nodes := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.Transport = network.transport(t, fmt.Sprintf("127.0.0.%d", i+1))
	})
	ms, ls := startSingletons(t, url, nodes, name, "rollup")
	stopWatch := watchOwners(t, testSingletons.Margin, ms, name, "rollup")

	first := waitOwner(t, ms, name, 5*time.Second)
	waitOwner(t, ms, "rollup", 5*time.Second)
	_, firstToken, _ := ms[first].Owner(name)
	for i, m := range ms {
		if i == first {
			continue
		}
		waitFor(t, 2*time.Second, "the others to read the owner", func() string {
			if node, token, self := m.Owner(name); self || node != nodes[first].Name() || token != firstToken {
				return fmt.Sprintf("node %d: Owner = %q, %d, %v; want %q, %d, false", i, node, token, self, nodes[first].Name(), firstToken)
			}
			return ""
		})
	}

	// A gossip partition alone changes nothing: both sides reach the
	// database, and the lease stays where it is.
	var rest []*Cluster
	for i, c := range nodes {
		if i != first {
			rest = append(rest, c)
		}
	}
	network.split([]*Cluster{nodes[first]}, rest)
	waitFor(t, 10*time.Second, "the partition to be seen", func() string {
		if s := stateOf(rest[0], nodes[first].Name()); s != StateDead.String() {
			return fmt.Sprintf("%s sees %s as %s", rest[0].Name(), nodes[first].Name(), s)
		}
		return ""
	})
	if got := selfOwner(t, ms, name); got != first {
		t.Fatalf("after a gossip partition: owner %d, want %d (unchanged)", got, first)
	}
	if _, token, _ := ms[first].Owner(name); token != firstToken {
		t.Fatalf("after a gossip partition: token %d, want %d", token, firstToken)
	}

	// Now the owner is cut off from the database as well.
	ls[first].cut.Store(true)
	cutAt := time.Now()
	var gaveUp, takenOver time.Duration
	next := -1
	waitFor(t, 5*time.Second, "another node to take over", func() string {
		_, _, self := ms[first].Owner(name)
		if !self && gaveUp == 0 {
			gaveUp = time.Since(cutAt)
		}
		for i, m := range ms {
			if _, _, s := m.Owner(name); s && i != first {
				next, takenOver = i, time.Since(cutAt)
				return ""
			}
		}
		return "no other owner"
	})
	// The owner's validity ends a margin before its lease expires in the
	// database; both times were seen by the same poll (10 ms apart).
	if slack := 50 * time.Millisecond; gaveUp == 0 || takenOver-gaveUp < testSingletons.Margin-slack {
		t.Errorf("the cut-off owner gave up after %v, the takeover came after %v: want it to give up at least %v before",
			gaveUp, takenOver, testSingletons.Margin-slack)
	}
	ttl, renew := testSingletons.TTL, testSingletons.withDefaults().Renew
	t.Logf("owner cut off: it gave up after %v, %s took over after %v (ttl %v, renew %v, margin %v)",
		gaveUp.Round(time.Millisecond), nodes[next].Name(), takenOver.Round(time.Millisecond), ttl, renew, testSingletons.Margin)

	_, nextToken, _ := ms[next].Owner(name)
	if nextToken <= firstToken {
		t.Errorf("token after takeover %d, want more than %d", nextToken, firstToken)
	}
	if ms[first].Owns(name, firstToken) {
		t.Errorf("the cut-off owner still Owns(%q, %d)", name, firstToken)
	}
	if ms[next].Owns(name, firstToken) || !ms[next].Owns(name, nextToken) {
		t.Errorf("new owner: Owns(old token %d) = %v, Owns(new token %d) = %v; want false, true",
			firstToken, ms[next].Owns(name, firstToken), nextToken, ms[next].Owns(name, nextToken))
	}

	// Heal everything: one cluster, and the old owner reads the new one.
	ls[first].cut.Store(false)
	network.heal()
	waitConverged(t, nodes...)
	waitFor(t, 5*time.Second, "the old owner to read the new owner", func() string {
		if node, token, self := ms[first].Owner(name); self || node != nodes[next].Name() || token != nextToken {
			return fmt.Sprintf("Owner = %q, %d, %v; want %q, %d, false", node, token, self, nodes[next].Name(), nextToken)
		}
		return ""
	})
	time.Sleep(2 * ttl) // a few renewals of everyone, under the watch
	if got := selfOwner(t, ms, name); got != next {
		t.Errorf("after healing: owner %d, want %d", got, next)
	}
	if _, token, _ := ms[next].Owner(name); token != nextToken {
		t.Errorf("after healing: token %d, want %d (no change of hands)", token, nextToken)
	}
	t.Logf("%d ownership samples, never two owners", stopWatch())
}

// TestSingletonStopReleases checks that a node that stops gives its leases
// up at once, so another takes over within a renew period rather than a
// TTL, and that a singleton no longer wanted is released the same way.
func TestSingletonStopReleases(t *testing.T) {
	url := pgtest.URL(t)
	nodes := startCluster(t, 2, nil)
	kept := []string{"dedupe", "rollup"}
	var wantedMu sync.Mutex
	wanted := [][]string{kept, kept}
	ms := make([]*Singletons, 2)
	for i, c := range nodes {
		ms[i] = c.StartSingletons(openLeases(t, url), func() []string {
			wantedMu.Lock()
			defer wantedMu.Unlock()
			return wanted[i]
		}, testSingletons)
		t.Cleanup(func() { ms[i].Stop(context.Background()) })
	}
	stopWatch := watchOwners(t, testSingletons.Margin, ms, kept...)

	// No longer wanted by its owner: released, the other takes it.
	owner := waitOwner(t, ms, "rollup", 5*time.Second)
	_, token, _ := ms[owner].Owner("rollup")
	dropped := time.Now()
	wantedMu.Lock()
	wanted[owner] = []string{"dedupe"}
	wantedMu.Unlock()
	waitFor(t, testSingletons.TTL, "the other node to take rollup over", func() string {
		if _, _, self := ms[1-owner].Owner("rollup"); !self {
			return "not yet"
		}
		return ""
	})
	t.Logf("rollup no longer wanted by its owner: taken over after %v", time.Since(dropped).Round(time.Millisecond))
	if !ms[1-owner].Owns("rollup", token+1) {
		t.Errorf("after release: new owner does not own rollup with token %d", token+1)
	}
	wantedMu.Lock()
	wanted[owner] = kept // both nodes want both again
	wantedMu.Unlock()

	// Stop: the other takes over promptly.
	owner = waitOwner(t, ms, "dedupe", 5*time.Second)
	_, token, _ = ms[owner].Owner("dedupe")
	stopped := time.Now()
	ms[owner].Stop(context.Background())
	if _, _, self := ms[owner].Owner("dedupe"); self || len(ms[owner].Held()) != 0 {
		t.Errorf("after Stop: self %v, held %v; want false, none", self, ms[owner].Held())
	}
	waitFor(t, testSingletons.TTL, "the other node to take dedupe over", func() string {
		if !ms[1-owner].Owns("dedupe", token+1) {
			return "not yet"
		}
		return ""
	})
	t.Logf("owner stopped: taken over after %v (ttl %v)", time.Since(stopped).Round(time.Millisecond), testSingletons.TTL)
	// The survivor wants both, so it ends up holding both.
	waitFor(t, testSingletons.TTL, "the survivor to hold both", func() string {
		held := ms[1-owner].Held()
		if len(held) != 2 || held[0].Name != "dedupe" || held[1].Name != "rollup" || held[0].Owner != nodes[1-owner].Name() {
			return fmt.Sprintf("Held = %+v", held)
		}
		return ""
	})
	t.Logf("%d ownership samples, never two owners", stopWatch())
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// funcLeases is Leases made of functions.
type funcLeases struct {
	acquire func(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error)
}

func (l funcLeases) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	return l.acquire(ctx, name, owner, ttl)
}

func (funcLeases) Release(context.Context, string, string, int64) error { return nil }

// TestSingletonValidity drives the clock: a lease counts as held until
// TTL − Margin after the successful Acquire began (not ended), whatever
// the database says afterwards, and Changed signals the acquisition and
// the loss.
func TestSingletonValidity(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := testConfig("node-1", 1)
	cfg.Now = clock.Now
	c := startNode(t, cfg)

	const callTime = 100 * time.Millisecond
	gate := make(chan struct{})
	var calls atomic.Int32
	var other atomic.Bool // once set, the database says node-9 holds it
	leases := funcLeases{acquire: func(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
		switch calls.Add(1) {
		case 1:
			<-gate
			clock.Advance(callTime) // a slow call
			return Lease{Name: name, Owner: owner, Token: 7, Held: true}, nil
		}
		if other.Load() {
			return Lease{Name: name, Owner: ownerID("node-9", 1), Token: 8}, nil
		}
		return Lease{}, errors.New("database unreachable")
	}}
	s := c.StartSingletons(leases, func() []string { return []string{"dedupe"} }, testSingletons)
	t.Cleanup(func() { s.Stop(context.Background()) })
	began := clock.Now()
	validity := testSingletons.TTL - testSingletons.Margin

	changed := s.Changed()
	close(gate)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not signalled after the lease was acquired")
	}
	checkOwner := func(what, wantNode string, wantToken int64, wantSelf bool) {
		t.Helper()
		if node, token, self := s.Owner("dedupe"); node != wantNode || token != wantToken || self != wantSelf {
			t.Errorf("%s: Owner = %q, %d, %v; want %q, %d, %v", what, node, token, self, wantNode, wantToken, wantSelf)
		}
	}
	checkOwner("after acquiring", "node-1", 7, true)
	if held := s.Held(); len(held) != 1 || held[0] != (Lease{Name: "dedupe", Owner: "node-1", Token: 7, Held: true}) {
		t.Errorf("Held = %+v, want dedupe with token 7", held)
	}
	if !s.Owns("dedupe", 7) || s.Owns("dedupe", 6) {
		t.Errorf("Owns(7), Owns(6) = %v, %v; want true, false", s.Owns("dedupe", 7), s.Owns("dedupe", 6))
	}

	changed = s.Changed()
	clock.Advance(validity - callTime - time.Nanosecond)
	checkOwner("just before validity ends", "node-1", 7, true)
	clock.Advance(time.Nanosecond)
	checkOwner("when validity ends", "", 0, false)
	if s.Owns("dedupe", 7) || len(s.Held()) != 0 {
		t.Errorf("when validity ends: Owns(7) = %v, Held = %v; want false, none", s.Owns("dedupe", 7), s.Held())
	}
	if got := clock.Now().Sub(began); got != validity {
		t.Fatalf("test clock moved %v, want %v", got, validity)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not signalled after the validity ended")
	}

	// The database answers again: another node took it.
	other.Store(true)
	waitFor(t, 5*time.Second, "the new owner to be read", func() string {
		if node, token, _ := s.Owner("dedupe"); node != "node-9" || token != 8 {
			return fmt.Sprintf("Owner = %q, %d", node, token)
		}
		return ""
	})
}

func TestSingletonConfig(t *testing.T) {
	cases := []struct {
		name    string
		in      SingletonConfig
		want    SingletonConfig
		wantErr string
	}{
		{"defaults", SingletonConfig{}, SingletonConfig{TTL: 6 * time.Second, Renew: 2 * time.Second, Margin: time.Second}, ""},
		{"short ttl", SingletonConfig{TTL: 600 * time.Millisecond},
			SingletonConfig{TTL: 600 * time.Millisecond, Renew: 200 * time.Millisecond, Margin: 150 * time.Millisecond}, ""},
		{"all set", SingletonConfig{TTL: 10 * time.Second, Renew: time.Second, Margin: 3 * time.Second},
			SingletonConfig{TTL: 10 * time.Second, Renew: time.Second, Margin: 3 * time.Second}, ""},
		{"negative", SingletonConfig{TTL: -time.Second}, SingletonConfig{}, "must be positive"},
		{"margin too long", SingletonConfig{TTL: time.Second, Margin: time.Second}, SingletonConfig{}, "margin"},
		{"renew too slow", SingletonConfig{TTL: time.Second, Renew: 800 * time.Millisecond, Margin: 200 * time.Millisecond},
			SingletonConfig{}, "renew"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.in.withDefaults()
			err := got.validate()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("validate: got error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestSingletonOwnerDies kills the owner (its gossip stops and it never
// renews or releases again) twice in a row, and measures how long the
// singleton goes without an owner: about a TTL.
func TestSingletonOwnerDies(t *testing.T) {
	const name = "dedupe"
	url := pgtest.URL(t)
	nodes := startCluster(t, 3, nil)
	ms, ls := startSingletons(t, url, nodes, name)
	watchOwners(t, testSingletons.Margin, ms, name)
	dead := map[int]bool{}
	owner := waitOwner(t, ms, name, 5*time.Second)
	for range 2 {
		_, token, _ := ms[owner].Owner(name)
		ls[owner].cut.Store(true) // the process is gone: no renewal, no release
		nodes[owner].Shutdown()
		dead[owner] = true
		died := time.Now()
		var next int
		waitFor(t, 5*time.Second, "a live node to take over", func() string {
			if next = selfOwner(t, ms, name); next < 0 || dead[next] {
				return "no live owner"
			}
			return ""
		})
		took := time.Since(died)
		t.Logf("owner %s died: %s took over after %v (ttl %v)", nodes[owner].Name(), nodes[next].Name(), took.Round(time.Millisecond), testSingletons.TTL)
		if took > 3*testSingletons.TTL {
			t.Errorf("takeover took %v, want about the ttl %v", took, testSingletons.TTL)
		}
		if _, got, _ := ms[next].Owner(name); got <= token {
			t.Errorf("token after takeover %d, want more than the dead owner's %d", got, token)
		}
		owner = next
	}
}
