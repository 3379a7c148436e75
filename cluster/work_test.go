package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHost is a Host whose processors keep every event: Process answers one
// 8-byte keep record per input event, as a real processor doing nothing
// would.
type fakeHost struct {
	mu       sync.Mutex
	modules  map[string][]byte // sha -> bytes this node has
	spawned  map[string]string // id -> processor
	fetched  int
	received []StreamMessage
	got      chan time.Time
	load     Load
	procs    []ProcessorLoad
	// publishGate, if set before the node serves, holds every Publish
	// until it is closed: a peer that cannot keep up.
	publishGate chan struct{}
}

func newFakeHost() *fakeHost {
	return &fakeHost{modules: map[string][]byte{}, spawned: map[string]string{}, got: make(chan time.Time, 1<<16)}
}

func (h *fakeHost) Spawn(ctx context.Context, name, sha string, fetch func(context.Context) ([]byte, error)) (string, error) {
	h.mu.Lock()
	_, have := h.modules[sha]
	h.mu.Unlock()
	if !have {
		b, err := fetch(ctx)
		if err != nil {
			return "", err
		}
		h.mu.Lock()
		h.modules[sha] = b
		h.fetched++
		h.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := fmt.Sprintf("%s-%d", name, len(h.spawned)+1)
	h.spawned[id] = name
	return id, nil
}

func (h *fakeHost) Retire(_ context.Context, id string) error {
	h.mu.Lock()
	delete(h.spawned, id)
	h.mu.Unlock()
	return nil
}

func (h *fakeHost) Process(_ context.Context, id string, settings, input []byte, count int) ([]byte, error) {
	h.mu.Lock()
	_, ok := h.spawned[id]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownInstance, id)
	}
	return keepAll(count), nil
}

func keepAll(count int) []byte {
	out := make([]byte, 8*count)
	for i := 0; i < count; i++ {
		binary.LittleEndian.PutUint32(out[8*i:], uint32(i))
	}
	return out
}

func (h *fakeHost) Module(_ context.Context, sha string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.modules[sha]
	if !ok {
		return nil, ErrUnknownModule
	}
	return b, nil
}

func (h *fakeHost) Publish(msgs []StreamMessage) {
	if h.publishGate != nil {
		<-h.publishGate
	}
	now := time.Now()
	h.mu.Lock()
	h.received = append(h.received, msgs...)
	h.mu.Unlock()
	for range msgs {
		h.got <- now
	}
}

func (h *fakeHost) Sample() (Load, []ProcessorLoad) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.load, h.procs
}

func (h *fakeHost) Instances() []Instance { return nil }

// peerNode is a cluster node with the node-to-node API served over HTTP.
type peerNode struct {
	*Cluster
	host *fakeHost
}

// startPeers starts n nodes on 127.0.0.1…n, each serving PeerHandler.
func startPeers(t testing.TB, n int) []*peerNode {
	t.Helper()
	nodes := make([]*peerNode, n)
	var all []*Cluster
	for i := range n {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].Self().GossipAddr}
		}
		cfg := testConfig(fmt.Sprintf("node-%d", i+1), i+1, seeds...)
		cfg.HTTPAddr = ln.Addr().String()
		c := startNode(t, cfg)
		h := newFakeHost()
		srv := &http.Server{Handler: c.PeerHandler(h)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		nodes[i] = &peerNode{Cluster: c, host: h}
		all = append(all, c)
	}
	waitConverged(t, all...)
	return nodes
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSpawnShipsTheModule(t *testing.T) {
	nodes := startPeers(t, 2)
	a, b := nodes[0], nodes[1]
	module := []byte("\x00asm pretend module bytes")
	sha := shaOf(module)
	a.host.modules[sha] = module
	ctx := context.Background()

	id, err := a.Spawn(ctx, b.Name(), "scrub", sha)
	if err != nil {
		t.Fatal(err)
	}
	if b.host.fetched != 1 || string(b.host.modules[sha]) != string(module) {
		t.Fatalf("peer fetched %d modules, has %q", b.host.fetched, b.host.modules[sha])
	}
	// A second spawn uses what the peer already has.
	if _, err := a.Spawn(ctx, b.Name(), "scrub", sha); err != nil || b.host.fetched != 1 {
		t.Fatalf("second spawn: %v, fetched %d times", err, b.host.fetched)
	}
	out, err := a.ProcessOn(ctx, b.Name(), id, []byte(`{}`), []byte("input"), 3)
	if err != nil || string(out) != string(keepAll(3)) {
		t.Fatalf("process: %v %x", err, out)
	}
	if err := a.Retire(ctx, b.Name(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ProcessOn(ctx, b.Name(), id, nil, nil, 1); !errors.Is(err, errGone) {
		t.Fatalf("batch for a retired instance: got %v, want errGone", err)
	}

	// Bytes that do not match the hash are refused.
	other := shaOf([]byte("something else"))
	a.host.modules[other] = module
	if _, err := a.Spawn(ctx, b.Name(), "scrub", other); err == nil || !strings.Contains(err.Error(), "hash") {
		t.Fatalf("got %v, want a hash mismatch", err)
	}
	// Unknown modules are reported as such.
	if _, err := a.Spawn(ctx, b.Name(), "scrub", strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("got %v, want the requester's 404", err)
	}
}

func TestPlanner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	peer := func(name string, busy float64) Member {
		return Member{Name: name, State: StateAlive, Load: Load{Busy: busy}}
	}
	procs := []ProcessorLoad{{Name: "light", SHA256: "l", Busy: 1}, {Name: "heavy", SHA256: "h", Busy: 5}, {Name: "single", SHA256: "s", Busy: 9, Singleton: true}}
	type step struct {
		busy  float64
		peers []Member
		want  string // "", "spawn heavy on b", "retire heavy on b"
	}
	cfg := PlacementConfig{High: 0.75, Low: 0.4, Samples: 3, MinStay: time.Minute, Margin: 0.25}
	tests := []struct {
		name  string
		steps []step
	}{
		{"three samples above high spawn the busiest replicated processor on the least busy peer", []step{
			{0.9, []Member{peer("b", 0.1), peer("c", 0.2)}, ""},
			{0.9, []Member{peer("b", 0.1), peer("c", 0.2)}, ""},
			{0.9, []Member{peer("b", 0.1), peer("c", 0.2)}, "spawn heavy on b"},
		}},
		{"a spike of two samples moves nothing", []step{
			{0.9, []Member{peer("b", 0.1)}, ""},
			{0.9, []Member{peer("b", 0.1)}, ""},
			{0.5, []Member{peer("b", 0.1)}, ""},
			{0.9, []Member{peer("b", 0.1)}, ""},
		}},
		{"oscillating load never flaps", []step{
			{0.9, []Member{peer("b", 0.1)}, ""}, {0.2, []Member{peer("b", 0.1)}, ""},
			{0.9, []Member{peer("b", 0.1)}, ""}, {0.2, []Member{peer("b", 0.1)}, ""},
			{0.9, []Member{peer("b", 0.1)}, ""}, {0.2, []Member{peer("b", 0.1)}, ""},
		}},
		{"no peer below low", []step{
			{0.95, []Member{peer("b", 0.5)}, ""}, {0.95, []Member{peer("b", 0.5)}, ""}, {0.95, []Member{peer("b", 0.5)}, ""},
		}},
		{"a dead peer is not a target", []step{
			{0.95, []Member{{Name: "b", State: StateDead}}, ""}, {0.95, []Member{{Name: "b", State: StateDead}}, ""}, {0.95, []Member{{Name: "b", State: StateDead}}, ""},
		}},
		{"the next spawn needs three more samples", []step{
			{0.9, []Member{peer("b", 0.1)}, ""}, {0.9, []Member{peer("b", 0.1)}, ""}, {0.9, []Member{peer("b", 0.1)}, "spawn heavy on b"},
			{0.9, []Member{peer("b", 0.1), peer("c", 0.1)}, ""}, {0.9, []Member{peer("b", 0.1), peer("c", 0.1)}, ""},
			{0.9, []Member{peer("b", 0.1), peer("c", 0.1)}, "spawn heavy on c"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPlanner(cfg)
			var placed []Placement
			now := t0
			for i, s := range tt.steps {
				now = now.Add(5 * time.Second)
				acts := p.Plan(now, Load{Busy: s.busy}, s.peers, procs, placed)
				got := ""
				for _, a := range acts {
					if a.Spawn {
						got = "spawn " + a.Processor + " on " + a.Peer
						placed = append(placed, Placement{Processor: a.Processor, SHA256: a.SHA256, Peer: a.Peer, ID: "x", Since: now})
					} else {
						got = "retire " + a.Processor + " on " + a.Retire.Peer
					}
				}
				if got != s.want {
					t.Fatalf("step %d: got %q, want %q", i, got, s.want)
				}
			}
		})
	}

	t.Run("retirement waits for the minimum stay", func(t *testing.T) {
		p := NewPlanner(cfg)
		placed := []Placement{{Processor: "heavy", SHA256: "h", Peer: "b", ID: "1", Since: t0}}
		for i := 1; i <= 6; i++ {
			now := t0.Add(time.Duration(i) * 10 * time.Second)
			acts := p.Plan(now, Load{Busy: 0.1}, []Member{peer("b", 0.1)}, procs, placed)
			if i < 6 && len(acts) > 0 {
				t.Fatalf("retired after %v, before the minimum stay", now.Sub(t0))
			}
			if i == 6 && (len(acts) != 1 || acts[0].Spawn || acts[0].Retire.ID != "1") {
				t.Fatalf("got %+v at the minimum stay, want the placement retired", acts)
			}
		}
	})
}

// TestWorkReplacesPlacementsOfADeadPeer kills a peer that runs a placement
// and checks the placement moves to another peer right after the death is
// detected.
func TestWorkReplacesPlacementsOfADeadPeer(t *testing.T) {
	nodes := startPeers(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	module := []byte("module")
	sha := shaOf(module)
	a.host.modules[sha] = module
	a.SetLoad(Load{Busy: 0.9})
	w := a.StartWork(a.host, PlacementConfig{SampleInterval: time.Hour})
	defer w.Stop(context.Background())
	w.mu.Lock()
	ok := w.spawnLocked(context.Background(), "heavy", sha, b.Name(), "test")
	w.mu.Unlock()
	if !ok {
		t.Fatal("spawn on b failed")
	}
	// Forwarded batches reach b.
	forwarded := false
	for i := 0; i < 4 && !forwarded; i++ {
		out, fwd, err := w.Forward(context.Background(), "heavy", sha, nil, []byte("in"), 2)
		if fwd {
			if err != nil || string(out) != string(keepAll(2)) {
				t.Fatalf("forward: %v %x", err, out)
			}
			forwarded = true
		}
	}
	if !forwarded {
		t.Fatal("no batch was forwarded in 4 tries with one placement")
	}
	waitFor(t, 5*time.Second, "a's load to reach the peers", func() string {
		if m, _ := c.Member(a.Name()); m.Load.Busy < 0.9 {
			return "c sees a's load as " + fmt.Sprint(m.Load.Busy)
		}
		return ""
	})
	killed := time.Now()
	b.Shutdown()
	var detected time.Time
	waitFor(t, 10*time.Second, "b's placement to move to c", func() string {
		if detected.IsZero() && stateOf(a.Cluster, b.Name()) == "dead" {
			detected = time.Now()
		}
		for _, p := range w.Placements() {
			if p.Peer == c.Name() {
				return ""
			}
		}
		return fmt.Sprintf("placements %+v", w.Placements())
	})
	t.Logf("b detected dead %.2fs after it stopped; placement moved to c %.2fs after detection",
		detected.Sub(killed).Seconds(), time.Since(detected).Seconds())
	for _, p := range w.Placements() {
		if p.Peer == b.Name() {
			t.Errorf("placement on dead b kept: %+v", p)
		}
	}
}

// BenchmarkForward measures what forwarding a batch of 100 ~1 KB events to
// a peer adds over calling the host directly: the signed HTTP round trip on
// loopback. Target: p99 at most 5 ms.
func BenchmarkForward(b *testing.B) {
	nodes := startPeers(b, 2)
	a, p := nodes[0], nodes[1]
	module := []byte("module")
	sha := shaOf(module)
	a.host.modules[sha] = module
	ctx := context.Background()
	id, err := a.Spawn(ctx, p.Name(), "noop", sha)
	if err != nil {
		b.Fatal(err)
	}
	input := make([]byte, 100*1024)
	settings := []byte(`{"keys":["password"]}`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := a.ProcessOn(ctx, p.Name(), id, settings, input, 100); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// TestRelayAnnouncesDrops relays more messages than a stalled peer can
// queue: the peer receives the ones kept, and "lagged" messages that count
// exactly the ones dropped, so its subscribers learn what they missed.
func TestRelayAnnouncesDrops(t *testing.T) {
	nodes := startPeers(t, 2)
	a, p := nodes[0], nodes[1]
	p.host.publishGate = make(chan struct{})
	pr := p.StartRelay(func() []string { return []string{"proj"} })
	defer pr.Stop()
	r := a.StartRelay(func() []string { return nil })
	defer r.Stop()
	waitFor(t, 5*time.Second, "p's interest to reach a", func() string {
		if !r.Watched("proj") {
			return "not watched yet"
		}
		return ""
	})
	// The first push stalls in the peer with at most relayBatch messages;
	// the queue then fills and drops the oldest.
	const total = relayQueue + 2*relayBatch
	for i := range total {
		r.Relay(StreamMessage{ProjectID: "proj", Type: "event", Payload: []byte(strconv.Itoa(i))})
	}
	if r.Dropped() < relayBatch {
		t.Fatalf("relay dropped %d messages, want at least %d", r.Dropped(), relayBatch)
	}
	close(p.host.publishGate)
	r.Relay(StreamMessage{ProjectID: "proj", Type: "event", Payload: []byte("last")})

	events, lagged := 0, 0
	waitFor(t, 10*time.Second, "every message or its notice", func() string {
		p.host.mu.Lock()
		defer p.host.mu.Unlock()
		events, lagged = 0, 0
		for _, m := range p.host.received {
			switch {
			case m.Type == TypeLagged && m.ProjectID == "proj":
				lagged += m.Dropped
			case m.Type == "event":
				events++
			}
		}
		if events+lagged != total+1 {
			return fmt.Sprintf("%d events and %d announced drops of %d", events, lagged, total+1)
		}
		return ""
	})
	if uint64(lagged) != r.Dropped() {
		t.Errorf("peer told of %d drops, relay counted %d", lagged, r.Dropped())
	}
	p.host.mu.Lock()
	last := p.host.received[len(p.host.received)-1]
	p.host.mu.Unlock()
	if string(last.Payload) != "last" {
		t.Errorf("last message received: %q, want the newest", last.Payload)
	}
}

// BenchmarkRelay measures the latency of a stream message from the node
// that commits an event to a subscriber's node. Target: p99 ≤ 100 ms.
func BenchmarkRelay(b *testing.B) {
	nodes := startPeers(b, 2)
	a, p := nodes[0], nodes[1]
	pr := p.StartRelay(func() []string { return []string{"proj"} })
	defer pr.Stop()
	r := a.StartRelay(func() []string { return nil })
	defer r.Stop()
	waitFor(b, 5*time.Second, "p's interest to reach a", func() string {
		if !r.Watched("proj") {
			return "not watched yet"
		}
		return ""
	})
	payload := []byte(`{"type":"event","id":"x","message":"` + strings.Repeat("m", 800) + `"}`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r.Relay(StreamMessage{ProjectID: "proj", Type: "event", Payload: payload})
		got := <-p.host.got
		lat = append(lat, got.Sub(start))
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // a steady stream, not one burst
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
