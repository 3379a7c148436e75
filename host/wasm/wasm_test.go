package wasm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/wasmbin"
)

func newRuntime(t testing.TB, cfg wasm.Config) *wasm.Runtime {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = fixture.CacheDir(t)
	}
	r, err := wasm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// testdata assembles testdata/<name>.wat with a manifest named after it.
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	return fixture.WATFile(t, filepath.Join("testdata", name+".wat"), fixture.Manifest(strings.ReplaceAll(name, "_", "-")))
}

func batch(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = abi.AppendRecord(b, &abi.Record{Index: uint32(i), Event: []byte(`{"event_id":"` + strconv.Itoa(i) + `","message":"hello"}`)})
	}
	return b
}

func load(t testing.TB, r *wasm.Runtime, bin []byte) *wasm.Module {
	t.Helper()
	m, err := r.Load(context.Background(), bin)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return m
}

func TestLoadRefusesInvalidModules(t *testing.T) {
	r := newRuntime(t, wasm.Config{Limits: wasm.Limits{Timeout: 300 * time.Millisecond}})
	noop := fixture.Plugin(t, "noop")
	withManifest := func(bin []byte, manifest string) []byte {
		out, err := wasmbin.SetCustomSection(bin, abi.ManifestSection, []byte(manifest))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	twoManifests := append(withManifest(fixture.WATFile(t, "testdata/trap.wat", ""), fixture.Manifest("a")),
		wasmbin.Encode([]wasmbin.Section{{ID: wasmbin.SecCustom, Name: abi.ManifestSection, Data: []byte(fixture.Manifest("b"))}})[8:]...)
	garbage := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(garbage)

	tests := []struct {
		name string
		bin  []byte
		kind wasm.ValidationKind
		msg  string
	}{
		{"garbage bytes", garbage, wasm.InvalidBinary, "not a valid WebAssembly module"},
		{"empty", nil, wasm.InvalidBinary, "bad magic"},
		{"truncated", noop[:len(noop)/2], wasm.InvalidBinary, "exceeds the module"},
		{"too large", make([]byte, wasm.MaxModuleSize+1), wasm.TooLarge, "more than"},
		{"no manifest", fixture.WATFile(t, "testdata/trap.wat", ""), wasm.ManifestMissing, `no "mesher.manifest" custom section`},
		{"manifest not json", fixture.WATFile(t, "testdata/trap.wat", "{name"), wasm.ManifestInvalid, "not valid JSON"},
		{"manifest bad mode", fixture.WATFile(t, "testdata/trap.wat", `{"name":"x","version":"1","mode":"everywhere"}`), wasm.ManifestInvalid, `mode "everywhere"`},
		{"manifest unknown field", fixture.WATFile(t, "testdata/trap.wat", `{"name":"x","version":"1","colour":"red"}`), wasm.ManifestInvalid, "colour"},
		{"manifest bad name", fixture.WATFile(t, "testdata/trap.wat", `{"name":"X Y","version":"1"}`), wasm.ManifestInvalid, "not a valid processor name"},
		{"two manifests", twoManifests, wasm.ManifestInvalid, "it must have one"},
		{"wrong ABI version", testdata(t, "abi_v2"), wasm.ABIVersion, "built for Mesher ABI v2"},
		{"no ABI import", testdata(t, "no_abi"), wasm.ABIMissing, "does not import mesher.abi_v1"},
		{"forbidden import", testdata(t, "forbidden_import"), wasm.ForbiddenImport, "import env.http_get is not allowed"},
		{"socket import", testdata(t, "socket_import"), wasm.ForbiddenImport, "no network access"},
		{"bad import signature", testdata(t, "bad_signature"), wasm.ImportSignature, "import mesher.emit has type (i64) -> (i32)"},
		{"no mesher_process", testdata(t, "no_process"), wasm.MissingExport, "does not export mesher_process"},
		{"start section", testdata(t, "start_section"), wasm.StartSection, "start function"},
		{"memory above cap", testdata(t, "big_memory"), wasm.MemoryTooLarge, "2048 pages (128 MiB) requested, cap 1024 pages (64 MiB)"},
		{"initializer loops", testdata(t, "init_loop"), wasm.InstantiateFailure, "_initialize: exceeded its 300ms deadline"},
		{"noop with bad manifest", withManifest(noop, `{"name":"noop","version":""}`), wasm.ManifestInvalid, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Load(context.Background(), tt.bin)
			if err == nil {
				t.Fatal("module was accepted")
			}
			if got := wasm.KindOf(err); got != tt.kind {
				t.Errorf("got kind %q, want %q (error: %v)", got, tt.kind, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got error %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestLoadIsContentAddressed(t *testing.T) {
	r := newRuntime(t, wasm.Config{})
	bin := fixture.Plugin(t, "noop")
	m1, m2 := load(t, r, bin), load(t, r, bin)
	if m1 != m2 {
		t.Error("loading the same bytes twice compiled them twice")
	}
	if m1.SHA256 != wasm.Hash(bin) || len(m1.SHA256) != 64 {
		t.Errorf("got sha256 %q, want %q", m1.SHA256, wasm.Hash(bin))
	}
	if m1.Manifest.Name != "noop" || m1.Size != len(bin) {
		t.Errorf("got manifest name %q size %d", m1.Manifest.Name, m1.Size)
	}
	if m1.Checks == 0 {
		t.Error("no loop checks were inserted into a Go module")
	}
}

// TestLoadOutlivesImpatientCallers loads a module with a caller that gives
// up at once: it gets its context's error (not a verdict on the module),
// the compilation goes on, and concurrent and later loads share it.
func TestLoadOutlivesImpatientCallers(t *testing.T) {
	r := newRuntime(t, wasm.Config{})
	bin := fixture.Plugin(t, "noop")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Load(ctx, bin)
	var verr *wasm.ValidationError
	if !errors.Is(err, context.Canceled) || errors.As(err, &verr) {
		t.Fatalf("Load with a canceled context: %v; want context.Canceled and no validation error", err)
	}
	mods := make([]*wasm.Module, 4)
	var wg sync.WaitGroup
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mods[i] = load(t, r, bin)
		}()
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent loads of the same bytes returned different modules")
		}
	}
	if m, ok := r.Lookup(wasm.Hash(bin)); !ok || m != mods[0] {
		t.Error("the loaded module is not in the runtime")
	}
}

func TestCompilationCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	bin := testdata(t, "flaky")
	r1 := newRuntime(t, wasm.Config{CacheDir: dir})
	load(t, r1, bin)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache directory is empty after a compile (err %v)", err)
	}
	// A second runtime on the same directory (a restart) loads the module;
	// wazero reads the compiled code from the cache.
	r2 := newRuntime(t, wasm.Config{CacheDir: dir})
	m := load(t, r2, bin)
	p := r2.NewProcessor("flaky", m, wasm.Limits{})
	if recs, err := p.Process(context.Background(), batch(3), 3, nil); err != nil || len(recs) != 3 {
		t.Fatalf("got %d records, err %v; want 3", len(recs), err)
	}
}

func TestNoopKeepsEveryEvent(t *testing.T) {
	r := newRuntime(t, wasm.Config{})
	p := r.NewProcessor("noop", load(t, r, fixture.Plugin(t, "noop")), wasm.Limits{})
	for _, n := range []int{0, 1, 10, 1000} {
		recs, err := p.Process(context.Background(), batch(n), n, nil)
		if err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
		if len(recs) != n {
			t.Fatalf("batch of %d: got %d records", n, len(recs))
		}
		for i, rec := range recs {
			if rec.Index != uint32(i) || rec.Event != nil || rec.Has != 0 {
				t.Fatalf("batch of %d: record %d = %+v, want a plain keep of event %d", n, i, rec, i)
			}
		}
	}
}

func TestHostFunctions(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRuntime(t, wasm.Config{Logger: logger})
	m := load(t, r, fixture.WATFile(t, "testdata/echo_config.wat",
		`{"name":"echo","version":"1","config":[{"key":"title","type":"string","default":"from default"}]}`))
	p := r.NewProcessor("echo", m, wasm.Limits{})

	t.Run("config default", func(t *testing.T) {
		recs, err := p.Process(context.Background(), batch(2), 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[1].Title != `"from default"` {
			t.Fatalf("got %+v, want titles from the manifest default", recs)
		}
	})
	t.Run("config value", func(t *testing.T) {
		s, err := m.Settings(map[string]json.RawMessage{"title": json.RawMessage(`"given"`)})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := p.Process(context.Background(), batch(1), 1, s)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Title != `"given"` {
			t.Fatalf("got title %q, want %q", recs[0].Title, `"given"`)
		}
	})
	t.Run("config checked against manifest", func(t *testing.T) {
		_, err := m.Settings(map[string]json.RawMessage{"titel": json.RawMessage(`"x"`)})
		if err == nil || !strings.Contains(err.Error(), `no config key "titel" (known: "title")`) {
			t.Fatalf("got %v, want an unknown-key error", err)
		}
		_, err = m.Settings(map[string]json.RawMessage{"title": json.RawMessage(`3`)})
		if err == nil || !strings.Contains(err.Error(), "want string") {
			t.Fatalf("got %v, want a type error", err)
		}
	})
	t.Run("log", func(t *testing.T) {
		p := r.NewProcessor("status", load(t, r, testdata(t, "status")), wasm.Limits{})
		_, err := p.Process(context.Background(), batch(1), 1, nil)
		if wasm.ReasonOf(err) != wasm.ReasonStatus || !strings.Contains(err.Error(), "returned status 7") {
			t.Fatalf("got %v, want a status failure", err)
		}
		if !strings.Contains(logs.String(), `level=ERROR msg="cannot process this batch" processor=status`) {
			t.Fatalf("guest log line missing from the host log:\n%s", logs.String())
		}
	})
}

// TestLimits runs each hostile fixture and checks that only its batch
// fails, with the reason named, and that its instance is discarded.
func TestLimits(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := newRuntime(t, wasm.Config{Limits: wasm.Limits{Timeout: timeout}})
	noop := r.NewProcessor("noop", load(t, r, fixture.Plugin(t, "noop")), wasm.Limits{})
	tests := []struct {
		fixture string
		reason  wasm.Reason
		msg     string
	}{
		{"loop", wasm.ReasonTimeout, "exceeded its 300ms deadline"},
		{"membomb", wasm.ReasonMemoryLimit, "unreachable"},
		{"trap", wasm.ReasonTrap, "integer divide by zero"},
		{"huge_output", wasm.ReasonOutputLimit, "output exceeds the limit of 16777216 bytes"},
		{"fanout", wasm.ReasonOutputLimit, "more than 300 records for 3 events"},
		{"bad_output", wasm.ReasonInvalidOutput, "record for event 7, but the batch has 3 events"},
		{"status", wasm.ReasonStatus, "returned status 7"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			p := r.NewProcessor(tt.fixture, load(t, r, testdata(t, tt.fixture)), wasm.Limits{})
			// Other processors keep working while this one misbehaves.
			stopNoop := make(chan struct{})
			var noopBatches atomic.Int64
			var noopErr atomic.Value
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stopNoop:
						return
					default:
					}
					if _, err := noop.Process(context.Background(), batch(10), 10, nil); err != nil {
						noopErr.Store(err)
						return
					}
					noopBatches.Add(1)
				}
			}()
			if tt.fixture == "loop" {
				// An empty batch returns at once and leaves an idle
				// instance, so the timed call below measures the guest's
				// run, not instantiation.
				if _, err := p.Process(context.Background(), nil, 0, nil); err != nil {
					t.Fatalf("empty batch: %v", err)
				}
			}
			waitFor(t, func() bool { return noopBatches.Load() > 0 })
			start := time.Now()
			_, err := p.Process(context.Background(), batch(3), 3, nil)
			elapsed := time.Since(start)
			after := noopBatches.Load()
			waitFor(t, func() bool { return noopBatches.Load() > after })
			close(stopNoop)
			wg.Wait()
			if err == nil {
				t.Fatal("hostile batch succeeded")
			}
			var pe *wasm.ProcessError
			if !errors.As(err, &pe) || pe.Processor != tt.fixture {
				t.Fatalf("got %T %v, want a *ProcessError naming %s", err, err, tt.fixture)
			}
			if pe.Reason != tt.reason {
				t.Errorf("got reason %q, want %q (%v)", pe.Reason, tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
			// A loop runs until its deadline and is stopped then; the
			// others fail on their own. All are bounded by the deadline,
			// with a second to spare for a loaded machine.
			if tt.fixture == "loop" && elapsed < timeout {
				t.Errorf("loop stopped after %v, before its deadline %v", elapsed, timeout)
			}
			if elapsed > timeout+time.Second {
				t.Errorf("batch took %v, well past its deadline %v", elapsed, timeout)
			}
			if st := p.Status(); st.Instances != 0 || st.FailedBatches != 1 {
				t.Errorf("got %d live instances and %d failed batches, want the instance discarded and 1 failure", st.Instances, st.FailedBatches)
			}
			if e := noopErr.Load(); e != nil {
				t.Fatalf("noop failed beside the hostile processor: %v", e)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCancelStopsGuest(t *testing.T) {
	r := newRuntime(t, wasm.Config{Limits: wasm.Limits{Timeout: time.Minute}})
	p := r.NewProcessor("loop", load(t, r, testdata(t, "loop")), wasm.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := p.Process(ctx, batch(1), 1, nil)
	if wasm.ReasonOf(err) != wasm.ReasonCanceled {
		t.Fatalf("got %v, want reason canceled", err)
	}
	// Canceled after 50 ms; the deadline is a minute. The bound is
	// generous for a loaded machine.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("canceled call returned after %v", d)
	}
	if st := p.Status(); st.RecentFailures != 0 {
		t.Errorf("a canceled batch counted as a failure: %+v", st)
	}
}

// rss returns the resident set size and its peak, in bytes.
func rss(t *testing.T) (cur, peak uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status on this system")
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}

func TestMemoryBombStaysUnderCap(t *testing.T) {
	const capBytes = 64 << 20
	r := newRuntime(t, wasm.Config{})
	p := r.NewProcessor("membomb", load(t, r, testdata(t, "membomb")), wasm.Limits{MemoryBytes: capBytes})
	runtime.GC()
	// Writing 5 resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("cannot reset the peak RSS: %v", err)
	}
	before, _ := rss(t)
	for i := 0; i < 3; i++ {
		_, err := p.Process(context.Background(), batch(1), 1, nil)
		if wasm.ReasonOf(err) != wasm.ReasonMemoryLimit {
			t.Fatalf("run %d: got %v, want reason memory_limit", i, err)
		}
	}
	after, peak := rss(t)
	t.Logf("rss before %d MiB, after %d MiB, peak %d MiB", before>>20, after>>20, peak>>20)
	const slack = 48 << 20
	if grew := int64(peak) - int64(before); grew > capBytes+slack {
		t.Errorf("peak RSS grew by %d MiB, more than the %d MiB cap + %d MiB slack", grew>>20, capBytes>>20, slack>>20)
	} else {
		t.Logf("peak RSS grew by %d MiB for a %d MiB cap", grew>>20, capBytes>>20)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestQuarantineAndRecovery(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := newRuntime(t, wasm.Config{Now: clock.Now})
	limits := wasm.Limits{FailureThreshold: 5, FailureWindow: time.Minute, Quarantine: 2 * time.Minute}
	p := r.NewProcessor("flaky", load(t, r, testdata(t, "flaky")), limits)
	ctx := context.Background()
	fail := func() error { _, err := p.Process(ctx, batch(13), 13, nil); return err }
	ok := func() error { _, err := p.Process(ctx, batch(2), 2, nil); return err }

	// Failures spread over more than the window do not quarantine.
	for i := 0; i < 4; i++ {
		if err := fail(); wasm.ReasonOf(err) != wasm.ReasonTrap {
			t.Fatalf("failure %d: got %v, want a trap", i, err)
		}
		clock.Add(20 * time.Second)
	}
	if err := fail(); wasm.ReasonOf(err) != wasm.ReasonTrap {
		t.Fatalf("got %v, want a trap", err)
	}
	if st := p.Status(); st.State != wasm.Healthy {
		t.Fatalf("got state %s after 5 failures over 80s, want healthy (window is 1m)", st.State)
	}
	// Five within a minute do: the ones at 40s, 60s and 80s, and two more.
	for i := 0; i < 2; i++ {
		clock.Add(time.Second)
		fail()
	}
	st := p.Status()
	if st.State != wasm.Quarantined || st.Quarantines != 1 || !st.QuarantinedUntil.Equal(clock.Now().Add(2*time.Minute)) {
		t.Fatalf("got %+v, want quarantined for 2 minutes", st)
	}
	// While quarantined even a good batch is skipped, without running.
	batches := st.Batches
	err := ok()
	if !errors.Is(err, wasm.ErrQuarantined) || wasm.ReasonOf(err) != wasm.ReasonQuarantined {
		t.Fatalf("got %v, want the batch skipped as quarantined", err)
	}
	if st := p.Status(); st.Batches != batches || st.SkippedEvents != 2 {
		t.Fatalf("quarantined processor ran: %+v", st)
	}
	// After the quarantine a failing trial batch quarantines it again.
	clock.Add(2*time.Minute + time.Second)
	if err := fail(); wasm.ReasonOf(err) != wasm.ReasonTrap {
		t.Fatalf("trial: got %v, want a trap", err)
	}
	if st := p.Status(); st.State != wasm.Quarantined || st.Quarantines != 2 {
		t.Fatalf("got %+v after a failed trial, want quarantined again", st)
	}
	// A successful trial makes it healthy.
	clock.Add(2*time.Minute + time.Second)
	if err := ok(); err != nil {
		t.Fatalf("trial: %v", err)
	}
	if st := p.Status(); st.State != wasm.Healthy || st.RecentFailures != 0 {
		t.Fatalf("got %+v after a good trial, want healthy", st)
	}
	// Reset lifts a quarantine by hand.
	for i := 0; i < 5; i++ {
		fail()
	}
	if p.Status().State != wasm.Quarantined {
		t.Fatal("not quarantined after 5 quick failures")
	}
	p.Reset()
	if err := ok(); err != nil || p.Status().State != wasm.Healthy {
		t.Fatalf("after Reset: %v, %+v", err, p.Status())
	}
}

// TestPoolHammer runs many concurrent batches through a processor whose
// guest traps if two calls ever share an instance.
func TestPoolHammer(t *testing.T) {
	r := newRuntime(t, wasm.Config{})
	const maxInstances = 3
	p := r.NewProcessor("reentrancy", load(t, r, testdata(t, "reentrancy")), wasm.Limits{Instances: maxInstances})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var peak atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				n := (g+i)%17 + 1
				recs, err := p.Process(context.Background(), batch(n), n, nil)
				if err != nil {
					errs <- err
					return
				}
				if len(recs) != n {
					errs <- fmt.Errorf("got %d records for %d events", len(recs), n)
					return
				}
				if live := int64(p.Status().Instances); live > peak.Load() {
					peak.Store(live)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak.Load() > maxInstances {
		t.Errorf("saw %d live instances, limit %d", peak.Load(), maxInstances)
	}
	if st := p.Status(); st.Batches != 16*200 || st.FailedBatches != 0 {
		t.Errorf("got %+v, want 3200 good batches", st)
	}
}

func TestWaitingForInstanceHonoursContext(t *testing.T) {
	r := newRuntime(t, wasm.Config{Limits: wasm.Limits{Timeout: 2 * time.Second}})
	p := r.NewProcessor("loop", load(t, r, testdata(t, "loop")), wasm.Limits{Instances: 1})
	go p.Process(context.Background(), batch(1), 1, nil) // occupies the only instance
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Process(ctx, batch(1), 1, nil)
	if wasm.ReasonOf(err) != wasm.ReasonCanceled || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want canceled while waiting for an instance", err)
	}
}

// TestABIExample builds the WAT processor of abi/ABI.md and checks that it
// does what the document says.
func TestABIExample(t *testing.T) {
	root := fixture.Root(t)
	doc, err := os.ReadFile(filepath.Join(root, "abi", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "abi", "testdata", "warn.wat"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```wat\n"+string(src)+"```") {
		t.Fatal("abi/testdata/warn.wat differs from the WAT example in abi/ABI.md")
	}
	r := newRuntime(t, wasm.Config{})
	p := r.NewProcessor("warn", load(t, r, fixture.WAT(t, string(src), `{"name":"warn","version":"1.0.0"}`)), wasm.Limits{})
	recs, err := p.Process(context.Background(), batch(3), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	for i, rec := range recs {
		if rec.Index != uint32(i) || rec.Level != "warning" || len(rec.Tags) != 1 || rec.Tags[0] != (abi.Tag{Key: "source", Value: "wat"}) {
			t.Errorf("record %d = %+v, want level warning and tag source=wat", i, rec)
		}
	}
}
