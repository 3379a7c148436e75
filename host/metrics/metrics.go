// Package metrics keeps a node's counters, gauges and histograms and writes
// them in the Prometheus text exposition format. It is deliberately small:
// metrics are registered once at start, labels are fixed per series, and
// updates are lock-free.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metric families. The zero value is not usable; use New.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
	funcs    []func() // refresh gauges before a scrape
}

type family struct {
	name, help, kind string
	series           map[string]metric // by rendered labels
}

type metric interface {
	write(w io.Writer, name, labels string)
}

// New returns an empty registry.
func New() *Registry { return &Registry{families: map[string]*family{}} }

func (r *Registry) get(name, help, kind, labels string, make func() metric) metric {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.families[name]
	if !ok {
		f = &family{name: name, help: help, kind: kind, series: map[string]metric{}}
		r.families[name] = f
	}
	if f.kind != kind {
		panic(fmt.Sprintf("metric %s registered as %s and %s", name, f.kind, kind))
	}
	m, ok := f.series[labels]
	if !ok {
		m = make()
		f.series[labels] = m
	}
	return m
}

// Labels renders label pairs ("k1", "v1", "k2", "v2") for a series.
func Labels(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Counter is a monotonically increasing value.
type Counter struct{ v atomic.Uint64 }

// Add increases the counter by n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc increases the counter by one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) write(w io.Writer, name, labels string) {
	fmt.Fprintf(w, "%s%s %d\n", name, labels, c.v.Load())
}

// Counter returns the counter with these labels, creating it if needed.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	return r.get(name, help, "counter", Labels(labels...), func() metric { return &Counter{} }).(*Counter)
}

// Gauge is a value that goes up and down.
type Gauge struct{ bits atomic.Uint64 }

// Set stores v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) {
	for {
		old := g.bits.Load()
		if g.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) write(w io.Writer, name, labels string) {
	fmt.Fprintf(w, "%s%s %s\n", name, labels, formatFloat(g.Value()))
}

// Gauge returns the gauge with these labels, creating it if needed.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	return r.get(name, help, "gauge", Labels(labels...), func() metric { return &Gauge{} }).(*Gauge)
}

// OnScrape registers fn to run before every scrape, to refresh gauges whose
// values live elsewhere.
func (r *Registry) OnScrape(fn func()) {
	r.mu.Lock()
	r.funcs = append(r.funcs, fn)
	r.mu.Unlock()
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, plus +Inf
	sum    Gauge
	count  atomic.Uint64
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
}

func (h *Histogram) write(w io.Writer, name, labels string) {
	inner := strings.TrimSuffix(strings.TrimPrefix(labels, "{"), "}")
	sep := ""
	if inner != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, inner, sep, formatFloat(b), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, inner, sep, cum)
	fmt.Fprintf(w, "%s_sum%s %s\n", name, labels, formatFloat(h.sum.Value()))
	fmt.Fprintf(w, "%s_count%s %d\n", name, labels, h.count.Load())
}

// Histogram returns the histogram with these labels, creating it with the
// given upper bounds (sorted ascending) if needed.
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	return r.get(name, help, "histogram", Labels(labels...), func() metric {
		return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	}).(*Histogram)
}

// Common bucket layouts.
var (
	// LatencyBuckets are seconds from 100 µs to 10 s.
	LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// SizeBuckets are counts from 1 to 10,000.
	SizeBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}
)

// WriteTo writes every metric in the Prometheus text format, families and
// series sorted so that output is stable.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	funcs := append([]func(){}, r.funcs...)
	r.mu.Unlock()
	for _, fn := range funcs {
		fn()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countingWriter{w: w}
	for _, n := range names {
		f := r.families[n]
		fmt.Fprintf(cw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f.series[k].write(cw, f.name, k)
		}
	}
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
