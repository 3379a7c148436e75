package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

const testCookie = "cluster-cookie-0123456789"

// freePort returns a port free for both TCP and UDP on 127.0.0.1, for
// gossip.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startGossipNode starts a cluster node on a free gossip port and returns
// it with that port. The port is free when chosen but the process binds it
// seconds later, and tests running beside this one bind ports too: if it
// was taken meanwhile, the node starts again on another.
func startGossipNode(t testing.TB, name, db, cookie string, seeds ...int) (*node, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		n, err := launch(t, clusterEnv(t, name, db, cookie, port, seeds...))
		if err == nil {
			return n, port
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("gossip port %d was taken before %s bound it; trying another", port, name)
	}
}

// clusterEnv is the environment of one node of a test cluster sharing db.
func clusterEnv(t testing.TB, name, db, cookie string, gossip int, seeds ...int) map[string]string {
	env := map[string]string{
		"MESHER_HTTP_ADDR":     "127.0.0.1:0",
		"MESHER_DATA_DIR":      t.TempDir(),
		"MESHER_ADMIN_TOKEN":   "test-admin-token-0123456789",
		"MESHER_LOG_LEVEL":     "info",
		"MESHER_DATABASE_URL":  db,
		"MESHER_NODE_NAME":     name,
		"MESHER_COOKIE":        cookie,
		"MESHER_GOSSIP_ADDR":   "127.0.0.1:" + strconv.Itoa(gossip),
		"MESHER_LOAD_INTERVAL": "500ms",
		"MESHER_PLACE_HIGH":    "0.05",
		"MESHER_PLACE_LOW":     "0.04",
		"MESHER_PLACE_MARGIN":  "0.02",
		"MESHER_PLACE_SAMPLES": "2",
		"MESHER_RATE_LIMIT":    "1000000",
		"MESHER_RATE_BURST":    "1000000",
	}
	if cache := os.Getenv("MESHER_TEST_CACHE"); cache != "" {
		env["MESHER_WASM_CACHE_DIR"] = cache
	}
	var peers []string
	for _, s := range seeds {
		peers = append(peers, "127.0.0.1:"+strconv.Itoa(s))
	}
	env["MESHER_PEERS"] = strings.Join(peers, ",")
	return env
}

type testCluster struct {
	nodes   []*node
	envs    []map[string]string
	key     string
	project string // the id of project "app"
}

// startCluster starts n nodes sharing one fresh database, with a project
// "app" whose pipeline is scrub, and waits until every node sees them all.
func startTestCluster(t testing.TB, n int) *testCluster {
	db := pgtest.URL(t)
	tc := &testCluster{}
	var seed int
	for i := 0; i < n; i++ {
		var seeds []int
		if i > 0 {
			seeds = []int{seed}
		}
		nd, port := startGossipNode(t, fmt.Sprintf("n%d", i+1), db, testCookie, seeds...)
		if i == 0 {
			seed = port
		}
		tc.envs = append(tc.envs, nd.env)
		tc.nodes = append(tc.nodes, nd)
	}
	for _, nd := range tc.nodes {
		waitFor(t, func() bool { return len(nd.alive()) == n })
	}
	tc.project, tc.key = tc.nodes[0].project("app")
	tc.nodes[0].uploadPlugin("scrub")
	want(t, tc.nodes[0].do("PUT", "/api/v1/projects/app/pipeline", tc.nodes[0].Admin, `{"processors":[{"name":"scrub"}]}`), 200, "")
	return tc
}

// describe returns GET /api/v1/cluster.
func (n *node) describe() map[string]any {
	r := n.do("GET", "/api/v1/cluster", n.Admin, nil)
	if r.Status != 200 {
		n.t.Fatalf("cluster: %d %s", r.Status, r.Body)
	}
	return r.JSON
}

// alive returns the names of members this node sees alive.
func (n *node) alive() []string {
	var out []string
	for _, m := range n.describe()["members"].([]any) {
		mm := m.(map[string]any)
		if mm["state"] == "alive" {
			out = append(out, mm["name"].(string))
		}
	}
	return out
}

// heavyBulk is a bulk body whose events keep scrub busy.
func heavyBulk(n int) string {
	extra := map[string]string{}
	for i := 0; i < 40; i++ {
		extra[fmt.Sprintf("k%d", i)] = fmt.Sprintf("value %d mail a%d@example.com from 10.0.0.%d", i, i, i)
	}
	ev := map[string]any{"message": "user bob@example.com paid with 4111 1111 1111 1111", "extra": extra}
	evs := make([]any, n)
	for i := range evs {
		evs[i] = ev
	}
	b, _ := json.Marshal(evs)
	return string(b)
}

// loader posts bulk requests to the given nodes until stopped and records
// every acknowledged id.
type loader struct {
	mu    sync.Mutex
	acked []string
	fails int
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(targets func() []*node, key string, workers int) *loader {
	l := &loader{stop: make(chan struct{})}
	body := heavyBulk(50)
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ts := targets()
				n := ts[(w+i)%len(ts)]
				req, _ := http.NewRequest("POST", n.URL+"/api/v1/events/bulk", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					l.mu.Lock()
					l.fails++
					l.mu.Unlock()
					continue
				}
				var r struct{ IDs []string }
				json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				l.mu.Lock()
				if resp.StatusCode == 202 {
					l.acked = append(l.acked, r.IDs...)
				} else {
					l.fails++
				}
				l.mu.Unlock()
			}
		}(w)
	}
	return l
}

func (l *loader) end() []string {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}

var spawnedRE = regexp.MustCompile(`mesher_spawned_events\{[^}]*for="n1"[^}]*\} (\d+)`)

// spawnedEvents returns the events instances spawned for n1 processed on n.
func (n *node) spawnedEvents() int {
	m := spawnedRE.FindAllStringSubmatch(string(n.do("GET", "/metrics", "", nil).Body), -1)
	total := 0
	for _, s := range m {
		v, _ := strconv.Atoi(s[1])
		total += v
	}
	return total
}

// TestClusterShipsWorkAndSurvivesACrash runs three real mesher processes
// sharing PostgreSQL. Load at n1 makes it spawn its busy processor on a
// peer, which then processes events (registry and per-node metrics show
// it). Then the peer is killed with -9 under load: the survivors see it
// dead, it leaves the registry, a stream subscriber on another node keeps
// receiving events from n1, and every event that got a 202 is stored.
func TestClusterShipsWorkAndSurvivesACrash(t *testing.T) {
	tc := startTestCluster(t, 3)
	n1, n2, n3 := tc.nodes[0], tc.nodes[1], tc.nodes[2]
	// Subscribers on both peers; the one on the node that survives must
	// receive every event committed on n1, exactly once.
	live := map[*node]chan string{}
	lagged := map[*node]*atomic.Int64{} // drops the node's hub announced
	for _, p := range []*node{n2, n3} {
		ws := p.dial("app", tc.key)
		ch := make(chan string, 200000)
		live[p], lagged[p] = ch, new(atomic.Int64)
		go func() {
			for {
				var m map[string]any
				if err := ws.ReadJSON(&m); err != nil {
					close(ch)
					return
				}
				switch m["type"] {
				case "event":
					ch <- m["id"].(string)
				case "lagged":
					n, _ := m["dropped"].(float64)
					lagged[p].Add(int64(n))
				}
			}
		}()
	}
	// Stream interests reach n1 by gossip before any event is committed.
	waitFor(t, func() bool {
		interests, _ := n1.describe()["interests"].(map[string]any)
		for _, p := range []*node{n2, n3} {
			projects, _ := interests[p.env["MESHER_NODE_NAME"]].([]any)
			found := false
			for _, id := range projects {
				found = found || id == tc.project
			}
			if !found {
				return false
			}
		}
		return true
	})

	alive := []*node{n1, n2, n3}
	var mu sync.Mutex
	targets := func() []*node { mu.Lock(); defer mu.Unlock(); return []*node{n1} }
	load := startLoad(targets, tc.key, 4)

	// n1 spawns scrub on a peer, and the peer processes events for it.
	var peer *node
	waitFor(t, func() bool {
		for _, p := range alive[1:] {
			if p.spawnedEvents() > 0 {
				peer = p
				return true
			}
		}
		return false
	})
	// The registry, read from every node, shows the spawned instance.
	for _, nd := range alive {
		waitFor(t, func() bool {
			for _, in := range nd.describe()["registry"].(map[string]any)["scrub"].([]any) {
				im := in.(map[string]any)
				if im["kind"] == "spawned" && im["for"] == "n1" && im["node"] == peer.env["MESHER_NODE_NAME"] {
					return true
				}
			}
			return false
		})
	}
	t.Logf("n1 placed scrub on %s, which processed %d events for it", peer.env["MESHER_NODE_NAME"], peer.spawnedEvents())

	// Kill the peer running work for n1; the third node watches.
	var watcher *node
	for _, p := range alive[1:] {
		if p != peer {
			watcher = p
		}
	}
	killedName := peer.env["MESHER_NODE_NAME"]
	killedAt := time.Now()
	peer.kill()
	waitFor(t, func() bool {
		for _, m := range watcher.describe()["members"].([]any) {
			mm := m.(map[string]any)
			if mm["name"] == killedName && mm["state"] == "dead" {
				return true
			}
		}
		return false
	})
	t.Logf("%s seen dead by %s %.2fs after kill -9", killedName, watcher.env["MESHER_NODE_NAME"], time.Since(killedAt).Seconds())
	waitFor(t, func() bool {
		for _, in := range n1.describe()["registry"].(map[string]any)["scrub"].([]any) {
			if in.(map[string]any)["node"] == killedName {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // keep loading the survivors
	acked := load.end()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}
	for _, id := range acked {
		want(t, n1.do("GET", "/api/v1/projects/app/events/"+id, n1.Admin, nil), 200, "")
	}
	// The subscriber on the surviving peer received every event committed
	// on n1, across the crash, exactly once.
	seen := map[string]bool{}
	deadline := time.After(15 * time.Second)
drain:
	for len(seen) < len(acked) {
		select {
		case id, ok := <-live[watcher]:
			if !ok {
				break drain
			}
			if seen[id] {
				t.Errorf("event %s delivered twice", id)
			}
			seen[id] = true
		case <-deadline:
			break drain
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("stream on %s received %d of %d events committed on n1 (lagged notices announced %d dropped)",
			watcher.env["MESHER_NODE_NAME"], len(seen), len(acked), lagged[watcher].Load())
	}
	t.Logf("%d events acknowledged across the crash, all stored; %d requests failed", len(acked), load.fails)
}

// TestClusterRefusesWrongCookie starts a node with another cookie: it never
// becomes a member.
func TestClusterRefusesWrongCookie(t *testing.T) {
	db := pgtest.URL(t)
	n1, p1 := startGossipNode(t, "n1", db, testCookie)
	intruder, _ := startGossipNode(t, "x1", db, "another-cookie-0123456789", p1)
	time.Sleep(3 * time.Second)
	if got := n1.alive(); len(got) != 1 {
		t.Fatalf("n1 sees %v, want only itself", got)
	}
	if got := intruder.alive(); len(got) != 1 {
		t.Fatalf("the intruder sees %v, want only itself", got)
	}
	// Node-to-node requests without a valid signature are refused.
	req, _ := http.NewRequest("GET", n1.URL+"/internal/v1/modules/abc", nil)
	req.Header.Set("X-Mesher-Node", "x1")
	req.Header.Set("X-Mesher-Time", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("X-Mesher-Signature", "00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged node-to-node request got %d, want 401", resp.StatusCode)
	}
}

// singletonOwners returns the nodes the registry, read from n, lists as
// owners of a singleton processor.
func (n *node) singletonOwners(name string) []string {
	var out []string
	reg, _ := n.describe()["registry"].(map[string]any)[name].([]any)
	for _, in := range reg {
		im := in.(map[string]any)
		if im["kind"] == "singleton" {
			out = append(out, im["node"].(string))
		}
	}
	return out
}

// TestClusterSingleton runs a processor declared singleton in a 3-node
// cluster: exactly one node owns it and events sent to any node are
// processed there; when the owner is killed, events are passed on flagged
// (never lost) until another node takes over after the lease expires, and
// then processed again.
func TestClusterSingleton(t *testing.T) {
	tc := startTestCluster(t, 3)
	n1 := tc.nodes[0]
	src, err := os.ReadFile(filepath.Join(fixture.Root(t), "abi", "testdata", "warn.wat"))
	if err != nil {
		t.Fatal(err)
	}
	bin := fixture.WAT(t, string(src), `{"name":"warn","version":"1.0.0","mode":"singleton"}`)
	want(t, n1.do("PUT", "/api/v1/processors/warn", n1.Admin, bin), 201, "")
	want(t, n1.do("PUT", "/api/v1/projects/app/pipeline", n1.Admin, `{"processors":[{"name":"warn"}]}`), 200, "")

	var owner string
	waitFor(t, func() bool {
		for _, nd := range tc.nodes {
			if got := nd.singletonOwners("warn"); len(got) != 1 {
				return false
			} else {
				owner = got[0]
			}
		}
		return true
	})
	t.Logf("warn is owned by %s", owner)
	level := func(nd *node, id string) (string, any) {
		r := nd.do("GET", "/api/v1/projects/app/events/"+id, nd.Admin, nil)
		want(t, r, 200, "")
		ev := r.JSON["event"].(map[string]any)
		return ev["level"].(string), r.JSON["flags"]
	}
	send := func(nd *node) string {
		r := nd.do("POST", "/api/v1/events", tc.key, `{"message":"m","level":"error"}`)
		want(t, r, 202, "")
		return r.str("id")
	}
	for _, nd := range tc.nodes {
		id := send(nd)
		if lvl, flags := level(n1, id); lvl != "warning" || flags != nil {
			t.Errorf("event sent to %s: level %s, flags %v; want processed by the owner", nd.env["MESHER_NODE_NAME"], lvl, flags)
		}
	}

	var killed *node
	var survivors []*node
	for _, nd := range tc.nodes {
		if nd.env["MESHER_NODE_NAME"] == owner {
			killed = nd
		} else {
			survivors = append(survivors, nd)
		}
	}
	killedAt := time.Now()
	killed.kill()
	// Until the lease expires nobody may run it: events are kept, flagged.
	id := send(survivors[0])
	if lvl, flags := level(survivors[0], id); lvl != "error" || flags == nil {
		t.Errorf("event during the outage: level %s, flags %v; want it unprocessed and flagged", lvl, flags)
	}
	var newOwner string
	waitFor(t, func() bool {
		got := survivors[0].singletonOwners("warn")
		if len(got) == 1 && got[0] != owner {
			newOwner = got[0]
			return true
		}
		return false
	})
	t.Logf("%s took warn over %.1fs after %s was killed", newOwner, time.Since(killedAt).Seconds(), owner)
	for _, nd := range survivors {
		waitFor(t, func() bool {
			got := nd.singletonOwners("warn")
			return len(got) == 1 && got[0] == newOwner
		})
		id := send(nd)
		if lvl, flags := level(survivors[0], id); lvl != "warning" || flags != nil {
			t.Errorf("event sent to %s after the takeover: level %s, flags %v", nd.env["MESHER_NODE_NAME"], lvl, flags)
		}
	}
}
