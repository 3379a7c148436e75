package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Set MESHER_CLUSTER_TEST_LOG=1 to see the nodes' logs (memberlist's
// included) on stderr.
var testLogging = os.Getenv("MESHER_CLUSTER_TEST_LOG") != ""

const testCookie = "test-cookie-0123456789abcdef"

func testLogger() *slog.Logger {
	if testLogging {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a node on 127.0.0.<n>, any port, with default tuning except
// a short rejoin interval.
func testConfig(name string, n int, seeds ...string) Config {
	ip := fmt.Sprintf("127.0.0.%d", n)
	return Config{
		NodeName:       name,
		Cookie:         testCookie,
		BindAddr:       ip + ":0",
		Seeds:          seeds,
		HTTPAddr:       ip + ":18080",
		RejoinInterval: 500 * time.Millisecond,
		Logger:         testLogger(),
	}
}

func startNode(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c
}

// startCluster starts n nodes, node-1 … node-n on 127.0.0.1 … 127.0.0.n,
// each seeded with node-1, and waits until every node sees all of them
// alive. edit, if not nil, adjusts each config.
func startCluster(t testing.TB, n int, edit func(i int, cfg *Config)) []*Cluster {
	t.Helper()
	nodes := make([]*Cluster, n)
	for i := range n {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].Self().GossipAddr}
		}
		cfg := testConfig("node-"+strconv.Itoa(i+1), i+1, seeds...)
		if edit != nil {
			edit(i, &cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	waitConverged(t, nodes...)
	return nodes
}

// waitConverged waits until every node sees exactly nodes as its up
// members.
func waitConverged(t testing.TB, nodes ...*Cluster) {
	t.Helper()
	var want []string
	for _, c := range nodes {
		want = append(want, c.Name())
	}
	slices.Sort(want)
	waitFor(t, 15*time.Second, "membership to converge", func() string {
		for _, c := range nodes {
			if got := upNames(c); !slices.Equal(got, want) {
				return fmt.Sprintf("%s sees %v up, want %v", c.Name(), got, want)
			}
		}
		return ""
	})
}

func upNames(c *Cluster) []string {
	var names []string
	for _, m := range c.Members() {
		if m.State.Up() {
			names = append(names, m.Name)
		}
	}
	return names
}

// memberState returns c's view of the state of name, or "absent".
func stateOf(c *Cluster, name string) string {
	m, ok := c.Member(name)
	if !ok {
		return "absent"
	}
	return m.State.String()
}

// waitFor polls cond until it returns "" or timeout passes; cond returns
// what is still wrong.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder collects the events a node delivers to a subscriber.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func recordEvents(c *Cluster) *recorder {
	r := &recorder{}
	c.Subscribe(func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	})
	return r
}

// of returns the events about name.
func (r *recorder) of(name string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Member.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func kinds(events []Event) string {
	var s []string
	for _, e := range events {
		if e.Kind != MemberUpdated {
			s = append(s, fmt.Sprintf("%v(epoch %d)", e.Kind, e.Member.Epoch))
		}
	}
	return strings.Join(s, " ")
}

// network lets a test cut the gossip traffic between groups of nodes: each
// node's memberlist transport is wrapped by a cutTransport that drops the
// packets and refuses the connections that cross a cut.
type network struct {
	mu   sync.Mutex
	side map[string]int // gossip address -> side; absent: reaches all
}

func newNetwork() *network { return &network{side: map[string]int{}} }

// split puts each group of nodes on its own side of a partition.
func (n *network) split(groups ...[]*Cluster) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, g := range groups {
		for _, c := range g {
			n.side[c.Self().GossipAddr] = i + 1
		}
	}
}

func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.side)
}

func (n *network) cut(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, okA := n.side[from]
	b, okB := n.side[to]
	return okA && okB && a != b
}

// transport returns a memberlist transport on ip, any port, subject to the
// network's cuts.
func (n *network) transport(t testing.TB, ip string) memberlist.Transport {
	t.Helper()
	var nt *memberlist.NetTransport
	var err error
	for range 10 { // the UDP and TCP ports must both be free
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip},
			Logger:    log.New(io.Discard, "", 0),
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("transport on %s: %v", ip, err)
	}
	return &cutTransport{NetTransport: nt, net: n, self: net.JoinHostPort(ip, strconv.Itoa(nt.GetAutoBindPort()))}
}

// cutTransport wraps a NetTransport and overrides its sending methods,
// plain and node-aware, so that every packet and stream passes the cut.
// Cutting outgoing traffic on every node cuts both directions.
type cutTransport struct {
	*memberlist.NetTransport
	net  *network
	self string
}

var errCut = errors.New("partitioned")

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.net.cut(t.self, addr) {
		return time.Now(), nil // dropped on the floor, like UDP
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.net.cut(t.self, addr) {
		return nil, errCut
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

var _ memberlist.NodeAwareTransport = (*cutTransport)(nil)
