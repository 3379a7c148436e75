package host_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

const adminToken = "bench-admin-token-0123456789"

// benchNode is an in-process node behind an httptest server, with a
// project whose pipeline is the noop processor.
type benchNode struct {
	URL, Key string
	Store    store.Store
	Pool     *pgxpool.Pool // PostgreSQL only
	Project  string
}

func newBenchNode(b *testing.B, kind string) *benchNode {
	b.Helper()
	ctx := context.Background()
	var st store.Store
	bn := &benchNode{}
	switch kind {
	case "postgres":
		pg, err := postgres.Open(ctx, postgres.Config{URL: pgtest.URL(b)})
		if err != nil {
			b.Fatal(err)
		}
		st, bn.Pool = pg, pg.Pool()
	case "embedded":
		e, err := embedded.Open(ctx, embedded.Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		st = e
	}
	bn.Store = st
	rt, err := wasm.New(ctx, wasm.Config{CacheDir: fixture.CacheDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	hub, err := stream.New(stream.Config{})
	if err != nil {
		b.Fatal(err)
	}
	n := host.New(host.Config{
		NodeName: "bench", Store: st, Runtime: rt, Streams: host.NewStreams(hub, nil),
		AdminTokenHash: api.HashToken(adminToken),
		Limits:         api.Limits{RateLimit: 1e9, RateBurst: 1e9},
	})
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	b.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
		rt.Close(context.Background())
		st.Close()
	})
	bn.URL = srv.URL
	var proj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	call(b, "POST", srv.URL+"/api/v1/projects", adminToken, []byte(`{"name":"bench"}`), &proj)
	bn.Key = proj.APIKey
	bn.Project = proj.ID
	call(b, "PUT", srv.URL+"/api/v1/processors/noop", adminToken, fixture.Plugin(b, "noop"), nil)
	call(b, "PUT", srv.URL+"/api/v1/projects/bench/pipeline", adminToken, []byte(`{"processors":[{"name":"noop"}]}`), nil)
	return bn
}

func call(b testing.TB, method, url, token string, body []byte, out any) {
	b.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.Fatal(err)
		}
	}
}

// bodies returns n realistic ~1 KB events as JSON, without ids so that the
// node assigns fresh ones.
func bodies(n int) [][]byte {
	out := make([][]byte, n)
	for i, e := range storetest.Events("00000000-0000-4000-8000-000000000000", n, 20, time.Now()) {
		var m map[string]any
		json.Unmarshal(e.Body, &m)
		delete(m, "event_id")
		out[i], _ = json.Marshal(m)
	}
	return out
}

// post sends one request and fails unless it gets 202.
func post(client *http.Client, url, key string, body []byte) error {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// parallelism is the number of concurrent clients per GOMAXPROCS.
const parallelism = 8

func client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
}

// BenchmarkIngest measures single-event ingestion through the noop
// processor with a durable commit, against a bare net/http handler doing
// the same JSON decode and nothing else, under the same concurrent load.
func BenchmarkIngest(b *testing.B) {
	evs := bodies(1000)
	run := func(b *testing.B, url, key string) {
		c := client()
		var i atomic.Int64
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := post(c, url, key, evs[i.Add(1)%int64(len(evs))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("single/bare", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(map[string]string{"id": "00000000-0000-4000-8000-000000000000"})
		}))
		defer srv.Close()
		run(b, srv.URL, "")
	})
	for _, kind := range []string{"embedded", "postgres"} {
		b.Run("single/"+kind, func(b *testing.B) {
			n := newBenchNode(b, kind)
			run(b, n.URL+"/api/v1/events", n.Key)
		})
	}
}

// BenchmarkBulk measures bulk ingestion, 1,000 events per request through
// the noop processor, against writing the same rows directly: a pgx
// CopyFrom into a table like events (same columns, generated search column
// and indexes). The embedded store's baseline, a prepared INSERT per row in
// one transaction, is BenchmarkCommit/raw-insert/1000 in host/store/embedded,
// run by the same `make bench`.
func BenchmarkBulk(b *testing.B) {
	const n = 1000
	evs := bodies(n)
	bulk := append([]byte("["), bytes.Join(evs, []byte(","))...)
	bulk = append(bulk, ']')
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	}
	for _, kind := range []string{"postgres", "embedded"} {
		b.Run(kind+"/node", func(b *testing.B) {
			bn := newBenchNode(b, kind)
			c := client()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := post(c, bn.URL+"/api/v1/events/bulk", bn.Key, bulk); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b)
		})
	}
	b.Run("postgres/raw-copyfrom", func(b *testing.B) {
		ctx := context.Background()
		pg, err := postgres.Open(ctx, postgres.Config{URL: pgtest.URL(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer pg.Close()
		if _, err := pg.Pool().Exec(ctx, "CREATE TABLE raw_events (LIKE events INCLUDING ALL)"); err != nil {
			b.Fatal(err)
		}
		project := storetest.NewID()
		cols := []string{"id", "project_id", "issue_id", "fingerprint", "title", "level", "message",
			"environment", "release", "tags", "timestamp", "received_at", "body", "flags"}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			rows := make([][]any, 0, n)
			for _, e := range storetest.Events(project, n, 20, time.Now()) {
				tags, _ := json.Marshal(e.Tags)
				rows = append(rows, []any{uuid(e.ID), uuid(e.ProjectID), int64(1), e.Fingerprint, e.Title, e.Level, e.Message,
					e.Environment, e.Release, tags, e.Timestamp, e.ReceivedAt, []byte(e.Body), nil})
			}
			b.StartTimer()
			if _, err := pg.Pool().CopyFrom(ctx, pgx.Identifier{"raw_events"}, cols, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
}

func uuid(s string) [16]byte {
	var u [16]byte
	hex.Decode(u[:], []byte(strings.ReplaceAll(s, "-", "")))
	return u
}

// BenchmarkLatency measures single-event ingestion latency on PostgreSQL
// at half the rate the node sustains: it first finds the maximum with a
// closed loop, then sends at half that rate, open loop, and reports the
// 50th and 99th percentiles. Run with -benchtime=1x.
func BenchmarkLatency(b *testing.B) {
	bn := newBenchNode(b, "postgres")
	evs := bodies(1000)
	c := client()
	url := bn.URL + "/api/v1/events"
	// Closed loop for 3 s to find the maximum rate.
	var sent atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < parallelism*2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if post(c, url, bn.Key, evs[sent.Add(1)%1000]) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	max := float64(sent.Load()) / 3
	rate := max / 2
	// Open loop at half the maximum for 5 s.
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for i := 0; time.Since(start) < 5*time.Second; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			if err := post(c, url, bn.Key, evs[i%1000]); err != nil {
				failed.Add(1)
				return
			}
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed at half the maximum rate", failed.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(max, "max-events/s")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
