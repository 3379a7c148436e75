// Package processors keeps a node's running processors and each project's
// built pipeline.
package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/wasm"
)

// Registry keeps the node's processors and each project's built pipeline.
// Processors are shared across projects: one instance pool per processor
// version, each project passing its own configuration per batch. Pipelines
// are rebuilt when they or the processor versions they follow change, and
// swapped atomically, so a change applies to the next batch without
// dropping a batch in flight.
type Registry struct {
	store store.Store
	rt    *wasm.Runtime
	log   *slog.Logger

	mu         sync.Mutex
	processors map[procKey]*wasm.Processor
	built      map[string]builtPipeline // by project id
	pipelines  atomic.Pointer[map[string]*pipeline.Pipeline]
	forwarder  atomic.Pointer[Forwarder]
	singletons atomic.Pointer[Singletons]
}

type procKey struct{ name, sha string }

type builtPipeline struct {
	revision int64
	shas     []string // resolved module versions, in step order
}

// New returns an empty registry; call Sync to build pipelines.
func New(s store.Store, rt *wasm.Runtime, log *slog.Logger) *Registry {
	r := &Registry{store: s, rt: rt, log: log, processors: map[procKey]*wasm.Processor{}, built: map[string]builtPipeline{}}
	empty := map[string]*pipeline.Pipeline{}
	r.pipelines.Store(&empty)
	return r
}

// Pipeline returns a project's current pipeline, or nil.
func (r *Registry) Pipeline(projectID string) *pipeline.Pipeline {
	return (*r.pipelines.Load())[projectID]
}

// LoadModule returns a compiled module version, fetching its bytes from the
// store and compiling them if this node has not yet.
func (r *Registry) LoadModule(ctx context.Context, name, sha string) (*wasm.Module, error) {
	m, err := r.store.ModuleVersion(ctx, name, sha)
	if err != nil {
		return nil, fmt.Errorf("processor %s version %.12s: %w", name, sha, err)
	}
	mod, err := r.rt.Load(ctx, m.Wasm)
	if err != nil {
		return nil, fmt.Errorf("processor %s version %.12s: %w", name, sha, err)
	}
	return mod, nil
}

// processor returns the shared processor of a module version.
func (r *Registry) processor(ctx context.Context, name, sha string) (*wasm.Processor, error) {
	r.mu.Lock()
	p, ok := r.processors[procKey{name, sha}]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	mod, err := r.LoadModule(ctx, name, sha)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.processors[procKey{name, sha}]; ok {
		return p, nil
	}
	p = r.rt.NewProcessor(name, mod, wasm.Limits{})
	if err := p.Warm(ctx); err != nil {
		return nil, fmt.Errorf("processor %s: start: %w", name, err)
	}
	r.processors[procKey{name, sha}] = p
	return p, nil
}

// Build resolves and builds a pipeline without installing it: every step's
// processor must exist and its configuration match its manifest.
func (r *Registry) Build(ctx context.Context, sp *store.Pipeline) (*pipeline.Pipeline, []string, error) {
	pl := &pipeline.Pipeline{}
	shas := make([]string, 0, len(sp.Steps))
	for i, st := range sp.Steps {
		sha := st.Version
		if sha == "" {
			cur, err := r.store.Module(ctx, st.Processor)
			if err != nil {
				return nil, nil, fmt.Errorf("step %d: processor %q: %w", i, st.Processor, err)
			}
			sha = cur.SHA256
		}
		p, err := r.processor(ctx, st.Processor, sha)
		if err != nil {
			return nil, nil, fmt.Errorf("step %d: %w", i, err)
		}
		settings, err := p.Module().Settings(st.Config)
		if err != nil {
			return nil, nil, fmt.Errorf("step %d: %w", i, err)
		}
		step := &routed{reg: r, local: p, name: st.Processor, sha: sha, singleton: p.Module().Manifest.Mode == abi.Singleton}
		pl.Steps = append(pl.Steps, pipeline.Step{Processor: step, Settings: settings})
		shas = append(shas, sha)
	}
	return pl, shas, nil
}

// Install makes a built pipeline the project's current one.
func (r *Registry) Install(projectID string, revision int64, pl *pipeline.Pipeline, shas []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.built[projectID]; ok && cur.revision > revision {
		return // a newer revision is already installed
	}
	r.built[projectID] = builtPipeline{revision: revision, shas: shas}
	next := make(map[string]*pipeline.Pipeline, len(*r.pipelines.Load())+1)
	for k, v := range *r.pipelines.Load() {
		next[k] = v
	}
	next[projectID] = pl
	r.pipelines.Store(&next)
}

// Sync rebuilds every pipeline whose revision, or the current version of a
// processor it follows, changed since it was built. Nodes call it at start
// and periodically, so changes made through another node apply here too.
func (r *Registry) Sync(ctx context.Context) error {
	pls, err := r.store.ListPipelines(ctx)
	if err != nil {
		return fmt.Errorf("sync pipelines: %w", err)
	}
	mods, err := r.store.ListModules(ctx)
	if err != nil {
		return fmt.Errorf("sync pipelines: %w", err)
	}
	current := map[string]string{}
	for _, m := range mods {
		current[m.Name] = m.SHA256
	}
	var errs []error
	for _, sp := range pls {
		r.mu.Lock()
		b, ok := r.built[sp.ProjectID]
		r.mu.Unlock()
		if ok && b.revision == sp.Revision && sameVersions(sp, b.shas, current) {
			continue
		}
		pl, shas, err := r.Build(ctx, sp)
		if err != nil {
			// Keep running the previous pipeline; say why it was not replaced.
			r.log.Error("cannot build pipeline; keeping the previous one", "project", sp.ProjectID, "revision", sp.Revision, "err", err)
			errs = append(errs, err)
			continue
		}
		r.Install(sp.ProjectID, sp.Revision, pl, shas)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sync pipelines: %d failed, first: %w", len(errs), errs[0])
	}
	return nil
}

func sameVersions(sp *store.Pipeline, built []string, current map[string]string) bool {
	if len(sp.Steps) != len(built) {
		return false
	}
	for i, st := range sp.Steps {
		want := st.Version
		if want == "" {
			want = current[st.Processor]
		}
		if want != built[i] {
			return false
		}
	}
	return true
}

// ProcessorStatus is a processor version's health on this node.
type ProcessorStatus struct {
	Name   string      `json:"name"`
	SHA256 string      `json:"sha256"`
	Status wasm.Status `json:"status"`
}

// Statuses reports every processor version this node runs, sorted.
func (r *Registry) Statuses() []ProcessorStatus {
	r.mu.Lock()
	out := make([]ProcessorStatus, 0, len(r.processors))
	for k, p := range r.processors {
		out = append(out, ProcessorStatus{Name: k.name, SHA256: k.sha, Status: p.Status()})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].SHA256 < out[j].SHA256
	})
	return out
}

// Processor returns the running processor of a version, if this node runs it.
func (r *Registry) Processor(name, sha string) (*wasm.Processor, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.processors[procKey{name, sha}]
	return p, ok
}

// Validate checks and compiles an uploaded module.
func (r *Registry) Validate(ctx context.Context, bin []byte) (*wasm.Module, error) {
	return r.rt.Load(ctx, bin)
}

// Forget stops a processor's instances on this node, once it is deleted.
func (r *Registry) Forget(ctx context.Context, name string) {
	r.mu.Lock()
	var gone []*wasm.Processor
	for k, p := range r.processors {
		if k.name == name {
			gone = append(gone, p)
			delete(r.processors, k)
		}
	}
	r.mu.Unlock()
	for _, p := range gone {
		p.Close(ctx)
	}
}

// RunLocal runs one batch of a processor version on this node, starting the
// processor if needed; settings is the configuration as a JSON object. It
// serves batches other nodes route here (singletons this node owns).
func (r *Registry) RunLocal(ctx context.Context, name, sha string, settings, input []byte, count int) ([]abi.Record, error) {
	p, err := r.processor(ctx, name, sha)
	if err != nil {
		return nil, err
	}
	s, err := SettingsFrom(p.Module(), settings)
	if err != nil {
		return nil, err
	}
	return p.Process(ctx, input, count, s)
}

// Singletons lists the singleton processors the installed pipelines use.
func (r *Registry) Singletons() []string {
	seen := map[string]bool{}
	var out []string
	for _, pl := range *r.pipelines.Load() {
		for _, st := range pl.Steps {
			if rt, ok := st.Processor.(*routed); ok && rt.singleton && !seen[rt.name] {
				seen[rt.name] = true
				out = append(out, rt.name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SettingsFrom parses a configuration received from another node and checks
// it against the module's manifest.
func SettingsFrom(m *wasm.Module, raw []byte) (*wasm.Settings, error) {
	if len(raw) == 0 {
		return m.DefaultSettings(), nil
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return m.Settings(cfg)
}
