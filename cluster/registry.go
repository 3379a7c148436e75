package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Instance kinds.
const (
	// KindLocal is an instance a node runs for its own pipelines.
	KindLocal = "local"
	// KindSpawned is an instance a node runs on behalf of another node
	// (Instance.For), which ships it work.
	KindSpawned = "spawned"
)

// Instance is one running instance of a processor, as published by the node
// that runs it.
type Instance struct {
	Processor string `json:"processor"`
	// ID is unique among the node's instances of Processor.
	ID string `json:"id"`
	// Node runs the instance; SetLocalInstances sets it.
	Node string `json:"node"`
	// Version is the module's SHA-256, lowercase hex.
	Version string `json:"version"`
	// Kind is KindLocal or KindSpawned (empty means KindLocal).
	Kind string `json:"kind"`
	// For is the node a spawned instance works for.
	For string `json:"for,omitempty"`
	// State is the host's word for the instance ("running", "draining",
	// "quarantined", …); the cluster only carries it.
	State string `json:"state"`
	// Since is when the instance entered State, to the millisecond. Zero
	// in SetLocalInstances means: unchanged if the instance was already
	// published, else now.
	Since time.Time `json:"since"`
}

// Registry maps a processor name to its instances on every live node,
// sorted by node then ID. It is a routing cache, not the source of truth
// (see the package doc).
type Registry map[string][]Instance

// Clone returns a deep copy that the caller may modify.
func (r Registry) Clone() Registry {
	out := make(Registry, len(r))
	for p, list := range r {
		out[p] = slices.Clone(list)
	}
	return out
}

// snapshot is the registry view built from the records of live nodes. It is
// immutable once published.
type snapshot struct {
	registry  Registry
	interests map[string][]string // key -> node names, sorted
	byNode    map[string][]string // node -> its interest keys
}

// SetLocalInstances replaces the set of instances this node publishes. It
// returns quickly: the change is gossiped in the background and reaches
// every node within a second on a LAN. Calls with an unchanged set cost a
// comparison. Safe for concurrent use; the last call wins.
func (c *Cluster) SetLocalInstances(instances []Instance) error {
	list := slices.Clone(instances)
	for i := range list {
		in := &list[i]
		if err := validInstance(*in); err != nil {
			return fmt.Errorf("instance %q of %q: %w", in.ID, in.Processor, err)
		}
		in.Node = c.name
		if in.Kind == "" {
			in.Kind = KindLocal
		}
		if !in.Since.IsZero() {
			in.Since = time.UnixMilli(in.Since.UnixMilli()).UTC()
		}
	}
	slices.SortFunc(list, compareInstances)
	for i := 1; i < len(list); i++ {
		if list[i].Processor == list[i-1].Processor && list[i].ID == list[i-1].ID {
			return fmt.Errorf("instance %q of %q: listed twice", list[i].ID, list[i].Processor)
		}
	}
	now := time.UnixMilli(c.cfg.Now().UnixMilli()).UTC()

	c.mu.Lock()
	defer c.mu.Unlock()
	var prev []Instance
	if r := c.own[recordInstances]; r != nil {
		prev = r.instances
	}
	for i := range list {
		in := &list[i]
		if !in.Since.IsZero() {
			continue
		}
		in.Since = now
		if j, ok := slices.BinarySearchFunc(prev, *in, compareInstances); ok {
			in.Since = prev[j].Since
		}
	}
	if c.own[recordInstances] != nil && slices.EqualFunc(prev, list, equalInstances) {
		return nil
	}
	c.publishLocked(&record{kind: recordInstances, instances: list})
	return nil
}

// SetInterests replaces the keys this node is interested in (for example
// the projects that have live-stream subscribers here); Interested on any
// node then lists this node for those keys. Like SetLocalInstances it is
// cheap, asynchronous and safe for concurrent use.
func (c *Cluster) SetInterests(keys []string) error {
	list := slices.Clone(keys)
	for _, k := range list {
		if k == "" || len(k) > MaxFieldLen {
			return fmt.Errorf("interest %q: want 1 to %d bytes", k, MaxFieldLen)
		}
	}
	slices.Sort(list)
	list = slices.Compact(list)

	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.own[recordInterests]; r != nil && slices.Equal(r.interests, list) {
		return nil
	}
	c.publishLocked(&record{kind: recordInterests, interests: list})
	return nil
}

// publishLocked versions r as this node's newest record of its kind and
// sends it. Queueing under c.mu keeps the queue in version order.
func (c *Cluster) publishLocked(r *record) {
	c.seq++
	r.node, r.epoch, r.seq = c.name, c.epoch, c.seq
	r.msg = r.encode()
	c.own[r.kind] = r
	c.invalidateLocked()
	c.sendLocked(r)
}

// Registry returns the instances of every processor on every live node
// (alive or suspect), this node included. The snapshot is shared by all
// callers until the next change: do not modify it (Clone does a deep
// copy). Calling it is cheap when nothing changed.
func (c *Cluster) Registry() Registry {
	return c.snapshot().registry
}

// Interested returns the live members (this node included) that declared
// key in SetInterests, sorted by name.
func (c *Cluster) Interested(key string) []Member {
	names := c.snapshot().interests[key]
	if len(names) == 0 {
		return nil
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(names))
	for _, n := range names {
		if m := c.members[n]; m != nil && m.State.Up() {
			out = append(out, c.publicLocked(m, now))
		}
	}
	return out
}

func (c *Cluster) snapshot() *snapshot {
	if s := c.snap.Load(); s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.snap.Load(); s != nil {
		return s
	}
	s := c.buildLocked()
	c.snap.Store(s)
	return s
}

// invalidateLocked drops the published snapshot; the next reader rebuilds
// it.
func (c *Cluster) invalidateLocked() { c.snap.Store(nil) }

func (c *Cluster) buildLocked() *snapshot {
	s := &snapshot{registry: Registry{}, interests: map[string][]string{}, byNode: map[string][]string{}}
	add := func(r *record) {
		for _, in := range r.instances {
			s.registry[in.Processor] = append(s.registry[in.Processor], in)
		}
		if len(r.interests) > 0 {
			s.byNode[r.node] = r.interests
		}
		for _, k := range r.interests {
			s.interests[k] = append(s.interests[k], r.node)
		}
	}
	for _, r := range c.own {
		if r != nil {
			add(r)
		}
	}
	for _, r := range c.records {
		if c.visibleLocked(r) {
			add(r)
		}
	}
	for _, list := range s.registry {
		slices.SortFunc(list, func(a, b Instance) int {
			return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
		})
	}
	for _, names := range s.interests {
		slices.Sort(names)
	}
	return s
}

// visibleLocked reports whether another node's record belongs in the
// registry: the node is a live member and the record is from its current
// incarnation.
func (c *Cluster) visibleLocked(r *record) bool {
	m := c.members[r.node]
	return m != nil && m.State == StateAlive && m.Epoch == r.epoch
}

// acceptLocked reports whether r should replace what this node holds for
// its (node, kind). Stale versions never win: an older epoch than the
// member's current one is a dead incarnation, and within a node's records
// (epoch, seq) only grows.
func (c *Cluster) acceptLocked(r *record) bool {
	if r.node == c.name {
		return false
	}
	m := c.members[r.node]
	if m != nil && r.epoch < m.Epoch {
		return false
	}
	cur := c.records[recordKey{r.node, r.kind}]
	switch {
	case cur == nil:
		return true
	case m != nil && cur.epoch != m.Epoch && r.epoch == m.Epoch:
		return true // replaces a record of another incarnation
	}
	return r.newer(cur)
}

type recordKey struct {
	node string
	kind recordKind
}

// mergeRecord applies a record message received from a peer. When it is
// news and small, it is gossiped on, so that every node hears of it even
// though memberlist transmits a broadcast to only a few random peers.
func (c *Cluster) mergeRecord(msg []byte) {
	r, err := decodeRecord(msg)
	if err != nil {
		c.log.Debug("ignore registry record", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.acceptLocked(r) {
		return
	}
	c.records[recordKey{r.node, r.kind}] = r
	c.invalidateLocked()
	if len(r.msg) <= maxGossipRecord {
		c.queue.QueueBroadcast(newRecordBroadcast(r))
	}
}

// localState returns this node's records and those of live members, for a
// push/pull exchange.
func (c *Cluster) localState() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var recs []*record
	for _, r := range c.own {
		if r != nil {
			recs = append(recs, r)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.records), compareKeys) {
		if r := c.records[k]; c.visibleLocked(r) {
			recs = append(recs, r)
		}
	}
	return encodeState(recs)
}

// mergeState applies the records of a peer's push/pull state.
func (c *Cluster) mergeState(msg []byte) {
	msgs, err := decodeState(msg)
	if err != nil {
		c.log.Debug("ignore registry state", "err", err)
		return
	}
	for _, m := range msgs {
		c.mergeRecord(m)
	}
}

// dropRecordsLocked forgets the records of node older than epoch.
func (c *Cluster) dropRecordsLocked(node string, epoch uint64) {
	for _, k := range []recordKind{recordInstances, recordInterests} {
		if r := c.records[recordKey{node, k}]; r != nil && r.epoch < epoch {
			delete(c.records, recordKey{node, k})
		}
	}
}

func validInstance(in Instance) error {
	fields := []struct {
		name, v  string
		required bool
		max      int
	}{
		{"processor", in.Processor, true, MaxFieldLen},
		{"id", in.ID, true, MaxFieldLen},
		{"version", in.Version, false, MaxFieldLen},
		{"kind", in.Kind, false, MaxFieldLen},
		{"for", in.For, false, MaxNodeNameLen},
		{"state", in.State, false, MaxFieldLen},
	}
	for _, f := range fields {
		if f.required && f.v == "" {
			return errors.New(f.name + " is empty")
		}
		if len(f.v) > f.max {
			return fmt.Errorf("%s: %d bytes, want at most %d", f.name, len(f.v), f.max)
		}
	}
	return nil
}

func compareInstances(a, b Instance) int {
	return cmp.Or(cmp.Compare(a.Processor, b.Processor), cmp.Compare(a.ID, b.ID))
}

func equalInstances(a, b Instance) bool {
	return a.Processor == b.Processor && a.ID == b.ID && a.Node == b.Node &&
		a.Version == b.Version && a.Kind == b.Kind && a.For == b.For &&
		a.State == b.State && a.Since.Equal(b.Since)
}

func compareKeys(a, b recordKey) int {
	return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.kind, b.kind))
}
