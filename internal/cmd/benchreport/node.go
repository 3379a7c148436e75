package main

import (
	"fmt"
	"strings"
)

func ingestSection(r results) string {
	var b strings.Builder
	b.WriteString("## Ingestion\n\n")
	b.WriteString("`BenchmarkIngest` (host) posts realistic ~1 KB events one per request from 16 concurrent keep-alive clients to " +
		"an in-process node whose pipeline is the `noop` processor, answered 202 after a durable commit; `single/bare` is a " +
		"net/http handler that decodes the same JSON and answers 202 without doing anything else, under the same load. " +
		"Clients, node and database share the machine's cores. Target: at least 0.5× the bare handler.\n\n")
	bare, okb := r.get("BenchmarkIngest/single/bare", "events/s")
	b.WriteString("| path | events/s | × bare | target |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&b, "| bare handler | %s | 1 | |\n", num(bare, okb))
	for _, kind := range []string{"postgres", "embedded"} {
		v, ok := r.get("BenchmarkIngest/single/"+kind, "events/s")
		fmt.Fprintf(&b, "| node, %s | %s | %s | %s |\n", kind, num(v, ok), num(v/bare, ok && okb), target(ok && okb, v/bare >= 0.5))
	}
	b.WriteString("\n`BenchmarkBulk` posts 1,000 events per request (one client) through the same node, against a pgx `CopyFrom` " +
		"of the same rows into a table like `events` (same columns, generated search column and indexes) in the same run. " +
		"Target: at least 0.6× the raw copy.\n\n")
	node, ok1 := r.get("BenchmarkBulk/postgres/node", "events/s")
	raw, ok2 := r.get("BenchmarkBulk/postgres/raw-copyfrom", "events/s")
	b.WriteString("| path | events/s | × raw | target |\n|---|---:|---:|---|\n")
	fmt.Fprintf(&b, "| raw CopyFrom | %s | 1 | |\n", num(raw, ok2))
	fmt.Fprintf(&b, "| node, bulk, PostgreSQL | %s | %s | %s |\n", num(node, ok1), num(node/raw, ok1 && ok2), target(ok1 && ok2, node/raw >= 0.6))
	emb, ok3 := r.get("BenchmarkBulk/embedded/node", "events/s")
	if nsEmb, ok4 := r.get("BenchmarkCommit/raw-insert/1000", "ns/event"); ok4 {
		rawEmb := 1e9 / nsEmb
		fmt.Fprintf(&b, "| embedded raw batch insert (host/store/embedded) | %s | 1 | |\n", num(rawEmb, true))
		fmt.Fprintf(&b, "| node, bulk, embedded | %s | %s | %s |\n", num(emb, ok3), num(emb/rawEmb, ok3), target(ok3, emb/rawEmb >= 0.6))
	}
	if p50, ok := r.get("BenchmarkLatency", "p50-ms"); ok {
		p99, _ := r.get("BenchmarkLatency", "p99-ms")
		max, _ := r.get("BenchmarkLatency", "max-events/s")
		rate, _ := r.get("BenchmarkLatency", "events/s")
		fmt.Fprintf(&b, "\n`BenchmarkLatency` (PostgreSQL): the node sustained %s single events/s in a closed loop; at half that, "+
			"%s events/s sent open-loop for 5 s, latency was p50 %s ms and p99 %s ms (request to durable 202).\n",
			num(max, true), num(rate, true), num(p50, true), num(p99, true))
	}
	return b.String()
}

func target(ok, met bool) string {
	if !ok {
		return "–"
	}
	return verdict(met)
}

func fanoutSection(r results) string {
	var b strings.Builder
	b.WriteString("## WebSocket fan-out\n\n")
	hub, ok1 := r.get("BenchmarkFanout/hub", "msgs/s")
	bare, ok2 := r.get("BenchmarkFanout/bare", "msgs/s")
	mem, ok3 := r.get("BenchmarkFanout/hub", "B/sub")
	fmt.Fprintf(&b, "`BenchmarkFanout` (host/stream): 1,000 real WebSocket clients in a child process, each message encoded once. "+
		"Hub %s msgs/s, bare gorilla/websocket hub %s msgs/s: %s× (target 0.6×, %s). Memory per idle subscriber on the server "+
		"(heap and goroutine stacks): %s KiB (target 32 KiB, %s).\n",
		num(hub, ok1), num(bare, ok2), num(hub/bare, ok1 && ok2), target(ok1 && ok2, hub/bare >= 0.6),
		num(mem/1024, ok3), target(ok3, mem <= 32*1024))
	return b.String()
}

func clusterSection(r results) string {
	var b strings.Builder
	b.WriteString("## Cluster\n\n| what | measured | target |\n|---|---:|---|\n")
	det, ok := r.get("BenchmarkCrashDetection", "s/detect")
	worst, _ := r.get("BenchmarkCrashDetection", "s/worst")
	fmt.Fprintf(&b, "| crash detection, 3 nodes (memberlist in-process, real sockets): mean / worst | %s s / %s s | ≤ 3 s, %s |\n",
		num(det, ok), num(worst, ok), target(ok, worst <= 3))
	conv, ok := r.get("BenchmarkRegistryConvergence", "ns/op")
	fmt.Fprintf(&b, "| registry convergence after a change | %s | ≤ 1 s, %s |\n", ms(conv, ok), target(ok, conv <= 1e9))
	cold, ok1 := r.get("BenchmarkRemoteSpawn/cold", "ms/spawn")
	cached, ok2 := r.get("BenchmarkRemoteSpawn/cached", "ms/spawn")
	fmt.Fprintf(&b, "| remote spawn of scrub (3 MB Go module), cold: fetch, verify, validate, compile | %s ms | |\n", num(cold, ok1))
	fmt.Fprintf(&b, "| remote spawn, module already compiled on the peer | %s ms | ≤ 100 ms, %s |\n", num(cached, ok2), target(ok2, cached <= 100))
	p50, ok1 := r.get("BenchmarkForward", "p50-ms")
	p99, _ := r.get("BenchmarkForward", "p99-ms")
	fmt.Fprintf(&b, "| forwarding a 100-event batch (100 KB) to a peer, added latency p50 / p99 | %s / %s ms | p99 ≤ 5 ms, %s |\n",
		num(p50, ok1), num(p99, ok1), target(ok1, p99 <= 5))
	p50, ok1 = r.get("BenchmarkRelay", "p50-ms")
	p99, _ = r.get("BenchmarkRelay", "p99-ms")
	fmt.Fprintf(&b, "| cross-node stream message, relay p50 / p99 | %s / %s ms | p99 ≤ 100 ms, %s |\n", num(p50, ok1), num(p99, ok1), target(ok1, p99 <= 100))
	one, ok1 := r.get("BenchmarkClusterThroughput/single", "events/s")
	three, ok2 := r.get("BenchmarkClusterThroughput/three", "events/s")
	fmt.Fprintf(&b, "\nThroughput of real mesher processes under the same bulk load with scrub on every event (`BenchmarkClusterThroughput`): "+
		"one node %s events/s, three nodes %s events/s (%s×). All nodes, the load generator and PostgreSQL share this machine's "+
		"cores, so three nodes cannot add CPU here: the figure shows what clustering costs on one box (gossip, forwarding, "+
		"three runtimes), not how it scales across machines.\n", num(one, ok1), num(three, ok2), num(three/one, ok1 && ok2))
	b.WriteString("\nRe-placement after a crash is measured by `TestWorkReplacesPlacementsOfADeadPeer` (cluster) and logged: the " +
		"placement moves to another peer in the same callback that learns of the death (0.00 s after detection in the runs " +
		"recorded), against a target of 2 s. Detection of a `kill -9`'d process in the multi-process test is logged by " +
		"`TestClusterShipsWorkAndSurvivesACrash` (about 1.7 s).\n")
	return b.String()
}
