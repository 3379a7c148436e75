package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJoin(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for _, c := range nodes {
		if _, port, _ := net.SplitHostPort(c.Self().GossipAddr); port == "0" || port == "" {
			t.Errorf("%s: gossip address %q, want the real port", c.Name(), c.Self().GossipAddr)
		}
		for _, o := range nodes {
			got, ok := c.Member(o.Name())
			if !ok {
				t.Errorf("%s does not know %s", c.Name(), o.Name())
				continue
			}
			want := o.Self()
			if got.GossipAddr != want.GossipAddr || got.HTTPAddr != want.HTTPAddr || got.Epoch != want.Epoch {
				t.Errorf("%s sees %s as {%s %s epoch %d}, want {%s %s epoch %d}", c.Name(), o.Name(),
					got.GossipAddr, got.HTTPAddr, got.Epoch, want.GossipAddr, want.HTTPAddr, want.Epoch)
			}
		}
	}
}

// TestCrashAndLeave checks that a crash is seen as dead and a graceful
// leave as left, in Members and in events.
func TestCrashAndLeave(t *testing.T) {
	nodes := startCluster(t, 4, nil)
	a, b, crashed, leaver := nodes[0], nodes[1], nodes[2], nodes[3]
	events := recordEvents(a)

	crashed.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := leaver.Leave(ctx); err != nil {
		t.Errorf("leave: %v", err)
	}
	waitFor(t, 15*time.Second, "the crash and the leave to be seen", func() string {
		for _, c := range []*Cluster{a, b} {
			if got := stateOf(c, crashed.Name()); got != "dead" {
				return fmt.Sprintf("%s sees %s %s, want dead", c.Name(), crashed.Name(), got)
			}
			if got := stateOf(c, leaver.Name()); got != "left" {
				return fmt.Sprintf("%s sees %s %s, want left", c.Name(), leaver.Name(), got)
			}
		}
		return ""
	})
	tests := []struct {
		node string
		want EventKind
	}{
		{crashed.Name(), MemberFailed},
		{leaver.Name(), MemberLeft},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			waitFor(t, 5*time.Second, "the event", func() string {
				ev := events.of(tt.node)
				if len(ev) == 0 || ev[len(ev)-1].Kind != tt.want {
					return fmt.Sprintf("events %q, want the last one %v", kinds(ev), tt.want)
				}
				return ""
			})
		})
	}
}

// TestDetectionTime measures how long the survivors of a three-node
// cluster with the default tuning take to declare a crashed node dead
// (target ≤ 3 s). BenchmarkCrashDetection repeats it.
func TestDetectionTime(t *testing.T) {
	d := measureDetection(t)
	t.Logf("crash detected by both survivors after %v (target ≤ 3s)", d.Round(time.Millisecond))
	if d > 10*time.Second {
		t.Errorf("detection took %v, want under 10s", d)
	}
}

// measureDetection starts three nodes, crashes one (Shutdown without
// Leave: its sockets close as on kill -9) and returns the time until both
// others see it dead.
func measureDetection(t testing.TB) time.Duration {
	nodes := startCluster(t, 3, nil)
	crashed := nodes[2]
	seen := make([]time.Duration, 2)
	start := time.Now()
	crashed.Shutdown()
	waitFor(t, 20*time.Second, "the crash to be detected", func() string {
		for i, c := range nodes[:2] {
			if seen[i] == 0 && stateOf(c, crashed.Name()) == "dead" {
				seen[i] = time.Since(start)
			}
		}
		if seen[0] == 0 || seen[1] == 0 {
			return fmt.Sprintf("%s sees %s, %s sees %s", nodes[0].Name(), stateOf(nodes[0], crashed.Name()),
				nodes[1].Name(), stateOf(nodes[1], crashed.Name()))
		}
		return ""
	})
	return max(seen[0], seen[1])
}

// BenchmarkCrashDetection reports the crash detection time of a three-node
// cluster with the default tuning; run it with -benchtime=5x.
func BenchmarkCrashDetection(b *testing.B) {
	var total, worst time.Duration
	for range b.N {
		d := measureDetection(b)
		total += d
		worst = max(worst, d)
	}
	b.ReportMetric((total / time.Duration(b.N)).Seconds(), "s/detect")
	b.ReportMetric(worst.Seconds(), "s/worst")
}

// TestRestart checks that a node restarting with the same name is accepted
// as a new incarnation, on its old address and on a new one, and that the
// old incarnation's registry entries are replaced by the new one's.
func TestRestart(t *testing.T) {
	tests := []struct {
		name     string
		sameAddr bool
	}{
		{"same address", true},
		{"new address", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := startCluster(t, 3, nil)
			a, b, old := nodes[0], nodes[1], nodes[2]
			if err := old.SetLocalInstances([]Instance{{Processor: "p", ID: "before"}}); err != nil {
				t.Fatal(err)
			}
			waitRegistry(t, []*Cluster{a, b}, "p", "node-3/before")
			events := recordEvents(a)

			cfg := testConfig(old.Name(), 3, a.Self().GossipAddr)
			if tt.sameAddr {
				cfg.BindAddr = old.Self().GossipAddr
			}
			oldEpoch := old.Self().Epoch
			old.Shutdown()
			start := time.Now()
			restarted := startNode(t, cfg)
			if err := restarted.SetLocalInstances([]Instance{{Processor: "p", ID: "after"}}); err != nil {
				t.Fatal(err)
			}
			epoch := restarted.Self().Epoch
			if epoch <= oldEpoch {
				t.Fatalf("new epoch %d, want more than the old %d", epoch, oldEpoch)
			}
			waitFor(t, 15*time.Second, "the new incarnation to be accepted", func() string {
				for _, c := range []*Cluster{a, b} {
					m, _ := c.Member(old.Name())
					if !m.State.Up() || m.Epoch != epoch || m.GossipAddr != restarted.Self().GossipAddr {
						return fmt.Sprintf("%s sees %s %v epoch %d at %s, want up, epoch %d at %s", c.Name(), old.Name(),
							m.State, m.Epoch, m.GossipAddr, epoch, restarted.Self().GossipAddr)
					}
				}
				return ""
			})
			t.Logf("new incarnation accepted after %v", time.Since(start).Round(time.Millisecond))
			waitConverged(t, a, b, restarted)
			waitRegistry(t, []*Cluster{a, b, restarted}, "p", "node-3/after")

			// The old incarnation failed, then the new one joined.
			waitFor(t, 5*time.Second, "events", func() string {
				ev := events.of(old.Name())
				var failed, joined bool
				for _, e := range ev {
					switch {
					case e.Kind == MemberFailed && e.Member.Epoch == oldEpoch && !joined:
						failed = true
					case e.Kind == MemberJoined && e.Member.Epoch == epoch && failed:
						joined = true
					}
				}
				if !joined {
					return fmt.Sprintf("events %q, want failed(epoch %d) then joined(epoch %d)", kinds(ev), oldEpoch, epoch)
				}
				return ""
			})
		})
	}
}

// TestWrongCookie checks that a node with another cookie can neither join
// nor read the gossip, and that its signed requests are refused.
func TestWrongCookie(t *testing.T) {
	logs := &syncBuffer{}
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	a, b := nodes[0], nodes[1]
	if err := a.SetLocalInstances([]Instance{{Processor: "secret", ID: "1"}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("intruder", 3, a.Self().GossipAddr)
	cfg.Cookie = "another-cookie-0123456789"
	x := startNode(t, cfg)
	// Let it try a few times (it retries every second while alone).
	waitFor(t, 15*time.Second, "join attempts", func() string {
		if n := x.joins.Load(); n < 3 {
			return fmt.Sprintf("%d attempts, want 3", n)
		}
		return ""
	})
	if got := upNames(x); len(got) != 1 || got[0] != "intruder" {
		t.Errorf("intruder sees %v, want only itself", got)
	}
	for _, c := range nodes {
		if _, ok := c.Member("intruder"); ok {
			t.Errorf("%s knows the intruder", c.Name())
		}
	}
	if got := x.Registry()["secret"]; len(got) != 0 {
		t.Errorf("intruder reads the registry: %v", got)
	}
	if !strings.Contains(logs.String(), "decrypt") {
		t.Errorf("%s did not log refusing undecryptable gossip; log:\n%s", a.Name(), logs.String())
	}

	srv := httptest.NewServer(a.RequireNode(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := PeerFromContext(r.Context())
		io.WriteString(w, peer)
	})))
	defer srv.Close()
	for _, tt := range []struct {
		from       *Cluster
		wantStatus int
	}{
		{b, http.StatusOK},
		{x, http.StatusUnauthorized},
	} {
		t.Run(tt.from.Name(), func(t *testing.T) {
			resp, err := tt.from.Client().Post(srv.URL+"/internal/v1/ping", "text/plain", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK && string(body) != tt.from.Name() {
				t.Errorf("peer %q, want %q", body, tt.from.Name())
			}
		})
	}
}

// TestPartition cuts a three-node cluster in two, changes the registry on
// both sides, heals the network and checks that the nodes become one
// cluster again with one registry, thanks to the periodic rejoin.
func TestPartition(t *testing.T) {
	netw := newNetwork()
	nodes := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.Transport = netw.transport(t, fmt.Sprintf("127.0.0.%d", i+1))
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	if err := c.SetLocalInstances([]Instance{{Processor: "p", ID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	waitRegistry(t, nodes, "p", "node-3/c1")

	netw.split([]*Cluster{a, b}, []*Cluster{c})
	// Alone on its side, node-3 gets no confirmation of its suspicion, so
	// memberlist waits the longest suspicion timeout (about 7 s) before
	// declaring the others dead; node-3 reports them suspect meanwhile.
	waitFor(t, 20*time.Second, "node-3 to suspect node-1", func() string {
		if got := stateOf(c, a.Name()); got != "suspect" {
			return fmt.Sprintf("node-3 sees node-1 %s, want suspect", got)
		}
		return ""
	})
	waitFor(t, 20*time.Second, "the partition to be detected", func() string {
		for _, pair := range [][2]*Cluster{{a, c}, {b, c}, {c, a}, {c, b}} {
			if got := stateOf(pair[0], pair[1].Name()); got != "dead" {
				return fmt.Sprintf("%s sees %s %s, want dead", pair[0].Name(), pair[1].Name(), got)
			}
		}
		return ""
	})
	waitRegistry(t, []*Cluster{a, b}, "p")
	if err := c.SetLocalInstances([]Instance{{Processor: "p", ID: "c2"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetLocalInstances([]Instance{{Processor: "p", ID: "a1"}}); err != nil {
		t.Fatal(err)
	}
	waitRegistry(t, []*Cluster{a, b}, "p", "node-1/a1")
	waitRegistry(t, []*Cluster{c}, "p", "node-3/c2")

	netw.heal()
	start := time.Now()
	waitConverged(t, nodes...)
	waitRegistry(t, nodes, "p", "node-1/a1", "node-3/c2")
	t.Logf("one cluster again %v after healing", time.Since(start).Round(time.Millisecond))
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSuspect checks when a peer that stopped answering probes is reported
// suspect: after three probe rounds (a round probes each of the N-1 peers).
func TestSuspect(t *testing.T) {
	c := &Cluster{name: "me", cfg: Config{ProbeInterval: 400 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond}}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		alive int32 // alive members, self included
		state State
		after time.Duration // since the last ack
		want  State
	}{
		{"fresh", 3, StateAlive, time.Second, StateAlive},
		{"three rounds of two peers", 3, StateAlive, 2600 * time.Millisecond, StateAlive},
		{"past three rounds", 3, StateAlive, 2700 * time.Millisecond, StateSuspect},
		{"larger cluster waits longer", 6, StateAlive, 2700 * time.Millisecond, StateAlive},
		{"two nodes", 2, StateAlive, 1500 * time.Millisecond, StateSuspect},
		{"dead stays dead", 3, StateDead, time.Hour, StateDead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.numAlive.Store(tt.alive)
			m := &memberState{Member: Member{Name: "peer", State: tt.state}, lastAck: t0}
			if got := c.publicLocked(m, t0.Add(tt.after)).State; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	self := &memberState{Member: Member{Name: "me", State: StateAlive}, lastAck: t0}
	if got := c.publicLocked(self, t0.Add(time.Hour)).State; got != StateAlive {
		t.Errorf("self: got %v, want alive", got)
	}
}
