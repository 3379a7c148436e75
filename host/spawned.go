package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/host/processors"
	"github.com/mesher-dev/mesher/host/wasm"
)

// ErrUnknownInstance is returned for a spawned instance this node does not
// run.
var ErrUnknownInstance = errors.New("unknown instance")

// Spawned are the processor instances a node runs on behalf of other
// nodes, which ship them batches. Each has its own pool, so a peer's work
// never waits behind this node's own pipelines' instances.
type Spawned struct {
	rt  *wasm.Runtime
	now func() time.Time

	mu   sync.Mutex
	byID map[string]*spawnedInstance
}

type spawnedInstance struct {
	ID, Name, SHA, For string
	Since              time.Time
	p                  *wasm.Processor
}

// NewSpawned returns an empty set running modules on rt.
func NewSpawned(rt *wasm.Runtime, now func() time.Time) *Spawned {
	if now == nil {
		now = time.Now
	}
	return &Spawned{rt: rt, now: now, byID: map[string]*spawnedInstance{}}
}

// Spawn starts an instance of a processor version for node forNode. If the
// runtime has not compiled that version it calls fetch and checks the
// bytes' SHA-256 before compiling them.
func (s *Spawned) Spawn(ctx context.Context, name, sha, forNode string, fetch func(context.Context) ([]byte, error)) (string, error) {
	mod, ok := s.rt.Lookup(sha)
	if !ok {
		bin, err := fetch(ctx)
		if err != nil {
			return "", fmt.Errorf("spawn %s: %w", name, err)
		}
		if got := wasm.Hash(bin); got != sha {
			return "", fmt.Errorf("spawn %s: module bytes hash to %.12s, not %.12s", name, got, sha)
		}
		if mod, err = s.rt.Load(ctx, bin); err != nil {
			return "", fmt.Errorf("spawn %s: %w", name, err)
		}
	}
	p := s.rt.NewProcessor(name, mod, wasm.Limits{})
	if err := p.Warm(ctx); err != nil {
		return "", fmt.Errorf("spawn %s: start: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		// The requester gave up: it will not route work here, so an
		// instance registered now would only sit idle.
		p.Close(context.WithoutCancel(ctx))
		return "", fmt.Errorf("spawn %s: %w", name, err)
	}
	var b [8]byte
	rand.Read(b[:])
	inst := &spawnedInstance{ID: name + "-" + hex.EncodeToString(b[:]), Name: name, SHA: sha, For: forNode, Since: s.now(), p: p}
	s.mu.Lock()
	s.byID[inst.ID] = inst
	s.mu.Unlock()
	return inst.ID, nil
}

// Retire stops an instance; an unknown id is not an error.
func (s *Spawned) Retire(ctx context.Context, id string) {
	s.mu.Lock()
	inst := s.byID[id]
	delete(s.byID, id)
	s.mu.Unlock()
	if inst != nil {
		inst.p.Close(ctx)
	}
}

// Process runs a batch on a spawned instance and returns the encoded
// output records.
func (s *Spawned) Process(ctx context.Context, id string, settings, input []byte, count int) ([]byte, error) {
	s.mu.Lock()
	inst := s.byID[id]
	s.mu.Unlock()
	if inst == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownInstance, id)
	}
	st, err := processors.SettingsFrom(inst.p.Module(), settings)
	if err != nil {
		return nil, err
	}
	recs, err := inst.p.Process(ctx, input, count, st)
	if err != nil {
		return nil, err
	}
	return processors.EncodeOutput(recs), nil
}

// SpawnedInfo describes a spawned instance.
type SpawnedInfo struct {
	ID, Name, SHA, For string
	Since              time.Time
	Status             wasm.Status
}

// List describes every spawned instance, sorted by id.
func (s *Spawned) List() []SpawnedInfo {
	s.mu.Lock()
	out := make([]SpawnedInfo, 0, len(s.byID))
	for _, in := range s.byID {
		out = append(out, SpawnedInfo{ID: in.ID, Name: in.Name, SHA: in.SHA, For: in.For, Since: in.Since, Status: in.p.Status()})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close retires every instance.
func (s *Spawned) Close(ctx context.Context) {
	s.mu.Lock()
	all := s.byID
	s.byID = map[string]*spawnedInstance{}
	s.mu.Unlock()
	for _, in := range all {
		in.p.Close(ctx)
	}
}
