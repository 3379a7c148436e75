package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// instanceNames returns "node/id" for each instance of processor in r.
func instanceNames(r Registry, processor string) []string {
	var out []string
	for _, in := range r[processor] {
		out = append(out, in.Node+"/"+in.ID)
	}
	return out
}

// waitRegistry waits until every node lists exactly want ("node/id", in
// registry order) for processor.
func waitRegistry(t testing.TB, nodes []*Cluster, processor string, want ...string) {
	t.Helper()
	waitFor(t, 15*time.Second, "the registry to converge", func() string {
		for _, c := range nodes {
			if got := instanceNames(c.Registry(), processor); !slices.Equal(got, want) {
				return fmt.Sprintf("%s lists %v for %s, want %v", c.Name(), got, processor, want)
			}
		}
		return ""
	})
}

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestRegistry checks convergence after changes on one node, the content
// of the entries, and their removal when the node dies.
func TestRegistry(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]

	since := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	start := time.Now()
	err := a.SetLocalInstances([]Instance{
		{Processor: "enrich", ID: "2", Version: sha, State: "running", Since: since},
		{Processor: "enrich", ID: "1", Version: sha, State: "running", Since: since},
		{Processor: "scrub", ID: "s", Version: "v-not-a-hash", Kind: KindSpawned, For: "node-2", State: "starting", Since: since},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitRegistry(t, nodes, "enrich", "node-1/1", "node-1/2")
	t.Logf("registry converged on 3 nodes %v after SetLocalInstances", time.Since(start).Round(time.Millisecond))

	got := c.Registry()["scrub"]
	want := []Instance{{Processor: "scrub", ID: "s", Node: "node-1", Version: "v-not-a-hash", Kind: KindSpawned, For: "node-2", State: "starting", Since: since}}
	if !slices.EqualFunc(got, want, equalInstances) {
		t.Errorf("node-3 lists scrub as %+v, want %+v", got, want)
	}
	if got := c.Registry()["enrich"][0]; got.Version != sha || got.Kind != KindLocal {
		t.Errorf("enrich instance: version %q kind %q, want %q %q", got.Version, got.Kind, sha, KindLocal)
	}

	// Changes on two nodes; a removal.
	if err := b.SetLocalInstances([]Instance{{Processor: "enrich", ID: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetLocalInstances([]Instance{{Processor: "enrich", ID: "1", Version: sha, State: "running", Since: since}}); err != nil {
		t.Fatal(err)
	}
	waitRegistry(t, nodes, "enrich", "node-1/1", "node-2/b")
	waitRegistry(t, nodes, "scrub")

	// A dead node's entries disappear.
	a.Shutdown()
	waitRegistry(t, []*Cluster{b, c}, "enrich", "node-2/b")
}

func TestSetLocalInstancesErrors(t *testing.T) {
	c := startNode(t, testConfig("solo", 1))
	long := strings.Repeat("x", MaxFieldLen+1)
	tests := []struct {
		name string
		in   []Instance
		want string
	}{
		{"no processor", []Instance{{ID: "1"}}, "processor is empty"},
		{"no id", []Instance{{Processor: "p"}}, "id is empty"},
		{"long processor", []Instance{{Processor: long, ID: "1"}}, "processor: 129 bytes"},
		{"long state", []Instance{{Processor: "p", ID: "1", State: long}}, "state: 129 bytes"},
		{"long for", []Instance{{Processor: "p", ID: "1", For: strings.Repeat("n", MaxNodeNameLen+1)}}, "for: 65 bytes"},
		{"duplicate", []Instance{{Processor: "p", ID: "1"}, {Processor: "p", ID: "1"}}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.SetLocalInstances(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := c.SetInterests([]string{""}); err == nil {
		t.Errorf("SetInterests with an empty key: got no error")
	}
}

// TestSince checks that an instance published again without a time keeps
// the time it was first published with.
func TestSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	cfg := testConfig("solo", 1)
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := startNode(t, cfg)
	set := func(ids ...string) {
		var list []Instance
		for _, id := range ids {
			list = append(list, Instance{Processor: "p", ID: id})
		}
		if err := c.SetLocalInstances(list); err != nil {
			t.Fatal(err)
		}
	}
	set("1")
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	set("1", "2")
	got := c.Registry()["p"]
	if len(got) != 2 || !got[0].Since.Equal(now.Add(-time.Minute)) || !got[1].Since.Equal(now) {
		t.Errorf("got %+v, want instance 1 since %v and 2 since %v", got, now.Add(-time.Minute), now)
	}
}

// TestLargeRecords checks records too big for a gossip packet, which go to
// peers over TCP.
func TestLargeRecords(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	var list []Instance
	var want []string
	for i := range 60 {
		id := fmt.Sprintf("instance-%03d", i)
		list = append(list, Instance{Processor: "big", ID: id, Version: sha, State: "running"})
		want = append(want, "node-2/"+id)
	}
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("project-%08d-0000-0000-0000-000000000000", i))
	}
	c := nodes[1]
	c.mu.Lock()
	size := len((&record{kind: recordInstances, instances: list}).encode())
	c.mu.Unlock()
	if size <= maxGossipRecord {
		t.Fatalf("test record is %d bytes, want more than %d", size, maxGossipRecord)
	}
	start := time.Now()
	if err := c.SetLocalInstances(list); err != nil {
		t.Fatal(err)
	}
	if err := c.SetInterests(keys); err != nil {
		t.Fatal(err)
	}
	waitRegistry(t, nodes, "big", want...)
	waitFor(t, 15*time.Second, "interests", func() string {
		for _, n := range nodes {
			if got := n.Interested(keys[99]); len(got) != 1 || got[0].Name != c.Name() {
				return fmt.Sprintf("%s: %v interested, want %s", n.Name(), got, c.Name())
			}
		}
		return ""
	})
	t.Logf("%d-byte record converged in %v", size, time.Since(start).Round(time.Millisecond))
}

func TestInterests(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	names := func(ms []Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	steps := []struct {
		name string
		set  func() error
		want map[string][]string // key -> interested nodes
	}{
		{"b", func() error { return b.SetInterests([]string{"p1"}) },
			map[string][]string{"p1": {"node-2"}, "p2": nil}},
		{"c", func() error { return c.SetInterests([]string{"p2", "p1", "p1"}) },
			map[string][]string{"p1": {"node-2", "node-3"}, "p2": {"node-3"}}},
		{"b drops", func() error { return b.SetInterests(nil) },
			map[string][]string{"p1": {"node-3"}, "p2": {"node-3"}}},
		{"c crashes", func() error { return c.Shutdown() },
			map[string][]string{"p1": nil, "p2": nil}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.set(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 15*time.Second, "interests", func() string {
				for _, n := range []*Cluster{a, b} {
					for key, want := range st.want {
						if got := names(n.Interested(key)); !slices.Equal(got, want) {
							return fmt.Sprintf("%s: Interested(%q) = %v, want %v", n.Name(), key, got, want)
						}
					}
				}
				return ""
			})
		})
	}
}

// TestHammer runs SetLocalInstances, SetInterests, SetLoad and the readers
// concurrently on two nodes (run with -race), then checks that the last
// writes win everywhere.
func TestHammer(t *testing.T) {
	nodes := startCluster(t, 2, func(i int, cfg *Config) { cfg.LoadInterval = 50 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	const writers, iterations = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range iterations {
				var list []Instance
				for j := range r.IntN(8) {
					list = append(list, Instance{Processor: "p" + strconv.Itoa(j%3), ID: fmt.Sprintf("w%d-%d", w, j), State: "running"})
				}
				if err := a.SetLocalInstances(list); err != nil {
					t.Error(err)
					return
				}
				if err := a.SetInterests([]string{fmt.Sprint("k", r.IntN(5))}); err != nil {
					t.Error(err)
					return
				}
				a.SetLoad(Load{EventsPerSec: float64(i), QueueDepth: i, Busy: r.Float64(), Instances: len(list)})
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, c := range nodes {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, list := range c.Registry() {
					for _, in := range list {
						_ = in.ID
					}
				}
				c.Interested("k1")
				c.Members()
				d := c.Describe()
				d.Registry["mine"] = nil // a Describe copy is the caller's
			}
		})
	}
	wg.Wait()
	final := []Instance{{Processor: "final", ID: "1"}}
	if err := a.SetLocalInstances(final); err != nil {
		t.Fatal(err)
	}
	if err := a.SetInterests([]string{"final"}); err != nil {
		t.Fatal(err)
	}
	a.SetLoad(Load{QueueDepth: 4242})
	waitRegistry(t, nodes, "final", "node-1/1")
	waitRegistry(t, nodes, "p0")
	waitFor(t, 15*time.Second, "the last load and interests", func() string {
		m, _ := b.Member(a.Name())
		if m.Load.QueueDepth != 4242 {
			return fmt.Sprintf("node-2 sees queue depth %d, want 4242", m.Load.QueueDepth)
		}
		if got := b.Interested("final"); len(got) != 1 {
			return fmt.Sprintf("node-2: %d interested in final, want 1", len(got))
		}
		return ""
	})
	close(stop)
	readers.Wait()
	if got := a.Registry()["mine"]; got != nil {
		t.Errorf("modifying a Describe result changed the registry: %v", got)
	}
}

// BenchmarkRegistryConvergence measures the time from SetLocalInstances on
// one node of three until the other two list the change.
func BenchmarkRegistryConvergence(b *testing.B) {
	nodes := startCluster(b, 3, nil)
	b.ResetTimer()
	for i := range b.N {
		id := strconv.Itoa(i)
		if err := nodes[0].SetLocalInstances([]Instance{{Processor: "p", ID: id}}); err != nil {
			b.Fatal(err)
		}
		waitRegistryFast(b, nodes[1:], "node-1/"+id)
	}
}

// waitRegistryFast polls every 100 µs so that the poll does not dominate
// the measurement.
func waitRegistryFast(b *testing.B, nodes []*Cluster, want string) {
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range nodes {
		for {
			if got := instanceNames(c.Registry(), "p"); len(got) == 1 && got[0] == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never listed %s", c.Name(), want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// BenchmarkRegistryRead is the cost of Registry when nothing changed.
func BenchmarkRegistryRead(b *testing.B) {
	c := startNode(b, testConfig("solo", 1))
	if err := c.SetLocalInstances([]Instance{{Processor: "p", ID: "1"}, {Processor: "q", ID: "2"}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(c.Registry()) != 2 {
			b.Fatal("wrong registry")
		}
	}
}
