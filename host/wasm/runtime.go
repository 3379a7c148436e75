// Package wasm runs Mesher processors: Wasm modules that implement ABI v1
// (see abi/ABI.md). It validates and compiles modules once, keyed by the
// SHA-256 of their bytes, with a compilation cache on disk; keeps a pool of
// instances per processor so that concurrent batches never share one; and
// bounds every call by a deadline, a memory cap and an output limit. A
// processor that keeps failing is quarantined.
//
// Runaway guests are stopped without wazero's WithCloseOnContextDone: Load
// rewrites each module so that every loop checks an exported stop flag,
// which a timer sets when a call passes its deadline. RATIONALE.md explains
// why and what it costs.
package wasm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/internal/wasmbin"
)

// Defaults of Config and Limits.
const (
	// DefaultMemoryLimit caps a processor's linear memory. Standard Go
	// guests need at least 16 MiB; 64 MiB leaves room for real work while
	// keeping a pool of instances affordable.
	DefaultMemoryLimit = 64 << 20
	// DefaultTimeout bounds one call, that is one batch.
	DefaultTimeout = time.Second
	// DefaultMaxOutput bounds the bytes a processor may emit for one batch.
	DefaultMaxOutput = 16 << 20
	// DefaultMaxFanOut bounds the records a processor may emit per input
	// event, on average over the batch.
	DefaultMaxFanOut = 100
	// DefaultFailureThreshold failures within DefaultFailureWindow
	// quarantine a processor for DefaultQuarantine.
	DefaultFailureThreshold = 5
	DefaultFailureWindow    = time.Minute
	DefaultQuarantine       = time.Minute
	// MaxModuleSize is the largest module accepted.
	MaxModuleSize = 64 << 20
	// maxLogLine and maxLogLinesPerCall bound what a guest can write to the
	// host's log.
	maxLogLine         = 4 << 10
	maxLogLinesPerCall = 100
	// mergeGap is the widest run of zeros between data segments that Load
	// merges across (see wasmbin.Options.MergeGap).
	mergeGap = 256
)

// Config configures a Runtime. The zero value is usable: every zero field
// means its default.
type Config struct {
	// CacheDir holds wazero's compilation cache so that a restart does not
	// recompile modules. Empty keeps compiled code in memory only.
	CacheDir string
	// Limits applied to processors unless NewProcessor is given others.
	Limits Limits
	// Logger receives guest logs and runtime events; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock guests read through mesher.now; nil means time.Now.
	Now func() time.Time
	// Interrupt chooses how runaway guests are stopped (default
	// InterruptLoopsAndCalls). The others exist to measure the difference.
	Interrupt Interrupt
}

// Interrupt is a way of stopping a guest that passes its deadline.
type Interrupt int

const (
	// InterruptLoopsAndCalls counts down at every loop iteration and every
	// function entry and calls into the host every DefaultInterval counts;
	// the host ends the call there once the deadline has passed.
	InterruptLoopsAndCalls Interrupt = iota
	// InterruptLoops counts loop iterations only. Deep recursion without
	// loops is then not interrupted; it is here to measure what the checks
	// at function entry cost.
	InterruptLoops
	// InterruptContext leaves code alone and uses wazero's
	// WithCloseOnContextDone, which checks at every loop iteration and
	// function entry by leaving compiled code.
	InterruptContext
	// InterruptNone does not stop guests at all. Benchmarks only: a guest
	// that loops forever never returns.
	InterruptNone
)

func (i Interrupt) String() string {
	switch i {
	case InterruptLoopsAndCalls:
		return "loops+calls"
	case InterruptLoops:
		return "loops"
	case InterruptContext:
		return "close-on-context-done"
	case InterruptNone:
		return "none"
	}
	return fmt.Sprintf("Interrupt(%d)", int(i))
}

// Limits bound a processor. Zero fields mean the defaults above.
type Limits struct {
	// MemoryBytes caps the guest's linear memory (default 64 MiB).
	MemoryBytes uint64
	// Timeout bounds one batch (default 1 s).
	Timeout time.Duration
	// MaxOutput bounds the bytes emitted for one batch (default 16 MiB).
	MaxOutput int
	// MaxFanOut bounds the records emitted for one batch to MaxFanOut per
	// input event (default 100).
	MaxFanOut int
	// Instances bounds the concurrent instances (default GOMAXPROCS).
	Instances int
	// FailureThreshold failures within FailureWindow quarantine the
	// processor for Quarantine (defaults 5, 1 minute, 1 minute).
	FailureThreshold int
	FailureWindow    time.Duration
	Quarantine       time.Duration
}

// defaultLimits are the defaults of Limits; Instances defaults to
// GOMAXPROCS, read when the defaults are applied.
var defaultLimits = Limits{
	MemoryBytes:      DefaultMemoryLimit,
	Timeout:          DefaultTimeout,
	MaxOutput:        DefaultMaxOutput,
	MaxFanOut:        DefaultMaxFanOut,
	FailureThreshold: DefaultFailureThreshold,
	FailureWindow:    DefaultFailureWindow,
	Quarantine:       DefaultQuarantine,
}

func (l Limits) withDefaults() Limits {
	d := defaultLimits
	d.Instances = runtime.GOMAXPROCS(0)
	return l.fill(d)
}

// or fills zero fields of l from d, then from the defaults.
func (l Limits) or(d Limits) Limits { return l.fill(d).withDefaults() }

// fill sets every zero field of l to d's.
func (l Limits) fill(d Limits) Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxFanOut <= 0 {
		l.MaxFanOut = d.MaxFanOut
	}
	if l.Instances <= 0 {
		l.Instances = d.Instances
	}
	if l.FailureThreshold <= 0 {
		l.FailureThreshold = d.FailureThreshold
	}
	if l.FailureWindow <= 0 {
		l.FailureWindow = d.FailureWindow
	}
	if l.Quarantine <= 0 {
		l.Quarantine = d.Quarantine
	}
	return l
}

func (l Limits) pages() uint32 {
	p := l.MemoryBytes / 65536
	if p > 65536 {
		p = 65536
	}
	return uint32(p)
}

// Runtime compiles modules and runs processors. It is safe for concurrent use.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	engine wazero.Runtime
	cache  wazero.CompilationCache

	mu       sync.Mutex
	modules  map[moduleKey]*Module
	loading  map[moduleKey]*loading // compilations under way
	compiles sync.WaitGroup
}

// loading is one compilation that every concurrent Load of the same module
// waits for.
type loading struct {
	done chan struct{}
	m    *Module
	err  error
}

type moduleKey struct {
	sha   string
	pages uint32
}

// New starts a runtime.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg.Limits = cfg.Limits.withDefaults()
	r := &Runtime{cfg: cfg, log: cfg.Logger, now: cfg.Now, modules: map[moduleKey]*Module{}, loading: map[moduleKey]*loading{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2).
		WithCustomSections(true).
		WithDebugInfoEnabled(false).
		WithCloseOnContextDone(cfg.Interrupt == InterruptContext)
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", cfg.CacheDir, err)
		}
		r.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	r.engine = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.engine); err != nil {
		r.engine.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	if err := r.instantiateHost(ctx); err != nil {
		r.engine.Close(ctx)
		return nil, fmt.Errorf("host module: %w", err)
	}
	return r, nil
}

// Close releases every module and instance.
func (r *Runtime) Close(ctx context.Context) error {
	r.compiles.Wait()
	err := r.engine.Close(ctx)
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// Module is a validated, compiled module. Modules are shared: loading the
// same bytes with the same memory cap returns the same Module.
type Module struct {
	SHA256   string
	Size     int
	Manifest *abi.Manifest
	Checks   int // interrupt checks inserted

	compiled wazero.CompiledModule
	pages    uint32
	hasInit  bool

	defaultsOnce    sync.Once
	defaultSettings *Settings
}

// Hash returns the hex SHA-256 of module bytes, the identity of a module.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Lookup returns a module with these bytes that the runtime has already
// compiled for its default memory cap.
func (r *Runtime) Lookup(sha string) (*Module, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.modules[moduleKey{sha: sha, pages: r.cfg.Limits.pages()}]
	return m, ok
}

// Load validates and compiles a module under the runtime's default memory
// cap. See LoadWithLimits.
func (r *Runtime) Load(ctx context.Context, bin []byte) (*Module, error) {
	return r.LoadWithLimits(ctx, bin, r.cfg.Limits)
}

// LoadWithLimits validates a module against ABI v1 and compiles it for the
// memory cap of limits. A refused module gets a *ValidationError saying why.
// Loading bytes already loaded returns the compiled Module at once.
//
// A compilation, once started, is not tied to the caller: if ctx ends
// first, LoadWithLimits returns ctx's error but the module goes on
// compiling, and a later or concurrent Load of the same bytes waits for
// that one compilation instead of starting another. A large module can
// take longer to compile than a caller waits (a remote spawn on a slow
// machine), and its retry then finds the work done. bin must therefore not
// be modified after the call, even when it returns early.
func (r *Runtime) LoadWithLimits(ctx context.Context, bin []byte, limits Limits) (*Module, error) {
	limits = limits.or(r.cfg.Limits)
	if len(bin) > MaxModuleSize {
		return nil, invalid(TooLarge, "module is %d bytes, more than the %d allowed", len(bin), MaxModuleSize)
	}
	key := moduleKey{sha: Hash(bin), pages: limits.pages()}
	r.mu.Lock()
	if m, ok := r.modules[key]; ok {
		r.mu.Unlock()
		return m, nil
	}
	l, ok := r.loading[key]
	if !ok {
		l = &loading{done: make(chan struct{})}
		r.loading[key] = l
		r.compiles.Add(1)
		go func() {
			defer r.compiles.Done()
			m, err := r.compile(context.WithoutCancel(ctx), bin, key, limits)
			r.mu.Lock()
			if err == nil {
				r.modules[key] = m
			}
			delete(r.loading, key)
			r.mu.Unlock()
			l.m, l.err = m, err
			close(l.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-l.done:
		return l.m, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("module %.12s still compiling when the caller gave up (loading it again waits for it): %w", key.sha, ctx.Err())
	}
}

func (r *Runtime) compile(ctx context.Context, bin []byte, key moduleKey, limits Limits) (*Module, error) {
	secs, err := wasmbin.Parse(bin)
	if err != nil {
		return nil, invalid(InvalidBinary, "not a valid WebAssembly module: %v", err)
	}
	manifest, err := readManifest(secs)
	if err != nil {
		return nil, err
	}
	if err := checkImports(secs); err != nil {
		return nil, err
	}
	if wasmbin.Has(secs, wasmbin.SecStart) {
		return nil, invalid(StartSection, "module has a start function; processors initialize in %s, which the host runs under a deadline", abi.ExportInitialize)
	}
	opts := wasmbin.Options{MaxMemoryPages: key.pages, MergeGap: mergeGap}
	if r.cfg.Interrupt == InterruptLoopsAndCalls || r.cfg.Interrupt == InterruptLoops {
		opts.YieldModule, opts.YieldName = abi.ImportModule, abi.FuncVersion
		opts.CheckCalls = r.cfg.Interrupt == InterruptLoopsAndCalls
	}
	inst, stats, err := wasmbin.Instrument(bin, opts)
	switch {
	case errors.Is(err, wasmbin.ErrMemoryTooLarge):
		return nil, invalid(MemoryTooLarge, "module memory: %v", err)
	case errors.Is(err, wasmbin.ErrImportedMemory):
		return nil, invalid(ForbiddenImport, "module imports its memory; processors must define and export their own")
	case err != nil:
		return nil, invalid(InvalidBinary, "not a valid WebAssembly module: %v", err)
	}
	compiled, err := r.engine.CompileModule(ctx, inst)
	if err != nil {
		return nil, invalid(InvalidBinary, "module does not compile: %v", err)
	}
	m := &Module{SHA256: key.sha, Size: len(bin), Manifest: manifest, Checks: stats.Checks, compiled: compiled, pages: key.pages}
	if err := checkSignatures(compiled); err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	if err := checkExports(compiled); err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	_, m.hasInit = compiled.ExportedFunctions()[abi.ExportInitialize]
	// Start one instance and give it an empty batch: a module that cannot
	// start within its deadline or trap on nothing is refused now rather
	// than on the first real batch.
	p := r.NewProcessor(manifest.Name, m, limits)
	defer p.Close(ctx)
	if _, err := p.Process(ctx, nil, 0, nil); err != nil {
		compiled.Close(ctx)
		return nil, invalid(InstantiateFailure, "module fails on an empty batch: %v", err)
	}
	return m, nil
}

func readManifest(secs []wasmbin.Section) (*abi.Manifest, error) {
	var data []byte
	found := 0
	for _, s := range secs {
		if s.ID == wasmbin.SecCustom && s.Name == abi.ManifestSection {
			data = s.Data
			found++
		}
	}
	switch found {
	case 0:
		return nil, invalid(ManifestMissing, "module has no %q custom section; embed one with `mesher manifest set`", abi.ManifestSection)
	case 1:
	default:
		return nil, invalid(ManifestInvalid, "module has %d %q sections; it must have one", found, abi.ManifestSection)
	}
	m, err := abi.ParseManifest(data)
	if err != nil {
		return nil, invalid(ManifestInvalid, "%v", err)
	}
	return m, nil
}

// hostSignatures are the types of the host functions of ABI v1.
var hostSignatures = map[string]struct{ params, results []api.ValueType }{
	abi.FuncVersion: {},
	abi.FuncInput:   {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	abi.FuncEmit:    {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	abi.FuncLog:     {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil},
	abi.FuncConfig:  {[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	abi.FuncNow:     {nil, []api.ValueType{api.ValueTypeI64}},
}

// checkImports enforces what a module may import: the mesher host
// functions (including the abi_v1 marker, which is required) and WASI
// without sockets.
func checkImports(secs []wasmbin.Section) error {
	imports, err := wasmbin.Imports(secs)
	if err != nil {
		return invalid(InvalidBinary, "not a valid WebAssembly module: %v", err)
	}
	hasVersion := false
	for _, im := range imports {
		qual := im.Module + "." + im.Name
		switch im.Module {
		case abi.ImportModule:
			if strings.HasPrefix(im.Name, abi.VersionImportPrefix) && im.Name != abi.FuncVersion {
				return invalid(ABIVersion, "module was built for Mesher ABI %s (it imports %s); this host implements ABI v%d",
					strings.TrimPrefix(im.Name, "abi_"), qual, abi.Version)
			}
			if _, ok := hostSignatures[im.Name]; !ok || im.Kind != wasmbin.KindFunc {
				return invalid(ForbiddenImport, "import %s (%s) is not part of ABI v%d; the host offers %s",
					qual, wasmbin.KindName(im.Kind), abi.Version, hostFuncList())
			}
			hasVersion = hasVersion || im.Name == abi.FuncVersion
		case abi.WASIModule:
			if im.Kind != wasmbin.KindFunc {
				return invalid(ForbiddenImport, "import %s is a %s; only WASI functions may be imported", qual, wasmbin.KindName(im.Kind))
			}
			if strings.HasPrefix(im.Name, "sock_") {
				return invalid(ForbiddenImport, "import %s is not allowed: processors have no network access", qual)
			}
		default:
			return invalid(ForbiddenImport, "import %s is not allowed: processors may import only from %q and %q",
				qual, abi.ImportModule, abi.WASIModule)
		}
	}
	if !hasVersion {
		return invalid(ABIMissing, "module does not import %s.%s: it is not a Mesher processor, or was built without the ABI version marker",
			abi.ImportModule, abi.FuncVersion)
	}
	return nil
}

func hostFuncList() string {
	return strings.Join([]string{abi.FuncVersion, abi.FuncInput, abi.FuncEmit, abi.FuncLog, abi.FuncConfig, abi.FuncNow}, ", ")
}

func checkSignatures(c wazero.CompiledModule) error {
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != abi.ImportModule {
			continue
		}
		want := hostSignatures[name]
		if !sameTypes(f.ParamTypes(), want.params) || !sameTypes(f.ResultTypes(), want.results) {
			return invalid(ImportSignature, "import %s.%s has type %s; ABI v%d defines %s",
				mod, name, sig(f.ParamTypes(), f.ResultTypes()), abi.Version, sig(want.params, want.results))
		}
	}
	return nil
}

func checkExports(c wazero.CompiledModule) error {
	f, ok := c.ExportedFunctions()[abi.ExportProcess]
	if !ok {
		return invalid(MissingExport, "module does not export %s (i32, i32) -> i32", abi.ExportProcess)
	}
	want := []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}
	if !sameTypes(f.ParamTypes(), want) || !sameTypes(f.ResultTypes(), want[:1]) {
		return invalid(MissingExport, "export %s has type %s; ABI v%d defines (i32, i32) -> i32",
			abi.ExportProcess, sig(f.ParamTypes(), f.ResultTypes()), abi.Version)
	}
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return invalid(MissingExport, "module does not export its memory as %q", abi.ExportMemory)
	}
	if init, ok := c.ExportedFunctions()[abi.ExportInitialize]; ok && (len(init.ParamTypes()) > 0 || len(init.ResultTypes()) > 0) {
		return invalid(MissingExport, "export %s must take and return nothing", abi.ExportInitialize)
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}

// moduleConfig is the sandbox of every instance: no arguments, environment,
// file system or sockets; real clocks; crypto randomness; guest stdout and
// stderr go to the log.
func (r *Runtime) moduleConfig(stdout, stderr *logWriter) wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStdout(stdout).
		WithStderr(stderr)
}

// CacheDir returns the directory of the compilation cache under a data
// directory.
func CacheDir(dataDir string) string { return filepath.Join(dataDir, "wasm-cache") }
