package host

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/host/stream"
)

// What the cluster layer reads from a node. The types mirror the cluster
// package's (which host does not import); cmd/mesher converts them.

// Load is a node's load over the last sample.
type Load struct {
	EventsPerSec float64
	QueueDepth   int
	Busy         float64 // fraction of processor time over GOMAXPROCS, 0..1
	Instances    int
}

// ProcessorLoad is how busy a processor version of the node's own
// pipelines kept it over the last sample.
type ProcessorLoad struct {
	Name, SHA256 string
	Busy         float64 // seconds
	Singleton    bool
}

// InstanceInfo describes a processor instance for the cluster registry.
type InstanceInfo struct {
	Processor, ID, Version, Kind, For, State string
	Since                                    time.Time
}

// sampler remembers the previous sample to turn counters into rates.
type sampler struct {
	mu     sync.Mutex
	at     time.Time
	stored uint64
	busy   map[string]float64 // by processor name/sha or spawned id
}

// Sample reports the node's load since the previous call.
func (n *Node) Sample() (Load, []ProcessorLoad) {
	s := &n.sampler
	s.mu.Lock()
	defer s.mu.Unlock()
	now := n.cfg.Now()
	elapsed := now.Sub(s.at).Seconds()
	first := s.at.IsZero()
	prev := s.busy
	s.busy = map[string]float64{}
	var load Load
	var procs []ProcessorLoad
	total := 0.0
	for _, st := range n.Registry.Statuses() {
		key := st.Name + "/" + st.SHA256
		s.busy[key] = st.Status.BusySeconds
		d := st.Status.BusySeconds - prev[key]
		total += d
		load.Instances += st.Status.Instances
		p, _ := n.Registry.Processor(st.Name, st.SHA256)
		single := p != nil && p.Module().Manifest.Mode == "singleton"
		procs = append(procs, ProcessorLoad{Name: st.Name, SHA256: st.SHA256, Busy: d, Singleton: single})
	}
	for _, sp := range n.Spawned.List() {
		key := "spawned/" + sp.ID
		s.busy[key] = sp.Status.BusySeconds
		total += sp.Status.BusySeconds - prev[key]
		load.Instances += sp.Status.Instances
	}
	stored := n.Ingester.Stored()
	if !first && elapsed > 0 {
		load.Busy = min(1, total/(elapsed*float64(runtime.GOMAXPROCS(0))))
		load.EventsPerSec = float64(stored-s.stored) / elapsed
	} else {
		procs = nil // no interval yet
	}
	load.QueueDepth = n.Ingester.Queued()
	s.at, s.stored = now, stored
	return load, procs
}

// Instances lists the processor instances the node runs: its pipelines'
// processors and the instances it runs for other nodes.
func (n *Node) Instances() []InstanceInfo {
	var out []InstanceInfo
	for _, st := range n.Registry.Statuses() {
		out = append(out, InstanceInfo{Processor: st.Name, ID: "local-" + st.SHA256[:12], Version: st.SHA256,
			Kind: "local", State: string(st.Status.State)})
	}
	for _, sp := range n.Spawned.List() {
		out = append(out, InstanceInfo{Processor: sp.Name, ID: sp.ID, Version: sp.SHA, Kind: "spawned", For: sp.For,
			State: string(sp.Status.State), Since: sp.Since})
	}
	return out
}

// ModuleBytes returns the bytes of a stored module version.
func (n *Node) ModuleBytes(ctx context.Context, sha string) ([]byte, error) {
	m, err := n.cfg.Store.ModuleBySHA(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("module %.12s: %w", sha, err)
	}
	return m.Wasm, nil
}

// PublishRemote hands messages relayed from other nodes to this node's
// subscribers only.
func (n *Node) PublishRemote(msgs []stream.Message) {
	if s, ok := n.cfg.Streams.(*Streams); ok {
		for _, m := range msgs {
			s.Hub.Publish(m)
		}
	}
}

// LagRemote tells the project's subscribers on this node that another node
// dropped n of their messages on the way here.
func (n *Node) LagRemote(projectID string, dropped int) {
	if s, ok := n.cfg.Streams.(*Streams); ok {
		s.Hub.Lag(projectID, dropped)
	}
}
