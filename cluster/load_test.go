package cluster

import (
	"fmt"
	"testing"
	"time"
)

// TestSetLoad checks that a load reaches peers and that frequent calls are
// coalesced into at most one update per LoadInterval.
func TestSetLoad(t *testing.T) {
	const interval = 200 * time.Millisecond
	nodes := startCluster(t, 2, func(i int, cfg *Config) { cfg.LoadInterval = interval })
	a, b := nodes[0], nodes[1]
	events := recordEvents(b)

	start := time.Now()
	calls := 0
	for time.Since(start) < time.Second {
		calls++
		a.SetLoad(Load{EventsPerSec: float64(calls), QueueDepth: calls, Busy: 0.5, Instances: 2})
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	if got := a.Self().Load.QueueDepth; got != calls {
		t.Errorf("Self().Load.QueueDepth = %d, want the last value %d", got, calls)
	}
	waitFor(t, 15*time.Second, "the last load", func() string {
		if m, _ := b.Member(a.Name()); m.Load.QueueDepth != calls {
			return fmt.Sprintf("node-2 sees queue depth %d, want %d", m.Load.QueueDepth, calls)
		}
		return ""
	})
	updates := 0
	for _, e := range events.of(a.Name()) {
		if e.Kind == MemberUpdated {
			updates++
		}
	}
	// One update per interval, plus the first and the last.
	if most := int(elapsed/interval) + 2; updates > most {
		t.Errorf("%d SetLoad calls in %v gave %d updates, want at most %d", calls, elapsed.Round(time.Millisecond), updates, most)
	}
	t.Logf("%d SetLoad calls in %v gave %d gossiped updates", calls, elapsed.Round(time.Millisecond), updates)
}
