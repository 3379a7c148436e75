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

// testSingletons is short enough that a dead owner is replaced in a few
// seconds, and generous enough that a lease stays put on a loaded machine
// (the tests share it with PostgreSQL): each renewal may take up to a
// second, and an owner counts itself owner for 2.25 s after a renewal
// began, so only two slow renewals in a row lose a lease.
var testSingletons = SingletonConfig{TTL: 3 * time.Second, Margin: 750 * time.Millisecond, Renew: time.Second}

// releaseSingletons has a lease outlive any test's patience: an owner that
// another node replaces within a few seconds released its lease; it did
// not let it expire.
var releaseSingletons = SingletonConfig{TTL: 30 * time.Second, Margin: time.Second, Renew: time.Second}

// fastSingletons is for tests on a fake clock and fake leases, where only
// the renew period, in real time, matters: short, so that they run fast.
var fastSingletons = SingletonConfig{TTL: 600 * time.Millisecond, Margin: 150 * time.Millisecond}

// clockSlack covers the comparison of the local clock with the database's
// timestamps, which have microsecond precision. Both are the real-time
// clock of the same host.
const clockSlack = 10 * time.Millisecond

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
// connection to the database at url, all wanting names, with
// testSingletons.
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

// selfOwner returns the index of the manager that owns name and its token
// (one reading), or -1; it fails the test if several do.
func selfOwner(t *testing.T, ms []*Singletons, name string) (int, int64) {
	t.Helper()
	owner, token := -1, int64(0)
	for i, m := range ms {
		if _, tok, self := m.Owner(name); self {
			if owner >= 0 {
				t.Fatalf("%s: managers %d and %d both own it", name, owner, i)
			}
			owner, token = i, tok
		}
	}
	return owner, token
}

// waitOwner waits until a manager owns name and returns it and its token.
func waitOwner(t *testing.T, ms []*Singletons, name string, timeout time.Duration) (int, int64) {
	t.Helper()
	owner, token := -1, int64(0)
	waitFor(t, timeout, name+" to have an owner", func() string {
		if owner, token = selfOwner(t, ms, name); owner < 0 {
			return "no manager owns it"
		}
		return ""
	})
	return owner, token
}

// waitKept checks that the lease on name has stayed with manager i and
// its token: it waits until i owns it with that token. Tokens only grow, so
// if the lease changed hands meanwhile this never happens and the test
// fails; the wait only rides out a moment when i's validity has passed
// just before a late renewal lands (a slow database call).
func waitKept(t *testing.T, ms []*Singletons, i int, name string, token int64, when string) {
	t.Helper()
	waitFor(t, 10*time.Second, when+": "+name+" to stay with its owner", func() string {
		if got, tok := selfOwner(t, ms, name); got != i || tok != token {
			return fmt.Sprintf("owner %d with token %d, want %d with token %d (unchanged)", got, tok, i, token)
		}
		return ""
	})
}

// checkHandover checks that manager to, which now owns name with token,
// took the lease over from manager from, which stopped renewing it, without
// overlap: from's own record says it counted itself owner until
// validUntil, at least the margin before its lease expired in the database
// (the expiry it read), and the database's record of to's holding says it
// began at or after that expiry. These are the managers' and the
// database's times, not when the test happened to look, so a slow poll
// cannot fail the check. It returns how long after from's validity ended
// to's holding began.
func checkHandover(t *testing.T, db *pgLeases, from, to *Singletons, name string, token int64) time.Duration {
	t.Helper()
	from.mu.Lock()
	var validUntil, expires time.Time
	if st := from.names[name]; st != nil {
		validUntil, expires = st.validUntil, st.read.Expires
	}
	from.mu.Unlock()
	if validUntil.IsZero() || expires.IsZero() {
		t.Errorf("%s: the former owner has no holding on record (valid until %v, expires %v)", name, validUntil, expires)
		return 0
	}
	var owner string
	var acquired time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.s.Pool().QueryRow(ctx, "SELECT owner, acquired_at FROM singleton_leases WHERE processor = $1 AND token = $2",
		name, token).Scan(&owner, &acquired); err != nil {
		t.Errorf("%s: read the holding with token %d: %v", name, token, err)
		return 0
	}
	if owner != to.id {
		t.Errorf("%s: the holding with token %d is %s's, want %s's", name, token, owner, to.id)
	}
	if margin := expires.Sub(validUntil); margin < from.cfg.Margin-clockSlack {
		t.Errorf("%s: the former owner counted itself owner until %v, only %v before its lease expired at %v; want at least the margin %v",
			name, validUntil, margin, expires, from.cfg.Margin)
	}
	if acquired.Before(expires) {
		t.Errorf("%s: the new holding (token %d) began at %v by the database's clock, before the former lease expired at %v",
			name, token, acquired, expires)
	}
	return acquired.Sub(validUntil)
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

	first, firstToken := waitOwner(t, ms, name, 10*time.Second)
	waitOwner(t, ms, "rollup", 10*time.Second)
	for i, m := range ms {
		if i == first {
			continue
		}
		waitFor(t, 5*time.Second, "the others to read the owner", func() string {
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
	waitKept(t, ms, first, name, firstToken, "after a gossip partition")

	// Now the owner is cut off from the database as well.
	ls[first].cut.Store(true)
	cutAt := time.Now()
	var gaveUp time.Duration
	next, nextToken := -1, int64(0)
	waitFor(t, testSingletons.TTL+10*time.Second, "another node to take over", func() string {
		if _, _, self := ms[first].Owner(name); !self && gaveUp == 0 {
			gaveUp = time.Since(cutAt)
		}
		for i, m := range ms {
			if _, token, self := m.Owner(name); self && i != first {
				next, nextToken = i, token
				return ""
			}
		}
		return "no other owner"
	})
	takenOver := time.Since(cutAt)
	// The owner's validity ends a margin before its lease expires in the
	// database, and the other node takes it only then: checked on the
	// managers' records and the lease table (the times this test sees are
	// only logged: its polling may stall on a loaded machine).
	gap := checkHandover(t, ls[next], ms[first], ms[next], name, nextToken)
	cfg := ms[first].cfg
	t.Logf("owner cut off: seen to give up after %v, %s seen to take over after %v; the new holding began %v after the old validity ended (ttl %v, renew %v, margin %v)",
		gaveUp.Round(time.Millisecond), nodes[next].Name(), takenOver.Round(time.Millisecond), gap.Round(time.Millisecond), cfg.TTL, cfg.Renew, cfg.Margin)

	if nextToken <= firstToken {
		t.Errorf("token after takeover %d, want more than %d", nextToken, firstToken)
	}
	if ms[first].Owns(name, firstToken) {
		t.Errorf("the cut-off owner still Owns(%q, %d)", name, firstToken)
	}
	if ms[next].Owns(name, firstToken) {
		t.Errorf("new owner: Owns(old token %d) = true, want false", firstToken)
	}

	// Heal everything: one cluster, and the old owner reads the new one.
	ls[first].cut.Store(false)
	network.heal()
	waitConverged(t, nodes...)
	waitFor(t, 10*time.Second, "the old owner to read the new owner", func() string {
		if node, token, self := ms[first].Owner(name); self || node != nodes[next].Name() || token != nextToken {
			return fmt.Sprintf("Owner = %q, %d, %v; want %q, %d, false", node, token, self, nodes[next].Name(), nextToken)
		}
		return ""
	})
	time.Sleep(2*cfg.Renew + cfg.Renew/2) // a few renewals of everyone, under the watch
	waitKept(t, ms, next, name, nextToken, "after healing")
	t.Logf("%d ownership samples, never two owners", stopWatch())
}

// TestSingletonStopReleases checks that a node that stops gives its leases
// up at once, so another takes over within a renew period or so rather
// than a TTL, and that a singleton no longer wanted is released the same
// way. Its leases last 30 s, so a takeover within the test's waits can only
// follow a release.
func TestSingletonStopReleases(t *testing.T) {
	url := pgtest.URL(t)
	nodes := startCluster(t, 2, nil)
	kept := []string{"dedupe", "rollup"}
	var wantedMu sync.Mutex
	wanted := [][]string{kept, kept}
	ms := make([]*Singletons, 2)
	ls := make([]*pgLeases, 2)
	for i, c := range nodes {
		ls[i] = openLeases(t, url)
		ms[i] = c.StartSingletons(ls[i], func() []string {
			wantedMu.Lock()
			defer wantedMu.Unlock()
			return wanted[i]
		}, releaseSingletons)
		t.Cleanup(func() { ms[i].Stop(context.Background()) })
	}
	stopWatch := watchOwners(t, releaseSingletons.Margin, ms, kept...)
	// Far shorter than the TTL: the lease cannot expire in this time.
	const takeover = 10 * time.Second

	// No longer wanted by its owner: released, the other takes it.
	owner, token := waitOwner(t, ms, "rollup", 10*time.Second)
	dropped := time.Now()
	wantedMu.Lock()
	wanted[owner] = []string{"dedupe"}
	wantedMu.Unlock()
	waitFor(t, takeover, "the other node to take rollup over", func() string {
		if _, tok, self := ms[1-owner].Owner("rollup"); !self || tok <= token {
			return fmt.Sprintf("Owner self %v, token %d; want true, more than %d", self, tok, token)
		}
		return ""
	})
	t.Logf("rollup no longer wanted by its owner: taken over after %v (ttl %v)", time.Since(dropped).Round(time.Millisecond), releaseSingletons.TTL)
	wantedMu.Lock()
	wanted[owner] = kept // both nodes want both again
	wantedMu.Unlock()

	// Stop: the lease is released by the time Stop returns, and the other
	// takes over promptly.
	owner, token = waitOwner(t, ms, "dedupe", 10*time.Second)
	stopped := time.Now()
	ms[owner].Stop(context.Background())
	if _, _, self := ms[owner].Owner("dedupe"); self || len(ms[owner].Held()) != 0 {
		t.Errorf("after Stop: self %v, held %v; want false, none", self, ms[owner].Held())
	}
	var holder string
	var holderToken int64
	var expired bool
	if err := ls[1-owner].s.Pool().QueryRow(context.Background(),
		"SELECT owner, token, expires_at <= now() FROM singleton_leases WHERE processor = 'dedupe'").Scan(&holder, &holderToken, &expired); err != nil {
		t.Fatalf("read the dedupe lease: %v", err)
	}
	if holder == ms[owner].id && holderToken == token && !expired {
		t.Errorf("after Stop: the stopped node still holds dedupe (token %d) in the database", token)
	}
	waitFor(t, takeover, "the other node to take dedupe over", func() string {
		if _, tok, self := ms[1-owner].Owner("dedupe"); !self || tok <= token {
			return fmt.Sprintf("Owner self %v, token %d; want true, more than %d", self, tok, token)
		}
		return ""
	})
	t.Logf("owner stopped: taken over after %v (ttl %v)", time.Since(stopped).Round(time.Millisecond), releaseSingletons.TTL)
	if ms[1-owner].Owns("dedupe", token) {
		t.Errorf("new owner: Owns(the stopped owner's token %d) = true, want false", token)
	}
	// The survivor wants both, so it ends up holding both.
	waitFor(t, takeover, "the survivor to hold both", func() string {
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
	s := c.StartSingletons(leases, func() []string { return []string{"dedupe"} }, fastSingletons)
	t.Cleanup(func() { s.Stop(context.Background()) })
	began := clock.Now()
	validity := fastSingletons.TTL - fastSingletons.Margin

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
// singleton goes without an owner: about a TTL. The takeover never
// overlaps the dead owner's validity.
func TestSingletonOwnerDies(t *testing.T) {
	const name = "dedupe"
	url := pgtest.URL(t)
	nodes := startCluster(t, 3, nil)
	ms, ls := startSingletons(t, url, nodes, name)
	watchOwners(t, testSingletons.Margin, ms, name)
	dead := map[int]bool{}
	owner, token := waitOwner(t, ms, name, 10*time.Second)
	for range 2 {
		ls[owner].cut.Store(true) // the process is gone: no renewal, no release
		nodes[owner].Shutdown()
		dead[owner] = true
		died := time.Now()
		next, nextToken := -1, int64(0)
		waitFor(t, testSingletons.TTL+10*time.Second, "a live node to take over", func() string {
			if next, nextToken = selfOwner(t, ms, name); next < 0 || dead[next] {
				return "no live owner"
			}
			return ""
		})
		took := time.Since(died)
		gap := checkHandover(t, ls[next], ms[owner], ms[next], name, nextToken)
		t.Logf("owner %s died: %s seen to take over after %v, its holding began %v after the dead owner's validity ended (ttl %v)",
			nodes[owner].Name(), nodes[next].Name(), took.Round(time.Millisecond), gap.Round(time.Millisecond), testSingletons.TTL)
		// About a TTL, plus a renew period; the rest is room for a loaded
		// machine.
		if limit := testSingletons.TTL + 5*time.Second; took > limit {
			t.Errorf("takeover took %v, want about the ttl %v (at most %v)", took, testSingletons.TTL, limit)
		}
		if nextToken <= token {
			t.Errorf("token after takeover %d, want more than the dead owner's %d", nextToken, token)
		}
		owner, token = next, nextToken
	}
}
