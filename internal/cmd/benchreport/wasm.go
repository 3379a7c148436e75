package main

import (
	"fmt"
	"strings"
)

func noopSection(r results) string {
	var b strings.Builder
	b.WriteString("## Wasm cost per event: the noop processor\n\n")
	b.WriteString("`BenchmarkNoop` runs batches of realistic ~1 KB events through the `noop` plugin in Wasm and through the " +
		"same SDK code compiled natively (decode the batch, call the handler, encode a keep record per event). The " +
		"difference is what the Wasm boundary costs per event: copying the batch in, running the SDK in Wasm, " +
		"decoding its output. Target: at most 1 µs per event above the guest's own work at batch sizes of 100 and more.\n\n")
	b.WriteString("| batch | native ns/event | Wasm ns/event | Wasm − native | target |\n|---:|---:|---:|---:|---|\n")
	for _, n := range []int{1, 10, 100, 1000} {
		nat, ok1 := r.get(fmt.Sprintf("BenchmarkNoop/native/batch=%d", n), "ns/event")
		was, ok2 := r.get(fmt.Sprintf("BenchmarkNoop/wasm/batch=%d", n), "ns/event")
		target := "–"
		if n >= 100 && ok1 && ok2 {
			target = verdict(was-nat <= 1000)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", n, num(nat, ok1), num(was, ok2), num(was-nat, ok1 && ok2), target)
	}
	return b.String()
}

func interruptSection(r results) string {
	var b strings.Builder
	b.WriteString("## Stopping runaway guests\n\n")
	b.WriteString("`BenchmarkInterrupt` runs the same guests under each way of enforcing the deadline (see RATIONALE.md, " +
		"\"Why are modules instrumented instead of using WithCloseOnContextDone?\"). `none` cannot stop an infinite loop " +
		"and is the baseline; `spin` is a tight loop of 10^6 iterations, the worst case for per-iteration checks.\n\n")
	b.WriteString("| guest | unit | none | loops | loops+calls (used) | close-on-context-done |\n|---|---|---:|---:|---:|---:|\n")
	for _, g := range []struct{ name, unit string }{{"noop", "ns/event"}, {"scrub", "ns/event"}, {"spin", "ns/iteration"}} {
		base, okb := r.get("BenchmarkInterrupt/"+g.name+"/none", g.unit)
		if !okb {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", g.name, g.unit, num(base, true))
		for _, mode := range []string{"loops", "loops+calls", "close-on-context-done"} {
			v, ok := r.get("BenchmarkInterrupt/"+g.name+"/"+mode, g.unit)
			fmt.Fprintf(&b, " %s (%s×) |", num(v, ok), num(v/base, ok))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func startSection(r results) string {
	var b strings.Builder
	b.WriteString("## Getting a processor ready (noop, a 3 MB Go module)\n\n")
	b.WriteString("Target: at most 5 ms to a ready processor on a cache hit.\n\n| step | time |\n|---|---:|\n")
	rows := []struct{ name, label string }{
		{"BenchmarkStart/compile-cold", "validate + instrument + compile, empty cache"},
		{"BenchmarkStart/ready-from-disk-cache", "new runtime, load from the on-disk cache, first instance (a restart)"},
		{"BenchmarkStart/parts/sha256", "… of which: SHA-256 of the module"},
		{"BenchmarkStart/parts/instrument", "… of which: instrumentation"},
		{"BenchmarkStart/parts/wazero-compile-from-disk-cache", "… of which: wazero decoding the module and reading its cache"},
		{"BenchmarkStart/instance-start", "new instance of a module compiled in this process (cache hit)"},
		{"BenchmarkStart/pooled-batch-of-1", "a batch of 1 on a pooled instance"},
	}
	for _, row := range rows {
		v, ok := r.get(row.name, "ns/op")
		fmt.Fprintf(&b, "| %s | %s |\n", row.label, ms(v, ok))
	}
	inst, ok := r.get("BenchmarkStart/instance-start", "ns/op")
	disk, ok2 := r.get("BenchmarkStart/ready-from-disk-cache", "ns/op")
	cold, ok3 := r.get("BenchmarkStart/compile-cold", "ns/op")
	if ok && ok2 && ok3 {
		fmt.Fprintf(&b, "\nIn-process cache hit to a ready processor: %s, target %s. After a restart the on-disk cache makes "+
			"loading %.0f× faster than compiling, but wazero still decodes the whole module, so that path takes %s: "+
			"above the 5 ms target, paid once per module at start-up.\n", ms(inst, true), verdict(inst <= 5e6), cold/disk, ms(disk, true))
	}
	return b.String()
}

func scrubSection(r results) string {
	var b strings.Builder
	b.WriteString("## scrub: Wasm against the same code compiled natively\n\n")
	nat, ok1 := r.get("BenchmarkScrub/native", "ns/event")
	was, ok2 := r.get("BenchmarkScrub/wasm", "ns/event")
	fmt.Fprintf(&b, "Batches of 100 realistic events, some with personal data. Native: %s ns/event; Wasm: %s ns/event; "+
		"ratio Wasm/native: %s×.\n", num(nat, ok1), num(was, ok2), num(was/nat, ok1 && ok2))
	return b.String()
}
