package cluster

// subscription is one Subscribe callback.
type subscription struct {
	fn func(Event)
}

// Subscribe registers fn to be called for every membership change of
// another node (joined, updated, failed, left), and returns a function that
// cancels the subscription. StateSuspect is computed when members are read
// and is not an event.
//
// Callbacks run one at a time, in the order the changes happened, on a
// single goroutine owned by the Cluster; they never run inside memberlist's
// locks, so they may call any Cluster method except Leave and Shutdown. A
// callback must not block for long: it delays every later event (gossip
// itself is never blocked; events queue up). Events are not replayed:
// subscribe first, then read Members for the current state. A callback may
// still be running, or be called once more with an event already being
// delivered, when cancel returns.
func (c *Cluster) Subscribe(fn func(Event)) (cancel func()) {
	s := &subscription{fn: fn}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.subs {
			if x == s {
				c.subs = append(c.subs[:i:i], c.subs[i+1:]...)
				return
			}
		}
	}
}

// emitLocked queues an event about m (as of now) for the subscribers.
// Changes of this node itself are not events.
func (c *Cluster) emitLocked(kind EventKind, m *memberState) {
	c.emitEventLocked(Event{Kind: kind, Member: m.Member}, m.Name)
}

func (c *Cluster) emitEventLocked(e Event, name string) {
	if name == c.name {
		return
	}
	c.pending = append(c.pending, e)
	select {
	case c.eventCh <- struct{}{}:
	default:
	}
}

// dispatchLoop delivers queued events to the subscribers.
func (c *Cluster) dispatchLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.eventCh:
		}
		c.mu.Lock()
		events, subs := c.pending, c.subs
		c.pending = nil
		c.mu.Unlock()
		for _, e := range events {
			for _, s := range subs {
				s.fn(e)
			}
		}
	}
}
