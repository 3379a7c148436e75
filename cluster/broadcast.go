package cluster

import (
	"strconv"
	"sync"

	"github.com/hashicorp/memberlist"
)

// recordBroadcast is a registry record queued for gossip. It is named by
// the record's (node, kind), so a newer version replaces an older one that
// is still queued.
type recordBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*recordBroadcast)(nil)

func newRecordBroadcast(r *record) *recordBroadcast {
	return &recordBroadcast{name: r.node + "/" + strconv.Itoa(int(r.kind)), msg: r.msg}
}

func (b *recordBroadcast) Name() string    { return b.name }
func (b *recordBroadcast) Message() []byte { return b.msg }
func (b *recordBroadcast) Finished()       {}
func (b *recordBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*recordBroadcast)
	return ok && ob.name == b.name
}

// sendLocked spreads one of this node's records: by gossip when it fits in
// a packet, else by the push loop, over TCP to every peer.
func (c *Cluster) sendLocked(r *record) {
	if len(r.msg) <= maxGossipRecord {
		c.queue.QueueBroadcast(newRecordBroadcast(r))
		return
	}
	c.kickPush()
}

func (c *Cluster) kickPush() {
	select {
	case c.pushCh <- struct{}{}:
	default:
	}
}

// pushLoop sends this node's records that are too big for gossip to every
// live peer over memberlist's encrypted TCP stream. Changes that happen
// during a push are coalesced into the next one. It also runs when a peer
// joins, which then gets them at once rather than at the next push/pull.
func (c *Cluster) pushLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.pushCh:
		}
		c.mu.Lock()
		var msgs [][]byte
		for _, r := range c.own {
			if r != nil && len(r.msg) > maxGossipRecord {
				msgs = append(msgs, r.msg)
			}
		}
		var peers []memberlist.Node
		if len(msgs) > 0 {
			for _, m := range c.members {
				if m.Name != c.name && m.State == StateAlive {
					peers = append(peers, m.node)
				}
			}
		}
		c.mu.Unlock()

		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				for _, msg := range msgs {
					if err := c.ml.SendReliable(&p, msg); err != nil {
						c.log.Debug("push registry record", "peer", p.Name, "err", err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
