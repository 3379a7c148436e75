package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults for Config. The failure-detection values are tuned for a LAN of a
// few nodes: with three nodes a crashed node is declared dead in about two
// seconds (memberlist's LAN defaults take five to nine). RATIONALE in doc.go.
const (
	// DefaultBindAddr is the gossip address (UDP and TCP) when
	// Config.BindAddr is empty.
	DefaultBindAddr = "127.0.0.1:7946"

	// DefaultProbeInterval is how often a node probes one peer
	// (round-robin), so each peer is probed every (N-1) intervals.
	DefaultProbeInterval = 400 * time.Millisecond

	// DefaultProbeTimeout is how long a direct probe waits for an ack
	// before asking other nodes to probe indirectly. A LAN round trip is
	// well under a millisecond; the margin absorbs GC pauses.
	DefaultProbeTimeout = 200 * time.Millisecond

	// DefaultSuspicionMult sets how long a suspect node has to refute
	// before it is declared dead: SuspicionMult × ProbeInterval ×
	// max(1, log10(N)), shortened by confirmations from other nodes.
	DefaultSuspicionMult = 3

	// DefaultGossipInterval is how often queued gossip (membership
	// changes, registry updates) is sent to a few random peers; it bounds
	// how fast a registry change spreads.
	DefaultGossipInterval = 100 * time.Millisecond

	// DefaultPushPullInterval is how often a node exchanges its full state
	// (members and registry) with one random peer over TCP: the backstop
	// for any gossip message that was lost.
	DefaultPushPullInterval = 5 * time.Second

	// DefaultRejoinInterval is how often the seeds that are not alive
	// members, and the members declared dead in the last few minutes, are
	// joined again, so a healed partition becomes one cluster (memberlist
	// does not do this itself). A node with no peer at all retries every
	// second.
	DefaultRejoinInterval = 5 * time.Second

	// DefaultLoadInterval is the minimum time between two load updates
	// gossiped by SetLoad; calls in between only record the latest value.
	DefaultLoadInterval = time.Second
)

// Limits on names and addresses. They keep node metadata within
// MaxMetaSize and every gossiped registry message small.
const (
	// MinCookieLen is the shortest accepted cookie. The cookie is the
	// only secret of the cluster: use a long random string.
	MinCookieLen = 16

	// MaxNodeNameLen bounds Config.NodeName. Names use only ASCII
	// letters, digits, '.', '_' and '-' because they travel in HTTP
	// headers.
	MaxNodeNameLen = 64

	// MaxHTTPAddrLen bounds Config.HTTPAddr.
	MaxHTTPAddrLen = 200

	// MaxFieldLen bounds every string of an Instance and every interest
	// key.
	MaxFieldLen = 128

	// MaxMetaSize is the largest node metadata this package produces
	// (memberlist panics past 512 bytes). A test asserts the worst case.
	MaxMetaSize = 256
)

// Config configures a cluster node. The zero value of every optional field
// means its default. Start validates it.
type Config struct {
	// NodeName is this node's unique name in the cluster. Required.
	// A node restarting with the same name is accepted as a new
	// incarnation of that node (see Member.Epoch).
	NodeName string

	// Cookie is the shared cluster secret, at least MinCookieLen bytes.
	// Gossip is encrypted and node-to-node HTTP calls are signed with
	// keys derived from it. Required.
	Cookie string

	// BindAddr is the gossip address, host:port, where host is an IP
	// address. Port 0 picks a free port (Self().GossipAddr reports it).
	// Default DefaultBindAddr. Ignored when Transport is set.
	BindAddr string

	// Seeds are gossip addresses (host:port) of nodes to join. A node
	// whose seeds are all unreachable starts alone and keeps trying.
	Seeds []string

	// HTTPAddr is this node's HTTP address (host:port) as peers must dial
	// it; it is advertised in the node metadata. Required; the host must
	// not be empty or unspecified (0.0.0.0). At most MaxHTTPAddrLen bytes.
	HTTPAddr string

	// Transport replaces memberlist's UDP/TCP transport, for tests that
	// drop packets to simulate partitions. Nil means a NetTransport bound
	// to BindAddr.
	Transport memberlist.Transport

	// ProbeInterval, ProbeTimeout and SuspicionMult tune failure
	// detection; defaults DefaultProbeInterval, DefaultProbeTimeout and
	// DefaultSuspicionMult. ProbeTimeout must be shorter than
	// ProbeInterval.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int

	// GossipInterval, default DefaultGossipInterval.
	GossipInterval time.Duration

	// PushPullInterval, default DefaultPushPullInterval.
	PushPullInterval time.Duration

	// RejoinInterval, default DefaultRejoinInterval.
	RejoinInterval time.Duration

	// LoadInterval, default DefaultLoadInterval.
	LoadInterval time.Duration

	// Logger receives the cluster's and memberlist's logs. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Now is the clock for timestamps (Member.Since, Instance.Since, the
	// boot epoch, request signatures). Nil means time.Now. memberlist's
	// own timers use the real clock.
	Now func() time.Time
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if c.PushPullInterval == 0 {
		c.PushPullInterval = DefaultPushPullInterval
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.LoadInterval == 0 {
		c.LoadInterval = DefaultLoadInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate checks a config that has its defaults applied.
func (c Config) validate() error {
	if err := validNodeName(c.NodeName); err != nil {
		return fmt.Errorf("node name %q: %w", c.NodeName, err)
	}
	if len(c.Cookie) < MinCookieLen {
		return fmt.Errorf("cookie: %d bytes, want at least %d", len(c.Cookie), MinCookieLen)
	}
	if c.Transport == nil {
		host, _, err := splitHostPort(c.BindAddr)
		if err != nil {
			return fmt.Errorf("bind address %q: %w", c.BindAddr, err)
		}
		if net.ParseIP(host) == nil {
			return fmt.Errorf("bind address %q: host must be an IP address", c.BindAddr)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := splitHostPort(s); err != nil {
			return fmt.Errorf("seed %q: %w", s, err)
		}
	}
	if len(c.HTTPAddr) > MaxHTTPAddrLen {
		return fmt.Errorf("http address: %d bytes, want at most %d", len(c.HTTPAddr), MaxHTTPAddrLen)
	}
	host, _, err := splitHostPort(c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http address %q: %w", c.HTTPAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("http address %q: needs a host peers can dial", c.HTTPAddr)
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"probe interval", c.ProbeInterval},
		{"probe timeout", c.ProbeTimeout},
		{"gossip interval", c.GossipInterval},
		{"push/pull interval", c.PushPullInterval},
		{"rejoin interval", c.RejoinInterval},
		{"load interval", c.LoadInterval},
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%s: %v is negative", d.name, d.d)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("probe timeout %v: must be shorter than the probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("suspicion multiplier %d: must be at least 1", c.SuspicionMult)
	}
	return nil
}

// splitHostPort splits host:port and checks the port is a number in range.
func splitHostPort(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q out of range", p)
	}
	return host, port, nil
}

// validNodeName reports why name cannot be a node name, or nil.
func validNodeName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > MaxNodeNameLen {
		return fmt.Errorf("%d bytes, want at most %d", len(name), MaxNodeNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return fmt.Errorf("byte %q at %d: use only letters, digits, '.', '_' and '-'", b, i)
		}
	}
	return nil
}
