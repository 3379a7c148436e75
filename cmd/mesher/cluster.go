package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mesher-dev/mesher/cluster"
	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/processors"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/stream"
)

// clusterHost implements cluster.Host over a node: the cluster package
// and the host packages never import each other; this file translates.
type clusterHost struct {
	node   *host.Node
	c      *cluster.Cluster
	single *cluster.Singletons // nil until started
}

var _ cluster.Host = (*clusterHost)(nil)

func (h *clusterHost) Spawn(ctx context.Context, name, sha string, fetch func(context.Context) ([]byte, error)) (string, error) {
	from, _ := cluster.PeerFromContext(ctx)
	return h.node.Spawned.Spawn(ctx, name, sha, from, fetch)
}

func (h *clusterHost) Retire(ctx context.Context, id string) error {
	h.node.Spawned.Retire(ctx, id)
	return nil
}

func (h *clusterHost) Process(ctx context.Context, id string, settings, input []byte, count int) ([]byte, error) {
	if name, sha, token, ok := parseSingletonID(id); ok {
		// A batch routed to this node as the singleton's owner: run it only
		// while the lease with that fencing token is still ours.
		if h.single == nil || !h.single.Owns(name, token) {
			return nil, fmt.Errorf("%w: not the owner of singleton %s with token %d", cluster.ErrUnknownInstance, name, token)
		}
		recs, err := h.node.Registry.RunLocal(ctx, name, sha, settings, input, count)
		if err != nil {
			return nil, err
		}
		return processors.EncodeOutput(recs), nil
	}
	out, err := h.node.Spawned.Process(ctx, id, settings, input, count)
	if errors.Is(err, host.ErrUnknownInstance) {
		return nil, fmt.Errorf("%w: %w", cluster.ErrUnknownInstance, err)
	}
	return out, err
}

func (h *clusterHost) Module(ctx context.Context, sha string) ([]byte, error) {
	b, err := h.node.ModuleBytes(ctx, sha)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", cluster.ErrUnknownModule, err)
	}
	return b, err
}

func (h *clusterHost) Publish(msgs []cluster.StreamMessage) {
	out := make([]stream.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.Type == cluster.TypeLagged {
			h.node.LagRemote(m.ProjectID, m.Dropped)
			continue
		}
		out = append(out, stream.Message{ProjectID: m.ProjectID, Type: m.Type, Level: m.Level, Environment: m.Environment, Tags: m.Tags, Payload: m.Payload})
	}
	h.node.PublishRemote(out)
}

func (h *clusterHost) Sample() (cluster.Load, []cluster.ProcessorLoad) {
	l, ps := h.node.Sample()
	out := make([]cluster.ProcessorLoad, len(ps))
	for i, p := range ps {
		out[i] = cluster.ProcessorLoad{Name: p.Name, SHA256: p.SHA256, Busy: p.Busy, Singleton: p.Singleton}
	}
	return cluster.Load{EventsPerSec: l.EventsPerSec, QueueDepth: l.QueueDepth, Busy: l.Busy, Instances: l.Instances}, out
}

func (h *clusterHost) Instances() []cluster.Instance {
	is := h.node.Instances()
	out := make([]cluster.Instance, len(is))
	for i, in := range is {
		out[i] = cluster.Instance{Processor: in.Processor, ID: in.ID, Version: in.Version, Kind: in.Kind, For: in.For, State: in.State, Since: in.Since}
	}
	if h.single != nil {
		for _, l := range h.single.Held() {
			out = append(out, cluster.Instance{Processor: l.Name, ID: "singleton-" + strconv.FormatInt(l.Token, 10), Kind: "singleton", State: "owner"})
		}
	}
	return out
}

// singletonID names the owner's instance of a singleton in forwarded
// batches: the version and the fencing token the sender believes current.
func singletonID(name, sha string, token int64) string {
	return "singleton:" + name + ":" + sha + ":" + strconv.FormatInt(token, 10)
}

func parseSingletonID(id string) (name, sha string, token int64, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != "singleton" {
		return "", "", 0, false
	}
	t, err := strconv.ParseInt(parts[3], 10, 64)
	return parts[1], parts[2], t, err == nil
}

// singletonRouter routes batches of singleton processors to their owner.
type singletonRouter struct {
	c      *cluster.Cluster
	single *cluster.Singletons
}

func (r singletonRouter) Route(ctx context.Context, name, sha string, settings, input []byte, count int) ([]byte, bool, error) {
	owner, token, self := r.single.Owner(name)
	if self {
		return nil, true, nil
	}
	// The lease as this node last read it may be older than what the
	// registry already shows: the owner announces its holding, with the
	// fencing token in the instance id, as soon as it takes the lease.
	// Tokens only grow, so the larger one names the newer holder.
	for _, in := range r.c.Registry()[name] {
		if t, err := strconv.ParseInt(strings.TrimPrefix(in.ID, "singleton-"), 10, 64); in.Kind == "singleton" && err == nil && t > token {
			owner, token = in.Node, t
		}
	}
	if owner == "" {
		return nil, false, fmt.Errorf("singleton %s has no owner yet", name)
	}
	out, err := r.c.ProcessOn(ctx, owner, singletonID(name, sha, token), settings, input, count)
	return out, false, err
}

// relay passes a node's stream messages to the cluster relay.
type relay struct{ r *cluster.Relay }

func (r relay) Watched(project string) bool { return r.r.Watched(project) }

func (r relay) Relay(m stream.Message) {
	r.r.Relay(cluster.StreamMessage{ProjectID: m.ProjectID, Type: m.Type, Level: m.Level, Environment: m.Environment, Tags: m.Tags, Payload: m.Payload})
}

// describer answers GET /api/v1/cluster.
type describer struct {
	c    *cluster.Cluster
	work func() *cluster.Work
}

func (d describer) Describe(context.Context) any {
	out := struct {
		Mode string `json:"mode"`
		cluster.Description
		Placements []cluster.Placement `json:"placements"`
		Forwarded  uint64              `json:"forwarded_batches"`
		Fallbacks  uint64              `json:"forward_fallbacks"`
	}{Mode: "cluster", Description: d.c.Describe()}
	if w := d.work(); w != nil {
		out.Placements = w.Placements()
		out.Forwarded, out.Fallbacks = w.Stats()
	}
	if out.Placements == nil {
		out.Placements = []cluster.Placement{}
	}
	return out
}

// clustered is a node's cluster layer once started.
type clustered struct {
	c      *cluster.Cluster
	work   *cluster.Work
	relay  *cluster.Relay
	single *cluster.Singletons
	log    *slog.Logger
	once   sync.Once
}

// startCluster joins the cluster; the node is attached with attach once it
// exists.
func startCluster(ctx context.Context, cfg *serveConfig, httpAddr string, log *slog.Logger) (*clustered, error) {
	c, err := cluster.Start(ctx, cluster.Config{
		NodeName: cfg.NodeName,
		Cookie:   cfg.Cookie,
		BindAddr: cfg.GossipAddr,
		Seeds:    cfg.Peers,
		HTTPAddr: httpAddr,
		Logger:   log.With("component", "cluster"),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return &clustered{c: c, log: log}, nil
}

// attach starts sharing work and streams for node, and returns the handler
// of the node-to-node API.
func (cl *clustered) attach(node *host.Node, st store.Store, streams *host.Streams, hub *stream.Hub, placement cluster.PlacementConfig) http.Handler {
	h := &clusterHost{node: node, c: cl.c}
	if pg, ok := st.(*postgres.Store); ok {
		// Singleton ownership is a lease in the shared database.
		cl.single = cl.c.StartSingletons(leaseAdapter{pg}, node.Registry.Singletons, cluster.SingletonConfig{})
		h.single = cl.single
		node.Registry.SetSingletons(singletonRouter{c: cl.c, single: cl.single})
	}
	cl.work = cl.c.StartWork(h, placement)
	node.Registry.SetForwarder(cl.work)
	cl.relay = cl.c.StartRelay(func() []string {
		var keys []string
		for p := range hub.SubscribersByProject() {
			keys = append(keys, p)
		}
		return keys
	})
	streams.Remote = relay{cl.relay}
	return cl.c.PeerHandler(h)
}

// leave retires placements, stops relaying and leaves the cluster
// gracefully, so peers see this node as left rather than failed. Calling
// it again does nothing.
func (cl *clustered) leave(ctx context.Context) error {
	var err error
	cl.once.Do(func() {
		if cl.work != nil {
			cl.work.Stop(ctx)
		}
		if cl.relay != nil {
			cl.relay.Stop()
		}
		if cl.single != nil {
			cl.single.Stop(ctx)
		}
		err = cl.c.Leave(ctx)
	})
	return err
}
