// Command benchreport runs Mesher's benchmarks and writes BENCHMARKS.md.
// Every ratio in the report compares two benchmarks of the same run, on
// the same machine, so that the figures mean something on a shared 2-core
// box. `make bench` runs it.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// suite is one `go test -bench` invocation and the report sections built
// from its results.
type suite struct {
	pkg, bench, benchtime string
	// count overrides -count for slow benchmarks; results accumulate
	// across suites so that a section can use earlier suites' figures.
	count    int
	sections []func(results) string
}

var suites = []suite{
	{pkg: "./host/wasm", bench: "^Benchmark(Noop|Interrupt|Start)$", benchtime: "1s",
		sections: []func(results) string{noopSection, interruptSection, startSection}},
	{pkg: "./plugins/scrub", bench: "^BenchmarkScrub$", benchtime: "1s",
		sections: []func(results) string{scrubSection}},
	{pkg: "./host/store/embedded", bench: "^BenchmarkCommit$", benchtime: "10x"},
	{pkg: "./host/store/postgres", bench: "^BenchmarkDashboards$", benchtime: "300x", count: 1,
		sections: []func(results) string{dashboardSection}},
	{pkg: "./host", bench: "^Benchmark(Ingest|Bulk)$", benchtime: "3s"},
	{pkg: "./host", bench: "^BenchmarkLatency$", benchtime: "1x", count: 1,
		sections: []func(results) string{ingestSection}},
	{pkg: "./host/stream", bench: "^BenchmarkFanout$", benchtime: "2x",
		sections: []func(results) string{fanoutSection}},
	{pkg: "./cluster", bench: "^Benchmark(CrashDetection|RegistryConvergence|Forward|Relay)$", benchtime: "1s", count: 1},
	{pkg: "./cmd/mesher", bench: "^BenchmarkRemoteSpawn$", benchtime: "3x", count: 1},
	{pkg: "./cmd/mesher", bench: "^BenchmarkClusterThroughput$", benchtime: "1x", count: 1,
		sections: []func(results) string{clusterSection}},
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "report file")
	count := flag.Int("count", 5, "runs of each benchmark; the report shows medians")
	only := flag.String("only", "", "run only suites whose package contains this")
	flag.Parse()
	if err := run(*out, *count, *only, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out string, count int, only string, log io.Writer) error {
	var body strings.Builder
	var commands []string
	all := results{}
	for _, s := range suites {
		if only != "" && !strings.Contains(s.pkg, only) {
			continue
		}
		n := count
		if s.count > 0 {
			n = s.count
		}
		args := []string{"test", "-run", "^$", "-bench", s.bench, "-benchtime", s.benchtime, "-count", strconv.Itoa(n), "-timeout", "30m", s.pkg}
		commands = append(commands, "go "+strings.Join(args, " "))
		fmt.Fprintln(log, "$ go", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(&buf, log)
		cmd.Stderr = log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", s.pkg, err)
		}
		for name, units := range parse(&buf) {
			all[name] = units
		}
		for _, sec := range s.sections {
			body.WriteString(sec(all))
			body.WriteString("\n")
		}
	}
	var doc strings.Builder
	fmt.Fprintf(&doc, "# Benchmarks\n\nWritten by `make bench` (internal/cmd/benchreport) on %s.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&doc, "Machine: %s, %d cores, %s. Each figure is the median of %d runs unless its command says -count 1; every ratio compares benchmarks of the same `make bench` run.\n\n",
		cpuModel(), runtime.NumCPU(), goVersion(), count)
	doc.WriteString("Commands:\n\n```\n" + strings.Join(commands, "\n") + "\n```\n\n")
	doc.WriteString(body.String())
	return os.WriteFile(out, []byte(doc.String()), 0o644)
}

// results maps a benchmark name (without the -N suffix) and a unit to the
// median value.
type results map[string]map[string]float64

func (r results) get(name, unit string) (float64, bool) {
	v, ok := r[name][unit]
	return v, ok
}

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader) results {
	samples := map[string]map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if samples[m[1]] == nil {
				samples[m[1]] = map[string][]float64{}
			}
			samples[m[1]][f[i+1]] = append(samples[m[1]][f[i+1]], v)
		}
	}
	res := results{}
	for name, units := range samples {
		res[name] = map[string]float64{}
		for unit, vs := range units {
			sort.Float64s(vs)
			res[name][unit] = vs[len(vs)/2]
		}
	}
	return res
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func goVersion() string {
	b, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(b))
}

func num(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func ms(ns float64, ok bool) string {
	if !ok {
		return "–"
	}
	if ns < 1e5 {
		return num(ns/1e3, true) + " µs"
	}
	return num(ns/1e6, true) + " ms"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
