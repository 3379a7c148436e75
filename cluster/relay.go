package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Relay tuning.
const (
	// interestInterval is how often a node republishes which projects its
	// subscribers watch.
	interestInterval = 100 * time.Millisecond
	// relayQueue bounds the messages waiting for one peer; past it the
	// oldest are dropped, as the hub does for a slow subscriber.
	relayQueue = 4096
	// relayBatch bounds the messages sent to a peer in one request.
	relayBatch = 512
	// relayTimeout bounds one push to a peer.
	relayTimeout = 5 * time.Second
)

// Relay carries live-stream messages to the nodes whose subscribers watch
// their project, over direct HTTP calls (not gossip): one queue and one
// sender per peer, messages pushed in batches as they come. Each message is
// relayed once by the node that committed the event, and the receiving node
// publishes it only to its own subscribers, so every subscriber in the
// cluster gets it exactly once. Interests (the projects a node's
// subscribers watch) travel by gossip.
type Relay struct {
	c         *Cluster
	interests func() []string

	mu       sync.Mutex
	peers    map[string]*relayPeer
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	dropped  atomic.Uint64
}

type relayPeer struct {
	mu    sync.Mutex
	queue []StreamMessage
	// lost counts, per project, messages dropped since the peer was last
	// reached; the next push starts with a "lagged" message for each.
	lost map[string]int
	wake chan struct{}
}

// TypeLagged is the type of a message that tells a peer how many of a
// project's messages were dropped on the way to it.
const TypeLagged = "lagged"

// dropLocked counts msgs as lost for their projects; p.mu is held.
func (p *relayPeer) dropLocked(msgs ...StreamMessage) {
	if p.lost == nil {
		p.lost = map[string]int{}
	}
	for _, m := range msgs {
		if m.Type == TypeLagged {
			p.lost[m.ProjectID] += m.Dropped
		} else {
			p.lost[m.ProjectID]++
		}
	}
}

// StartRelay starts relaying. interests returns the projects this node's
// subscribers watch; it is polled.
func (c *Cluster) StartRelay(interests func() []string) *Relay {
	r := &Relay{c: c, interests: interests, peers: map[string]*relayPeer{}, stop: make(chan struct{})}
	r.wg.Add(1)
	go r.interestLoop()
	return r
}

func (r *Relay) interestLoop() {
	defer r.wg.Done()
	t := time.NewTicker(interestInterval)
	defer t.Stop()
	var last []string
	for {
		keys := r.interests()
		slices.Sort(keys)
		if !slices.Equal(keys, last) {
			if err := r.c.SetInterests(keys); err != nil {
				r.c.log.Warn("publish stream interests", "err", err)
			}
			last = keys
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// Watched reports whether a subscriber on another node watches project.
func (r *Relay) Watched(project string) bool {
	for _, m := range r.c.Interested(project) {
		if m.Name != r.c.Name() {
			return true
		}
	}
	return false
}

// Relay queues m for every other node that watches its project. It never
// blocks.
func (r *Relay) Relay(m StreamMessage) {
	for _, member := range r.c.Interested(m.ProjectID) {
		if member.Name == r.c.Name() {
			continue
		}
		p := r.peer(member.Name)
		p.mu.Lock()
		if len(p.queue) >= relayQueue {
			p.dropLocked(p.queue[0])
			p.queue = p.queue[1:]
			r.dropped.Add(1)
		}
		p.queue = append(p.queue, m)
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped returns the messages dropped because a peer could not keep up.
func (r *Relay) Dropped() uint64 { return r.dropped.Load() }

func (r *Relay) peer(name string) *relayPeer {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.peers[name]
	if !ok {
		p = &relayPeer{wake: make(chan struct{}, 1)}
		r.peers[name] = p
		r.wg.Add(1)
		go r.send(name, p)
	}
	return p
}

// send pushes a peer's queue to it until the relay stops.
func (r *Relay) send(name string, p *relayPeer) {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-p.wake:
		}
		for {
			p.mu.Lock()
			n := min(len(p.queue), relayBatch)
			if n == 0 {
				// Notices of losses wait for the next message, as a
				// subscriber's own notice does.
				p.mu.Unlock()
				break
			}
			batch := make([]StreamMessage, 0, len(p.lost)+n)
			for project, lost := range p.lost {
				batch = append(batch, StreamMessage{ProjectID: project, Type: TypeLagged, Dropped: lost})
			}
			clear(p.lost)
			batch = append(batch, p.queue[:n]...)
			p.queue = p.queue[n:]
			p.mu.Unlock()
			body, _ := json.Marshal(batch)
			ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
			_, _, err := r.c.call(ctx, name, http.MethodPost, "/internal/v1/stream", body)
			cancel()
			if err != nil {
				r.dropped.Add(uint64(n))
				p.mu.Lock()
				p.dropLocked(batch...)
				p.mu.Unlock()
				r.c.log.Debug("relay stream messages", "peer", name, "messages", n, "err", err)
			}
		}
	}
}

// Stop stops relaying. Calling it again does nothing.
func (r *Relay) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}
