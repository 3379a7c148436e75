package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pgProxy stands between a node and PostgreSQL so that a test can make the
// database go away — every connection reset and new ones refused, as in a
// restart — without touching the server other tests share.
type pgProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// cut resets every connection and refuses new ones until restore.
func (p *pgProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *pgProxy) restore() { p.down.Store(false) }

// TestPostgresRestartMidLoad drives load while PostgreSQL goes away and
// comes back: requests fail with 503 and Retry-After meanwhile, succeed
// again after, and every event that got a 202 is stored.
func TestPostgresRestartMidLoad(t *testing.T) {
	env := nodeEnv(t, postgresStore)
	u, err := url.Parse(env["MESHER_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	env["MESHER_DATABASE_URL"] = u.String()
	n := startNode(t, env)
	_, key := n.project("app")

	var mu sync.Mutex
	var acked []string
	var unavailable, other atomic.Int64
	var retryAfterMissing atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", n.URL+"/api/v1/events", strings.NewReader(fmt.Sprintf(`{"message":"load %d-%d"}`, g, i)))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				var body map[string]string
				json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 202:
					mu.Lock()
					acked = append(acked, body["id"])
					mu.Unlock()
				case 503:
					unavailable.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						retryAfterMissing.Store(true)
					}
					time.Sleep(50 * time.Millisecond)
				default:
					other.Add(1)
				}
			}
		}(g)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, func() bool { return count() > 50 })
	proxy.cut()
	waitFor(t, func() bool { return unavailable.Load() > 0 })
	time.Sleep(2 * time.Second)
	during := count()
	proxy.restore()
	waitFor(t, func() bool { return count() > during+50 })
	close(stop)
	wg.Wait()

	if retryAfterMissing.Load() {
		t.Error("a 503 came without Retry-After")
	}
	if other.Load() > 0 {
		t.Errorf("%d requests failed otherwise than with 202 or 503", other.Load())
	}
	for _, id := range acked {
		want(t, n.do("GET", "/api/v1/projects/app/events/"+id, n.Admin, nil), 200, "")
	}
	t.Logf("%d events acknowledged, %d answered 503 while the database was away; all acknowledged events stored", len(acked), unavailable.Load())
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
