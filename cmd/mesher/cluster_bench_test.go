package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/cluster"
	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// inProcessNode is a cluster node assembled in the test process with the
// same wiring as mesher serve.
type inProcessNode struct {
	node  *host.Node
	store store.Store
	cl    *clustered
	url   string
	rt    *wasm.Runtime
}

func startInProcess(b *testing.B, name, db, cacheDir string, gossip int, seeds ...int) *inProcessNode {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := postgres.Open(ctx, postgres.Config{URL: db})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := wasm.New(ctx, wasm.Config{CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var peers []string
	for _, s := range seeds {
		peers = append(peers, "127.0.0.1:"+strconv.Itoa(s))
	}
	cfg := &serveConfig{NodeName: name, Cookie: testCookie, GossipAddr: "127.0.0.1:" + strconv.Itoa(gossip), Peers: peers}
	cl, err := startCluster(ctx, cfg, ln.Addr().String(), log)
	if err != nil {
		b.Fatal(err)
	}
	hub, _ := stream.New(stream.Config{Logger: log})
	streams := host.NewStreams(hub, log)
	n := host.New(host.Config{NodeName: name, Store: st, Runtime: rt, Streams: streams,
		AdminTokenHash: api.HashToken("test-admin-token-0123456789"), Logger: log})
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/internal/v1/", cl.attach(n, st, streams, hub, cluster.PlacementConfig{SampleInterval: time.Hour}))
	mux.Handle("/", n.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	b.Cleanup(func() {
		srv.Close()
		cl.leave(context.Background())
		n.Shutdown(context.Background())
		rt.Close(context.Background())
		st.Close()
	})
	return &inProcessNode{node: n, store: st, cl: cl, url: "http://" + ln.Addr().String(), rt: rt}
}

// BenchmarkRemoteSpawn measures asking a peer to start an instance of the
// scrub module: cold (the peer fetches the 3 MB module from the requester,
// checks its hash, compiles it) and cached (the peer compiled it before).
func BenchmarkRemoteSpawn(b *testing.B) {
	db := pgtest.URL(b)
	p1, p2 := freePort(b), freePort(b)
	n1 := startInProcess(b, "n1", db, b.TempDir(), p1)
	bin := fixture.Plugin(b, "scrub")
	mod, err := n1.rt.Load(context.Background(), bin)
	if err != nil {
		b.Fatal(err)
	}
	m := &store.Module{Name: "scrub", SHA256: mod.SHA256, Size: len(bin), Manifest: []byte(`{"name":"scrub","version":"1"}`), Wasm: bin}
	if err := n1.store.PutModule(context.Background(), m); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"cold", "cached"} {
		b.Run(mode, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cache := b.TempDir()
				if mode == "cached" {
					cache = fixture.CacheDir(b)
				}
				n2 := startInProcess(b, "n2-"+mode+strconv.Itoa(i), db, cache, p2, p1)
				if mode == "cached" {
					if _, err := n2.rt.Load(context.Background(), bin); err != nil {
						b.Fatal(err)
					}
				}
				deadline := time.Now().Add(10 * time.Second)
				for len(n1.cl.c.Members()) < 2 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := n1.cl.c.Spawn(context.Background(), n2.cl.c.Name(), "scrub", mod.SHA256); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				n2.cl.leave(context.Background())
				p2 = freePort(b)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/spawn")
		})
	}
}

// BenchmarkClusterThroughput drives the same bulk load (scrub on every
// event) for a fixed time at one node, then spread over three nodes of a
// cluster, all real mesher processes sharing one PostgreSQL on this
// machine. Run with -benchtime=1x. The machine's cores are shared by every
// node and the database, so this shows what clustering costs or gains on
// one box, not how it scales across machines.
func BenchmarkClusterThroughput(b *testing.B) {
	const duration = 8 * time.Second
	run := func(b *testing.B, nodes []*node, key string) float64 {
		l := startLoad(func() []*node { return nodes }, key, 6)
		time.Sleep(duration)
		acked := l.end()
		return float64(len(acked)) / duration.Seconds()
	}
	b.Run("single", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tc := startTestCluster(b, 1)
			b.ReportMetric(run(b, tc.nodes, tc.key), "events/s")
		}
	})
	b.Run("three", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tc := startTestCluster(b, 3)
			b.ReportMetric(run(b, tc.nodes, tc.key), "events/s")
		}
	})
}
