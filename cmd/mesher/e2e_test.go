package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host/ingest"
)

// dial opens a project's live stream.
func (n *node) dial(project, key string) *websocket.Conn {
	n.t.Helper()
	u := strings.Replace(n.URL, "http://", "ws://", 1) + "/api/v1/projects/" + project + "/stream?key=" + key
	c, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		n.t.Fatalf("dial stream: %v (status %d)", err, status)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// next reads stream messages until one of the wanted type arrives.
func next(t testing.TB, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("reading the stream for a %q message: %v", typ, err)
		}
		if m["type"] == typ {
			return m
		}
	}
}

// TestQuickStart follows the README: create a project, upload a plugin,
// set a pipeline, send an event, see it live and stored, on both stores.
func TestQuickStart(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		n := startNode(t, nodeEnv(t, kind))
		_, key := n.project("shop")
		n.uploadPlugin("scrub")
		n.uploadPlugin("enrich")
		r := n.do("PUT", "/api/v1/projects/shop/pipeline", n.Admin, map[string]any{"processors": []map[string]any{
			{"name": "scrub"},
			{"name": "enrich", "config": map[string]any{"tags": map[string]string{"team": "checkout"}, "environment": "production"}},
		}})
		want(t, r, 200, "")
		ws := n.dial("shop", key)

		r = n.do("POST", "/api/v1/events", key, `{"message":"payment failed for bob@example.com","level":"error","tags":{"region":"eu"}}`)
		want(t, r, 202, "")
		id := r.str("id")

		live := next(t, ws, "event")
		if live["id"] != id {
			t.Fatalf("live event id %v, want %s", live["id"], id)
		}
		issue := next(t, ws, "issue")
		if issue["action"] != "new" {
			t.Errorf("got issue action %v, want new", issue["action"])
		}

		r = n.do("GET", "/api/v1/projects/shop/events/"+id, n.Admin, nil)
		want(t, r, 200, "")
		body, _ := json.Marshal(r.JSON["event"])
		for _, wantIn := range []string{`[email]`, `"team":"checkout"`, `"environment":"production"`, `"region":"eu"`} {
			if !strings.Contains(string(body), wantIn) {
				t.Errorf("stored event lacks %s: %s", wantIn, body)
			}
		}
		if strings.Contains(string(body), "bob@example.com") {
			t.Errorf("stored event still holds the e-mail address: %s", body)
		}
		if r.JSON["issue_id"] == nil || r.JSON["issue_id"] != live["issue_id"] {
			t.Errorf("stored issue_id %v, live %v", r.JSON["issue_id"], live["issue_id"])
		}

		metrics := string(n.do("GET", "/metrics", "", nil).Body)
		for _, line := range []string{
			"mesher_events_stored_total 1",
			"mesher_events_accepted_total 1",
			"mesher_stream_subscribers 1",
			`mesher_commit_seconds_count 1`,
			`mesher_processor_batches{processor="scrub"`,
			`mesher_processor_failed_batches{processor="enrich"`,
			"mesher_queue_events 0",
			`mesher_ingest_requests_rejected_total{reason="invalid"} 0`,
		} {
			if !strings.Contains(metrics, line) {
				t.Errorf("metrics lack %q", line)
			}
		}
	})
}

// TestBadInput sends what clients get wrong and checks each answer.
func TestBadInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		env := nodeEnv(t, kind)
		env["MESHER_MAX_BODY_BYTES"] = "4096"
		env["MESHER_MAX_BULK_EVENTS"] = "5"
		n := startNode(t, env)
		_, key := n.project("app")
		big := `{"message":"` + strings.Repeat("x", 5000) + `"}`
		six := `[` + strings.TrimSuffix(strings.Repeat(`{"message":"m"},`, 6), ",") + `]`
		keyR := n.do("POST", "/api/v1/projects/app/api-keys", n.Admin, map[string]string{"name": "temp"})
		want(t, keyR, 201, "")
		revoked := keyR.str("key")
		want(t, n.do("POST", "/api/v1/api-keys/"+keyR.str("id")+"/revoke", n.Admin, nil), 200, "")

		tests := []struct {
			name, method, path, token, body string
			status                          int
			msg                             string
		}{
			{"malformed JSON says where", "POST", "/api/v1/events", key, "{\"message\": \"a\",\n \"level\" \"error\"}", 400, "line 2, column"},
			{"truncated JSON", "POST", "/api/v1/events", key, `{"message": "a"`, 400, "malformed JSON"},
			{"array to the single route", "POST", "/api/v1/events", key, `[{"message":"a"}]`, 400, "must be a JSON object"},
			{"wrong type", "POST", "/api/v1/events", key, `{"message":"a","level":7}`, 400, `"level" must be a string`},
			{"no message", "POST", "/api/v1/events", key, `{"level":"error"}`, 400, `"message" must be a non-empty string`},
			{"bad event id", "POST", "/api/v1/events", key, `{"message":"a","event_id":"x"}`, 400, `"event_id" must be a UUID`},
			{"empty bulk", "POST", "/api/v1/events/bulk", key, `[]`, 400, "empty array"},
			{"bulk not an array", "POST", "/api/v1/events/bulk", key, `{"message":"a"}`, 400, "must be a JSON array"},
			{"bad event in bulk named", "POST", "/api/v1/events/bulk", key, `[{"message":"a"},{"message":2}]`, 400, `event 1: "message"`},
			{"oversize body", "POST", "/api/v1/events", key, big, 413, "larger than the limit of 4096 bytes"},
			{"too many events", "POST", "/api/v1/events/bulk", key, six, 413, "6 events; the limit is 5"},
			{"missing key", "POST", "/api/v1/events", "", `{"message":"a"}`, 401, "missing project key"},
			{"unknown key", "POST", "/api/v1/events", "msk_nope", `{"message":"a"}`, 401, "unknown project key"},
			{"revoked key", "POST", "/api/v1/events", revoked, `{"message":"a"}`, 401, "revoked"},
			{"admin route without token", "GET", "/api/v1/projects", "", "", 401, "missing credentials"},
			{"admin route with a project key", "GET", "/api/v1/projects", key, "", 403, "admin token"},
			{"unknown project", "GET", "/api/v1/projects/nope/pipeline", "test-admin-token-0123456789", "", 404, `project "nope" not found`},
			{"unknown event", "GET", "/api/v1/projects/app/events/" + ingest.NewUUID(), "test-admin-token-0123456789", "", 404, "not found"},
			{"invalid wasm upload", "PUT", "/api/v1/processors/junk", "test-admin-token-0123456789", "not wasm at all", 400, "not a valid WebAssembly module"},
			{"bad processor name", "PUT", "/api/v1/processors/Bad%20Name", "test-admin-token-0123456789", "x", 400, "processor name"},
			{"pipeline with a missing processor", "PUT", "/api/v1/projects/app/pipeline", "test-admin-token-0123456789", `{"processors":[{"name":"ghost"}]}`, 400, `processor "ghost"`},
			{"pipeline unknown field", "PUT", "/api/v1/projects/app/pipeline", "test-admin-token-0123456789", `{"processors":[],"extra":1}`, 400, `unknown field "extra"`},
			{"project slug taken", "POST", "/api/v1/projects", "test-admin-token-0123456789", `{"name":"x","slug":"app"}`, 409, "taken"},
			{"project without name", "POST", "/api/v1/projects", "test-admin-token-0123456789", `{"slug":"x"}`, 400, `"name"`},
			{"delete unknown processor", "DELETE", "/api/v1/processors/ghost", "test-admin-token-0123456789", "", 404, "not found"},
			{"unknown route", "GET", "/api/v1/nothing", "", "", 404, "no route"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want(t, n.do(tt.method, tt.path, tt.token, tt.body), tt.status, tt.msg)
			})
		}
		// Nothing above was stored; a good event still is.
		r := n.do("POST", "/api/v1/events", key, `{"message":"fine"}`)
		want(t, r, 202, "")
	})
}

// TestProcessorLifecycle uploads, lists, uses and deletes a processor.
func TestProcessorLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		n := startNode(t, nodeEnv(t, kind))
		n.project("app")
		n.uploadPlugin("sample")
		r := n.do("GET", "/api/v1/processors", n.Admin, nil)
		want(t, r, 200, "")
		list, _ := r.JSON["processors"].([]any)
		if len(list) != 1 {
			t.Fatalf("got %d processors, want 1: %s", len(list), r.Body)
		}
		p := list[0].(map[string]any)
		if p["name"] != "sample" || len(p["sha256"].(string)) != 64 || p["size"].(float64) < 1e5 || p["manifest"] == nil {
			t.Errorf("listing: %s", r.Body)
		}
		want(t, n.do("PUT", "/api/v1/projects/app/pipeline", n.Admin, `{"processors":[{"name":"sample","config":{"default_drop":"all"}}]}`), 400, "want number")
		want(t, n.do("PUT", "/api/v1/projects/app/pipeline", n.Admin, `{"processors":[{"name":"sample","config":{"default_dorp":0}}]}`), 400, `no config key "default_dorp"`)
		want(t, n.do("PUT", "/api/v1/projects/app/pipeline", n.Admin, `{"processors":[{"name":"sample","config":{"default_drop":0.5}}]}`), 200, "")
		want(t, n.do("DELETE", "/api/v1/processors/sample", n.Admin, nil), 409, "used by a pipeline")
		want(t, n.do("PUT", "/api/v1/projects/app/pipeline", n.Admin, `{"processors":[]}`), 200, "")
		want(t, n.do("DELETE", "/api/v1/processors/sample", n.Admin, nil), 204, "")
		want(t, n.do("GET", "/api/v1/processors/sample", n.Admin, nil), 404, "")
	})
}

// TestIdempotentResend sends the same client event id twice.
func TestIdempotentResend(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		n := startNode(t, nodeEnv(t, kind))
		_, key := n.project("app")
		id := ingest.NewUUID()
		ev := fmt.Sprintf(`{"event_id":%q,"message":"once"}`, id)
		for i := 0; i < 3; i++ {
			r := n.do("POST", "/api/v1/events", key, ev)
			want(t, r, 202, "")
			if r.str("id") != id {
				t.Fatalf("got id %s, want the client's %s", r.str("id"), id)
			}
		}
		r := n.do("GET", "/api/v1/projects/app/events/"+id, n.Admin, nil)
		want(t, r, 200, "")
		metrics := n.do("GET", "/metrics", "", nil)
		if !strings.Contains(string(metrics.Body), "mesher_events_duplicate_total 2") {
			t.Errorf("metrics do not count the 2 duplicates:\n%s", grep(string(metrics.Body), "duplicate"))
		}
	})
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRateLimit checks the token bucket answers 429 with Retry-After and
// refills.
func TestRateLimit(t *testing.T) {
	env := nodeEnv(t, embeddedStore)
	// A token every 2 s: none comes back between two requests however
	// slow the machine, and one does within the test.
	env["MESHER_RATE_LIMIT"] = "0.5"
	env["MESHER_RATE_BURST"] = "5"
	n := startNode(t, env)
	_, key := n.project("app")
	want(t, n.do("POST", "/api/v1/events/bulk", key, `[{"message":"a"},{"message":"b"},{"message":"c"},{"message":"d"},{"message":"e"}]`), 202, "")
	r := n.do("POST", "/api/v1/events", key, `{"message":"f"}`)
	want(t, r, 429, "rate limit")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := n.do("POST", "/api/v1/events", key, `{"message":"g"}`)
		if r.Status == 202 {
			break
		}
		want(t, r, 429, "rate limit")
		if time.Now().After(deadline) {
			t.Fatal("no token came back within 10s at 0.5 per second")
		}
	}
}

// TestKillAfterAck kills the node right after a 202 and finds the event
// after a restart on the same store.
func TestKillAfterAck(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		env := nodeEnv(t, kind)
		n := startNode(t, env)
		_, key := n.project("app")
		var ids []string
		for i := 0; i < 20; i++ {
			r := n.do("POST", "/api/v1/events/bulk", key, fmt.Sprintf(`[{"message":"a %d"},{"message":"b %d"}]`, i, i))
			want(t, r, 202, "")
			for _, id := range r.JSON["ids"].([]any) {
				ids = append(ids, id.(string))
			}
		}
		n.kill() // SIGKILL right after the last 202
		n2 := startNode(t, env)
		for _, id := range ids {
			want(t, n2.do("GET", "/api/v1/projects/app/events/"+id, n2.Admin, nil), 200, "")
		}
	})
}

// TestGracefulShutdown sends SIGTERM while requests are in flight: each
// gets its answer, what got 202 is stored, stream clients get a close
// frame, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	env := nodeEnv(t, embeddedStore)
	n := startNode(t, env)
	_, key := n.project("app")
	ws := n.dial("app", key)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", n.URL+"/api/v1/events", strings.NewReader(fmt.Sprintf(`{"message":"g%d-%d"}`, g, i)))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				var body map[string]string
				json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode == 202 {
					mu.Lock()
					acked = append(acked, body["id"])
					mu.Unlock()
				}
			}
		}(g)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := len(acked)
		mu.Unlock()
		if got >= 20 {
			break // requests are flowing: stop in the middle of them
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged within 30s", got)
		}
	}
	if err := n.stop(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, n.out)
	}
	close(stop)
	wg.Wait()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = ws.ReadMessage()
	}
	if !websocket.IsCloseError(closeErr, websocket.CloseGoingAway) {
		t.Errorf("stream ended with %v, want a 1001 close frame", closeErr)
	}
	if len(acked) == 0 {
		t.Fatal("no request was acknowledged before shutdown")
	}
	n2 := startNode(t, env)
	for _, id := range acked {
		want(t, n2.do("GET", "/api/v1/projects/app/events/"+id, n2.Admin, nil), 200, "")
	}
	t.Logf("%d events acknowledged before SIGTERM, all stored", len(acked))
}
