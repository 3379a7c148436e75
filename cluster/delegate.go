package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. memberlist calls NotifyJoin,
// NotifyLeave, NotifyUpdate and NodeMeta with its node lock held, and
// NotifyMsg and GetBroadcasts on its packet and gossip loops: they only
// update this package's state under Cluster.mu, queue events for the
// dispatcher, and never call back into memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = delegate{}
	_ memberlist.EventDelegate    = delegate{}
	_ memberlist.ConflictDelegate = delegate{}
	_ memberlist.PingDelegate     = delegate{}
	_ memberlist.MergeDelegate    = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte {
	d.c.mu.Lock()
	b := d.c.meta.encode()
	d.c.mu.Unlock()
	if len(b) > limit {
		// Unreachable: config validation bounds the metadata to
		// MaxMetaSize, and memberlist panics past its limit.
		d.c.log.Error("node metadata too large", "size", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d delegate) NotifyMsg(b []byte) {
	if len(b) > 0 && b[0] == msgRecord {
		d.c.mergeRecord(b)
	}
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(join bool) []byte { return d.c.localState() }

func (d delegate) MergeRemoteState(buf []byte, join bool) { d.c.mergeState(buf) }

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.c.nodeAlive(n) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.nodeAlive(n) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.c.nodeGone(n) }

// NotifyConflict is called when a node's name is claimed from a second
// address. When the name is ours, peers still hold an earlier incarnation
// of this node (a restart on a new port before they declared the old one
// dead). They refuse us until it is dead, and accept us (memberlist's
// DeadNodeReclaimTime) at the next alive message they get from us after
// that; so join them again soon rather than at the next rejoin interval,
// until they list us at our address.
func (d delegate) NotifyConflict(existing, other *memberlist.Node) {
	if existing.Name != d.c.name {
		d.c.log.Debug("node name claimed from two addresses", "node", existing.Name, "known", existing.Address(), "other", other.Address())
		return
	}
	d.c.staleSelf(other.Address())
}

// NotifyMerge is called with a peer's node list at each join exchange.
// Peers listing this node at another address (alive or dead) still hold
// an earlier incarnation: keep joining them (see NotifyConflict).
func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	self := d.c.Self().GossipAddr
	if self == "" {
		return nil
	}
	for _, p := range peers {
		if p.Name == d.c.name && p.Address() != self {
			d.c.staleSelf(p.Address())
		}
	}
	return nil
}

func (d delegate) AckPayload() []byte { return nil }

func (d delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	d.c.acked(other.Name)
}
