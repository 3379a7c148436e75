package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/postgres"
)

// expire moves the lease on name into the past, as if its TTL had run out.
func expire(t *testing.T, s *postgres.Store, name string) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(),
		"UPDATE singleton_leases SET expires_at = now() - interval '1 second' WHERE processor = $1", name); err != nil {
		t.Fatalf("expire %q: %v", name, err)
	}
}

func acquire(t *testing.T, s *postgres.Store, name, owner string, ttl time.Duration) postgres.Lease {
	t.Helper()
	l, err := s.Acquire(context.Background(), name, owner, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q): %v", name, owner, err)
	}
	return l
}

func checkLease(t *testing.T, what string, got postgres.Lease, owner string, token int64, held bool) {
	t.Helper()
	if got.Owner != owner || got.Token != token || got.Held != held {
		t.Errorf("%s: got owner %q token %d held %v, want owner %q token %d held %v",
			what, got.Owner, got.Token, got.Held, owner, token, held)
	}
}

func TestLeases(t *testing.T) {
	s := open(t, postgres.Config{PartitionInterval: -1})
	ctx := context.Background()
	const ttl = time.Minute
	dbNow := func() time.Time {
		var now time.Time
		if err := s.Pool().QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}

	before := dbNow()
	l := acquire(t, s, "dedupe", "node-a", ttl)
	checkLease(t, "acquire on empty", l, "node-a", 1, true)
	if l.Name != "dedupe" {
		t.Errorf("acquire on empty: got name %q, want dedupe", l.Name)
	}
	if lo, hi := before.Add(ttl), dbNow().Add(ttl); l.Expires.Before(lo) || l.Expires.After(hi) {
		t.Errorf("acquire on empty: expires %v, want within [%v, %v] (database now + ttl)", l.Expires, lo, hi)
	}

	renewed := acquire(t, s, "dedupe", "node-a", 2*ttl)
	checkLease(t, "renew", renewed, "node-a", 1, true)
	if !renewed.Expires.After(l.Expires) {
		t.Errorf("renew: expires %v, want after %v", renewed.Expires, l.Expires)
	}

	refused := acquire(t, s, "dedupe", "node-b", ttl)
	checkLease(t, "other owner while valid", refused, "node-a", 1, false)
	if !refused.Expires.Equal(renewed.Expires) {
		t.Errorf("other owner while valid: expires %v, want %v (unchanged)", refused.Expires, renewed.Expires)
	}

	other := acquire(t, s, "other", "node-b", ttl)
	checkLease(t, "another processor", other, "node-b", 1, true)

	expire(t, s, "dedupe")
	checkLease(t, "takeover after expiry", acquire(t, s, "dedupe", "node-b", ttl), "node-b", 2, true)
	checkLease(t, "old owner after takeover", acquire(t, s, "dedupe", "node-a", ttl), "node-b", 2, false)

	// An owner taking back its own expired lease is a new holding: another
	// owner may have acted in between, so the token moves on.
	expire(t, s, "dedupe")
	checkLease(t, "same owner after expiry", acquire(t, s, "dedupe", "node-b", ttl), "node-b", 3, true)

	// Release with a stale token or by another owner does nothing.
	for _, r := range []struct {
		owner string
		token int64
	}{{"node-b", 2}, {"node-a", 3}} {
		if err := s.Release(ctx, "dedupe", r.owner, r.token); err != nil {
			t.Fatalf("Release(%s, %d): %v", r.owner, r.token, err)
		}
	}
	checkLease(t, "after stale releases", acquire(t, s, "dedupe", "node-a", ttl), "node-b", 3, false)

	if err := s.Release(ctx, "dedupe", "node-b", 3); err != nil {
		t.Fatalf("Release: %v", err)
	}
	checkLease(t, "acquire after release", acquire(t, s, "dedupe", "node-a", ttl), "node-a", 4, true)
	if err := s.Release(ctx, "dedupe", "node-b", 3); err != nil {
		t.Errorf("Release of a lease no longer held: %v", err)
	}
	if err := s.Release(ctx, "never", "node-a", 1); err != nil {
		t.Errorf("Release of an unknown lease: %v", err)
	}

	if _, err := s.Acquire(ctx, "dedupe", "node-a", 0); err == nil {
		t.Errorf("Acquire with ttl 0: got no error")
	}
}

func TestLeaseRealExpiry(t *testing.T) {
	s := open(t, postgres.Config{PartitionInterval: -1})
	// While a lease is valid another owner is refused. A long TTL, so that
	// the two calls need not run within a short time of each other.
	checkLease(t, "acquire", acquire(t, s, "held", "node-a", 30*time.Second), "node-a", 1, true)
	checkLease(t, "while valid", acquire(t, s, "held", "node-b", 30*time.Second), "node-a", 1, false)

	// A short lease runs out by the database's clock, with no help, and
	// another owner takes it then, not before.
	const ttl = 300 * time.Millisecond
	first := acquire(t, s, "p", "node-a", ttl)
	checkLease(t, "acquire short", first, "node-a", 1, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := acquire(t, s, "p", "node-b", ttl)
		if l.Held {
			checkLease(t, "after expiry", l, "node-b", 2, true)
			// The statement sets expires_at to its now() + ttl.
			if took := l.Expires.Add(-ttl); took.Before(first.Expires) {
				t.Errorf("node-b took the lease at %v by the database's clock, before it expired at %v", took, first.Expires)
			}
			return
		}
		checkLease(t, "before expiry", l, "node-a", 1, false)
		if time.Now().After(deadline) {
			t.Fatalf("node-b never took the lease: %+v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaseConcurrentAcquire(t *testing.T) {
	s := open(t, postgres.Config{PartitionInterval: -1})
	const n = 10
	type race struct {
		name    string
		prepare func(t *testing.T)
		token   int64
	}
	races := []race{{"empty", func(*testing.T) {}, 1}}
	acquire(t, s, "expired", "node-old", time.Minute)
	for round := range 5 {
		races = append(races, race{fmt.Sprintf("expired/%d", round+1), func(t *testing.T) { expire(t, s, "expired") }, int64(round) + 2})
	}
	for _, c := range races {
		t.Run(c.name, func(t *testing.T) {
			c.prepare(t)
			name, _, _ := strings.Cut(c.name, "/")
			var wg sync.WaitGroup
			leases := make([]postgres.Lease, n)
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					leases[i], errs[i] = s.Acquire(context.Background(), name, "node-"+string(rune('a'+i)), time.Minute)
				})
			}
			close(start)
			wg.Wait()
			var winners []string
			for i, l := range leases {
				if errs[i] != nil {
					t.Fatalf("Acquire %d: %v", i, errs[i])
				}
				if l.Held {
					winners = append(winners, l.Owner)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("got %d holders %v, want exactly 1", len(winners), winners)
			}
			for i, l := range leases {
				checkLease(t, "caller "+string(rune('a'+i)), l, winners[0], c.token, l.Owner == "node-"+string(rune('a'+i)))
			}
		})
	}
}

func TestLeaseUnavailable(t *testing.T) {
	s := open(t, postgres.Config{PartitionInterval: -1})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := s.Acquire(ctx, "p", "node-a", time.Second); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Acquire past the deadline: got %v, want store.ErrUnavailable", err)
	}
	if err := s.Release(ctx, "p", "node-a", 1); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Release past the deadline: got %v, want store.ErrUnavailable", err)
	}
}
