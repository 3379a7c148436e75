package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// The application routes (issues, search, timelines, dashboards) are
// tested against a real node — ingestion, store, live streams — on each
// store.

const appAdmin = "app-test-admin-token-0123456789"

type appNode struct {
	t   *testing.T
	url string
}

func forEachAppStore(t *testing.T, fn func(t *testing.T, n *appNode)) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) { fn(t, startAppNode(t, kind)) })
	}
}

func startAppNode(t *testing.T, kind string) *appNode {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var st store.Store
	var err error
	if kind == "postgres" {
		st, err = postgres.Open(ctx, postgres.Config{URL: pgtest.URL(t), Logger: quiet})
	} else {
		st, err = embedded.Open(ctx, embedded.Config{Dir: t.TempDir()})
	}
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	rt, err := wasm.New(ctx, wasm.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := stream.New(stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := host.New(host.Config{
		NodeName: "test", Store: st, Runtime: rt, Streams: host.NewStreams(hub, quiet),
		AdminTokenHash: api.HashToken(appAdmin),
		SyncInterval:   50 * time.Millisecond,
		Logger:         quiet,
	})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
		rt.Close(context.Background())
		st.Close()
	})
	return &appNode{t: t, url: srv.URL}
}

// answer is an HTTP answer with its body decoded.
type answer struct {
	status int
	body   []byte
	json   map[string]any
}

func (r *answer) str(key string) string { s, _ := r.json[key].(string); return s }

func (n *appNode) do(method, path, token string, body any) *answer {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, _ := json.Marshal(b)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := &answer{status: resp.StatusCode}
	out.body, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(out.body, &out.json)
	return out
}

// want fails unless r has the status and, if msg is set, an error
// containing it.
func (n *appNode) want(r *answer, status int, msg string) *answer {
	n.t.Helper()
	if r.status != status {
		n.t.Fatalf("got status %d, want %d: %s", r.status, status, r.body)
	}
	if msg != "" && !strings.Contains(r.str("error"), msg) {
		n.t.Fatalf("got error %q, want it to contain %q", r.str("error"), msg)
	}
	return r
}

func (n *appNode) get(path string) *answer {
	n.t.Helper()
	return n.want(n.do("GET", path, appAdmin, nil), 200, "")
}

// project creates a project and returns its key.
func (n *appNode) project(slug string, org string) string {
	n.t.Helper()
	body := map[string]string{"name": "Project " + slug, "slug": slug}
	if org != "" {
		body["org"] = org
	}
	return n.want(n.do("POST", "/api/v1/projects", appAdmin, body), 201, "").str("api_key")
}

// send ingests events and returns their ids; 202 means committed.
func (n *appNode) send(key string, events ...map[string]any) []string {
	n.t.Helper()
	r := n.want(n.do("POST", "/api/v1/events/bulk", key, events), 202, "")
	var ids []string
	for _, id := range r.json["ids"].([]any) {
		ids = append(ids, id.(string))
	}
	return ids
}

// issues lists a project's issues with a query.
func (n *appNode) issues(project, query string) []map[string]any {
	n.t.Helper()
	r := n.get("/api/v1/projects/" + project + "/issues?" + query)
	var out []map[string]any
	for _, is := range r.json["issues"].([]any) {
		out = append(out, is.(map[string]any))
	}
	return out
}

func titles(issues []map[string]any) string {
	var ts []string
	for _, is := range issues {
		ts = append(ts, is["title"].(string))
	}
	return strings.Join(ts, "|")
}

// watch opens a project's live stream and returns its issue messages.
func (n *appNode) watch(project, key string) <-chan map[string]any {
	n.t.Helper()
	u := strings.Replace(n.url, "http://", "ws://", 1) + "/api/v1/projects/" + project + "/stream?key=" + key
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		n.t.Fatalf("dial stream: %v", err)
	}
	n.t.Cleanup(func() { c.Close() })
	out := make(chan map[string]any, 100)
	go func() {
		defer close(out)
		for {
			var m map[string]any
			if err := c.ReadJSON(&m); err != nil {
				return
			}
			if m["type"] == "issue" {
				out <- m
			}
		}
	}()
	return out
}

// announced waits for an issue message with the action.
func (n *appNode) announced(ch <-chan map[string]any, action string, id float64) {
	n.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				n.t.Fatalf("stream closed before an issue %q message", action)
			}
			if m["action"] == action && m["id"] == id {
				return
			}
		case <-timeout:
			n.t.Fatalf("no issue %q message for issue %v on the stream", action, id)
		}
	}
}

func TestIssueRoutes(t *testing.T) {
	forEachAppStore(t, func(t *testing.T, n *appNode) {
		key := n.project("shop", "")
		otherKey := n.project("other", "")
		live := n.watch("shop", key)
		n.send(key,
			map[string]any{"message": "Payment failed for order", "level": "error"},
			map[string]any{"message": "Payment failed for order", "level": "fatal"},
		)
		n.send(key, map[string]any{"message": "Disk full on db-1", "level": "warning"})
		n.send(otherKey, map[string]any{"message": "Payment failed for order"})

		all := n.issues("shop", "")
		if got, want := titles(all), "Disk full on db-1|Payment failed for order"; got != want {
			t.Fatalf("issues: got %q, want %q", got, want)
		}
		payment, disk := all[1], all[0]
		pid := fmt.Sprint(payment["id"])
		if payment["count"] != 2.0 || payment["level"] != "fatal" || payment["status"] != "unresolved" {
			t.Errorf("payment issue: got %v, want count 2, level fatal, unresolved", payment)
		}

		t.Run("filters", func(t *testing.T) {
			cases := []struct{ query, want string }{
				{"level=warning", "Disk full on db-1"},
				{"q=PAYMENT", "Payment failed for order"},
				{"q=" + url.QueryEscape("full on"), "Disk full on db-1"},
				{"status=resolved", ""},
				{"status=discarded", ""},
				{"assigned_to=m-1", ""},
			}
			for _, c := range cases {
				if got := titles(n.issues("shop", c.query)); got != c.want {
					t.Errorf("issues?%s: got %q, want %q", c.query, got, c.want)
				}
			}
		})
		t.Run("pages", func(t *testing.T) {
			r := n.get("/api/v1/projects/shop/issues?limit=1")
			cursor := r.str("next_cursor")
			if cursor == "" || len(r.json["issues"].([]any)) != 1 {
				t.Fatalf("first page: got %s, want one issue and a next_cursor", r.body)
			}
			r = n.get("/api/v1/projects/shop/issues?limit=1&cursor=" + url.QueryEscape(cursor))
			if r.json["next_cursor"] != nil || r.json["issues"].([]any)[0].(map[string]any)["title"] != "Payment failed for order" {
				t.Errorf("second page: got %s, want the payment issue and no next_cursor", r.body)
			}
			tampered := []byte(cursor)
			tampered[3] ^= 1
			n.want(n.do("GET", "/api/v1/projects/shop/issues?limit=1&cursor="+string(tampered), appAdmin, nil), 400, `"cursor"`)
			n.want(n.do("GET", "/api/v1/projects/other/issues?limit=1&cursor="+cursor, appAdmin, nil), 400, `"cursor"`)
			n.want(n.do("GET", "/api/v1/projects/shop/issues?cursor=nonsense", appAdmin, nil), 400, `"cursor"`)
		})
		t.Run("bad input", func(t *testing.T) {
			cases := []struct {
				method, path string
				body         any
				status       int
				msg          string
			}{
				{"GET", "/api/v1/projects/shop/issues?status=open", nil, 400, `"status"`},
				{"GET", "/api/v1/projects/shop/issues?level=loud", nil, 400, `"level"`},
				{"GET", "/api/v1/projects/shop/issues?limit=0", nil, 400, `"limit"`},
				{"GET", "/api/v1/projects/shop/issues?limit=101", nil, 400, `"limit"`},
				{"GET", "/api/v1/projects/shop/issues?limit=ten", nil, 400, `"limit"`},
				{"GET", "/api/v1/projects/shop/issues?sort=new", nil, 400, `"sort"`},
				{"GET", "/api/v1/projects/shop/issues?level=error&level=fatal", nil, 400, `"level"`},
				{"GET", "/api/v1/projects/shop/issues?q=" + strings.Repeat("x", 501), nil, 400, `"q"`},
				{"GET", "/api/v1/projects/nope/issues", nil, 404, `project "nope" not found`},
				{"GET", "/api/v1/issues/999999", nil, 404, `issue "999999" not found`},
				{"GET", "/api/v1/issues/abc", nil, 404, `issue "abc" not found`},
				{"POST", "/api/v1/issues/999999/resolve", nil, 404, `issue "999999" not found`},
				{"POST", "/api/v1/issues/" + pid + "/assign", `{"member_id": 5}`, 400, `"member_id"`},
				{"POST", "/api/v1/issues/" + pid + "/assign", `{"member_id": "` + strings.Repeat("m", 101) + `"}`, 400, `"member_id"`},
				{"POST", "/api/v1/issues/" + pid + "/assign", `{"member": "m-1"}`, 400, `"member"`},
				{"POST", "/api/v1/issues/" + pid + "/assign", `{"member_id": `, 400, "malformed JSON"},
				{"POST", "/api/v1/issues/" + pid + "/resolve", `{"why": "fixed"}`, 400, `"why"`},
				{"POST", "/api/v1/issues/" + pid + "/resolve?now=1", nil, 400, `"now"`},
				{"GET", "/api/v1/issues/" + pid + "/events?limit=-1", nil, 400, `"limit"`},
			}
			for _, c := range cases {
				r := n.do(c.method, c.path, appAdmin, c.body)
				if r.status != c.status || !strings.Contains(r.str("error"), c.msg) {
					t.Errorf("%s %s: got %d %s, want %d with %s", c.method, c.path, r.status, r.body, c.status, c.msg)
				}
			}
			if r := n.do("GET", "/api/v1/projects/shop/issues", "", nil); r.status != 401 {
				t.Errorf("issues without credentials: got %d, want 401", r.status)
			}
			if r := n.do("POST", "/api/v1/issues/"+pid+"/resolve", "", nil); r.status != 401 {
				t.Errorf("resolve without credentials: got %d, want 401", r.status)
			}
			if r := n.do("GET", "/api/v1/issues/"+pid, key, nil); r.status != 403 {
				t.Errorf("an issue with the project key: got %d, want 403", r.status)
			}
		})
		t.Run("actions", func(t *testing.T) {
			id := payment["id"].(float64)
			member := func(name string) string {
				r := n.want(n.do("POST", "/api/v1/orgs/default/members", appAdmin,
					`{"name":"`+name+`","email":"`+name+`@example.com","role":"member"}`), 201, "")
				return r.str("id")
			}
			ada, bob := member("ada"), member("bob")
			n.want(n.do("POST", "/api/v1/issues/"+pid+"/assign", appAdmin, `{"member_id": "not-a-member"}`), 400, "no member")
			cases := []struct {
				action, body, announce string
				check                  func(is map[string]any) bool
			}{
				{"resolve", "", "resolved", func(is map[string]any) bool { return is["status"] == "resolved" }},
				{"unresolve", "", "unresolved", func(is map[string]any) bool { return is["status"] == "unresolved" }},
				{"archive", "{}", "archived", func(is map[string]any) bool { return is["status"] == "archived" }},
				{"assign", `{"member_id": "` + ada + `"}`, "assigned", func(is map[string]any) bool { return is["assigned_to"] == ada }},
				{"assign", `{"member_id": ""}`, "unassigned", func(is map[string]any) bool { return is["assigned_to"] == nil }},
				{"assign", `{"member_id": "` + bob + `"}`, "assigned", func(is map[string]any) bool { return is["assigned_to"] == bob }},
				{"assign", ``, "unassigned", func(is map[string]any) bool { return is["assigned_to"] == nil }},
			}
			for _, c := range cases {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := n.want(n.do("POST", "/api/v1/issues/"+pid+"/"+c.action, appAdmin, body), 200, "")
				if !c.check(r.json) {
					t.Errorf("%s %s: got %s", c.action, c.body, r.body)
				}
				n.announced(live, c.announce, id)
			}
			if got := titles(n.issues("shop", "status=archived")); got != "Payment failed for order" {
				t.Errorf("archived issues: got %q, want the payment issue", got)
			}
		})
		t.Run("discard drops later events", func(t *testing.T) {
			did := fmt.Sprint(disk["id"])
			n.want(n.do("POST", "/api/v1/issues/"+did+"/discard", appAdmin, nil), 200, "")
			n.announced(live, "discarded", disk["id"].(float64))
			n.send(key, map[string]any{"message": "Disk full on db-1"}, map[string]any{"message": "Disk full on db-1"})
			if got := titles(n.issues("shop", "")); got != "Payment failed for order" {
				t.Errorf("issues after a discard: got %q, want only the payment issue", got)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				is := n.get("/api/v1/issues/" + did).json
				if is["count"] != 1.0 {
					t.Fatalf("discarded issue: got count %v, want 1 (later events dropped)", is["count"])
				}
				if is["dropped"] == 2.0 && is["discarded_at"] != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("discarded issue: got %v, want dropped 2", is)
				}
				time.Sleep(20 * time.Millisecond)
			}
			metrics := string(n.do("GET", "/metrics", "", nil).body)
			if !strings.Contains(metrics, `mesher_events_dropped_total{reason="discarded_issue"} 2`) {
				t.Errorf("metrics lack 2 events dropped for a discarded issue")
			}
			// The same fingerprint in another project is not discarded.
			n.send(otherKey, map[string]any{"message": "Disk full on db-1"})
			if got := titles(n.issues("other", "")); !strings.Contains(got, "Disk full") {
				t.Errorf("other project's issues: got %q, want the disk issue", got)
			}
		})
		t.Run("delete", func(t *testing.T) {
			events := n.get("/api/v1/issues/" + pid + "/events").json["events"].([]any)
			eventID := events[0].(map[string]any)["id"].(string)
			r := n.want(n.do("POST", "/api/v1/issues/"+pid+"/delete", appAdmin, nil), 200, "")
			if r.json["deleted"] != true {
				t.Errorf("delete: got %s", r.body)
			}
			n.announced(live, "deleted", payment["id"].(float64))
			n.want(n.do("GET", "/api/v1/issues/"+pid, appAdmin, nil), 404, "")
			n.want(n.do("GET", "/api/v1/projects/shop/events/"+eventID, appAdmin, nil), 404, "")
			n.want(n.do("POST", "/api/v1/issues/"+pid+"/resolve", appAdmin, nil), 404, "")
		})
	})
}

// TestIssueAccess checks that the application routes ask for the caller's
// role in the issue's or the project's organisation.
func TestIssueAccess(t *testing.T) {
	n := startAppNode(t, "embedded")
	shopKey := n.project("shop", "")
	n.want(n.do("POST", "/api/v1/orgs", appAdmin, map[string]string{"name": "Acme", "slug": "acme"}), 201, "")
	acmeKey := n.project("acme-app", "acme")
	token := func(role string) string {
		m := n.want(n.do("POST", "/api/v1/orgs/acme/members", appAdmin,
			map[string]string{"name": role, "email": role + "@example.com", "role": role}), 201, "")
		return n.want(n.do("POST", "/api/v1/orgs/acme/members/"+m.str("id")+"/tokens", appAdmin, nil), 201, "").str("token")
	}
	viewer, member := token("viewer"), token("member")
	n.send(shopKey, map[string]any{"message": "shop error"})
	n.send(acmeKey, map[string]any{"message": "acme error"})
	shopIssue := fmt.Sprint(n.issues("shop", "")[0]["id"])
	acmeIssue := fmt.Sprint(n.issues("acme-app", "")[0]["id"])

	cases := []struct {
		token, method, path string
		want                int
	}{
		{viewer, "GET", "/api/v1/projects/acme-app/issues", 200},
		{viewer, "GET", "/api/v1/issues/" + acmeIssue, 200},
		{viewer, "GET", "/api/v1/issues/" + acmeIssue + "/timeline", 200},
		{viewer, "GET", "/api/v1/projects/acme-app/events", 200},
		{viewer, "GET", "/api/v1/projects/acme-app/dashboard/health", 200},
		{viewer, "POST", "/api/v1/issues/" + acmeIssue + "/resolve", 403},
		{viewer, "POST", "/api/v1/issues/" + acmeIssue + "/delete", 403},
		{member, "POST", "/api/v1/issues/" + acmeIssue + "/resolve", 200},
		{member, "POST", "/api/v1/issues/" + acmeIssue + "/assign", 200},
		// Another organisation's project and issue do not exist for them.
		{member, "GET", "/api/v1/projects/shop/issues", 404},
		{member, "GET", "/api/v1/issues/" + shopIssue, 404},
		{member, "POST", "/api/v1/issues/" + shopIssue + "/resolve", 404},
		{member, "GET", "/api/v1/issues/" + shopIssue + "/events", 404},
		{member, "GET", "/api/v1/projects/shop/dashboard/volume", 404},
	}
	for _, c := range cases {
		r := n.do(c.method, c.path, c.token, nil)
		if r.status != c.want {
			t.Errorf("%s %s as %s: got %d %s, want %d", c.method, c.path, map[string]string{viewer: "viewer", member: "member"}[c.token], r.status, r.body, c.want)
		}
		if c.want == 404 && strings.Contains(string(r.body), "shop error") {
			t.Errorf("%s %s: a 404 that leaks the issue: %s", c.method, c.path, r.body)
		}
	}
}

func TestSearchRoutes(t *testing.T) {
	forEachAppStore(t, func(t *testing.T, n *appNode) {
		key := n.project("shop", "")
		otherKey := n.project("other", "")
		var ids []string
		for _, e := range []map[string]any{
			{"message": "connection refused by database", "tags": map[string]string{"env": "prod", "region": "eu"}},
			{"message": "connection reset by peer", "tags": map[string]string{"env": "prod", "region": "us"}},
			{"message": "render failed", "exception": map[string]any{"values": []any{map[string]any{"type": "TypeError", "value": "Cannot read properties of undefined"}}}, "tags": map[string]string{"env": "staging"}},
			{"message": "connection refused by database", "tags": map[string]string{"env": "prod", "region": "eu"}},
		} {
			ids = append(ids, n.send(key, e)...) // one by one: received in this order
		}
		other := n.send(otherKey, map[string]any{"message": "connection refused by database"})

		search := func(query string) []string {
			t.Helper()
			r := n.get("/api/v1/projects/shop/events?" + query)
			var got []string
			for _, e := range r.json["events"].([]any) {
				got = append(got, e.(map[string]any)["id"].(string))
			}
			return got
		}
		cases := []struct {
			query string
			want  []string
		}{
			{"", []string{ids[3], ids[2], ids[1], ids[0]}},
			{"q=connection", []string{ids[3], ids[1], ids[0]}},
			{"q=" + url.QueryEscape(`"connection reset"`), []string{ids[1]}},
			{"q=properties", []string{ids[2]}},
			{"q=connection+-reset", []string{ids[3], ids[0]}},
			{"tag=env:prod", []string{ids[3], ids[1], ids[0]}},
			{"tag=env:prod&tag=region:us", []string{ids[1]}},
			{"q=connection&tag=region:eu", []string{ids[3], ids[0]}},
			{"tag=env:dev", nil},
			{"from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", nil},
		}
		for _, c := range cases {
			if got := search(c.query); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("events?%s: got %v, want %v", c.query, got, c.want)
			}
		}

		t.Run("pages", func(t *testing.T) {
			var walked []string
			cursor := ""
			for range 10 {
				r := n.get("/api/v1/projects/shop/events?limit=3&cursor=" + url.QueryEscape(cursor))
				for _, e := range r.json["events"].([]any) {
					walked = append(walked, e.(map[string]any)["id"].(string))
				}
				if cursor = r.str("next_cursor"); cursor == "" {
					break
				}
			}
			if want := []string{ids[3], ids[2], ids[1], ids[0]}; strings.Join(walked, ",") != strings.Join(want, ",") {
				t.Errorf("pages of 3: got %v, want %v", walked, want)
			}
			r := n.get("/api/v1/projects/shop/events?limit=1")
			n.want(n.do("GET", "/api/v1/projects/other/events?cursor="+r.str("next_cursor"), appAdmin, nil), 400, `"cursor"`)
		})
		t.Run("bad input", func(t *testing.T) {
			cases := []struct{ query, msg string }{
				{"tag=env", `"tag"`},
				{"tag=:prod", `"tag"`},
				{"from=yesterday", `"from"`},
				{"to=2026-13-01T00:00:00Z", `"to"`},
				{"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", `"from"`},
				{"limit=1000", `"limit"`},
				{"issue=1", `"issue"`},
				{"q=a&q=b", `"q"`},
				{strings.Repeat("tag=a:b&", 11), `"tag"`},
			}
			for _, c := range cases {
				n.want(n.do("GET", "/api/v1/projects/shop/events?"+c.query, appAdmin, nil), 400, c.msg)
			}
		})
		t.Run("issue events and event detail", func(t *testing.T) {
			r := n.get("/api/v1/projects/shop/events/" + ids[0])
			issue := fmt.Sprint(r.json["issue_id"])
			if r.json["prev_id"] != nil || r.json["next_id"] != ids[3] || r.json["event"] == nil {
				t.Errorf("first event: got prev %v next %v, want none and %s, with its body", r.json["prev_id"], r.json["next_id"], ids[3])
			}
			r = n.get("/api/v1/projects/shop/events/" + ids[3])
			if r.json["prev_id"] != ids[0] || r.json["next_id"] != nil {
				t.Errorf("last event: got prev %v next %v, want %s and none", r.json["prev_id"], r.json["next_id"], ids[0])
			}
			r = n.get("/api/v1/issues/" + issue + "/events")
			var got []string
			for _, e := range r.json["events"].([]any) {
				got = append(got, e.(map[string]any)["id"].(string))
			}
			if want := []string{ids[3], ids[0]}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("issue events: got %v, want %v", got, want)
			}
			// An event of another project is not found, whatever its id.
			n.want(n.do("GET", "/api/v1/projects/shop/events/"+other[0], appAdmin, nil), 404, "not found")
		})
	})
}

// countSince sums the counts of the volume points at or after from.
func countSince(t *testing.T, pts []any, from time.Time) float64 {
	t.Helper()
	var n float64
	for _, p := range pts {
		p := p.(map[string]any)
		at, err := time.Parse(time.RFC3339, fmt.Sprint(p["time"]))
		if err != nil {
			t.Fatalf("point %v: %v", p, err)
		}
		if !at.Before(from) {
			n += p["count"].(float64)
		}
	}
	return n
}

func TestDashboardRoutes(t *testing.T) {
	forEachAppStore(t, func(t *testing.T, n *appNode) {
		key := n.project("shop", "")
		// The hour the events are sent in, or the one before the requests
		// if the test straddles an hour boundary.
		hour := time.Now().UTC().Truncate(time.Hour)
		n.send(key,
			map[string]any{"message": "a", "level": "error", "tags": map[string]string{"browser": "Firefox"}},
			map[string]any{"message": "a", "level": "error", "tags": map[string]string{"browser": "Chrome"}},
			map[string]any{"message": "a", "level": "fatal", "tags": map[string]string{"browser": "Chrome"}},
			map[string]any{"message": "b", "level": "info"},
		)

		r := n.get("/api/v1/projects/shop/dashboard/volume")
		now := time.Now().UTC().Truncate(time.Hour)
		pts := r.json["points"].([]any)
		if r.json["total"] != 4.0 || r.json["bucket"] != "hour" || len(pts) < 24 || len(pts) > 25 {
			t.Errorf("volume: got total %v, bucket %v, %d points, want 4, hour, 24 or 25 (the last 24 hours, widened to whole hours)",
				r.json["total"], r.json["bucket"], len(pts))
		}
		if last := pts[len(pts)-1].(map[string]any); last["time"] != hour.Format(time.RFC3339) && last["time"] != now.Format(time.RFC3339) {
			t.Errorf("volume: last point %v, want the current hour (%v or %v)", last, hour, now)
		}
		if got := countSince(t, pts, hour); got != 4 {
			t.Errorf("volume: %v events since %v, want 4: %s", got, hour, r.body)
		}
		day := time.Now().UTC().Truncate(time.Hour)
		r = n.get("/api/v1/projects/shop/dashboard/volume?bucket=day&from=" + url.QueryEscape(day.Add(-72*time.Hour).Format(time.RFC3339)))
		if n := len(r.json["points"].([]any)); r.json["total"] != 4.0 || n < 3 || n > 4 {
			t.Errorf("daily volume: got total %v, %d points, want 4 and 3 or 4 days", r.json["total"], n)
		}

		levels := n.get("/api/v1/projects/shop/dashboard/levels").json["levels"].(map[string]any)
		want := map[string]any{"debug": 0.0, "info": 1.0, "warning": 0.0, "error": 2.0, "fatal": 1.0}
		if fmt.Sprint(levels) != fmt.Sprint(want) {
			t.Errorf("levels: got %v, want %v", levels, want)
		}

		top := n.get("/api/v1/projects/shop/dashboard/top-issues?limit=1").json["issues"].([]any)
		if len(top) != 1 || top[0].(map[string]any)["events"] != 3.0 || top[0].(map[string]any)["title"] != "a" {
			t.Errorf("top issues: got %v, want issue a with 3 events", top)
		}
		issue := fmt.Sprint(top[0].(map[string]any)["id"])

		tags := n.get("/api/v1/projects/shop/dashboard/tags?key=browser").json["values"].([]any)
		if fmt.Sprint(tags) != "[map[count:2 value:Chrome] map[count:1 value:Firefox]]" {
			t.Errorf("tags: got %v, want Chrome 2, Firefox 1", tags)
		}

		h := n.get("/api/v1/projects/shop/dashboard/health").json
		if h["unresolved_count"] != 2.0 || h["events_24h"] != 4.0 || h["new_today"] != 2.0 {
			// new_today can be 0 just after midnight UTC.
			if !(h["new_today"] == 0.0 && time.Now().UTC().Hour() == 0) {
				t.Errorf("health: got %v, want 2 unresolved, 4 events in 24h, 2 new today", h)
			}
		}

		r = n.get("/api/v1/issues/" + issue + "/timeline?bucket=hour")
		pts = r.json["points"].([]any)
		if got := countSince(t, pts, hour); r.json["total"] != 3.0 || got != 3 {
			t.Errorf("timeline: got %s, want 3 events since %v (the last hour, or two across an hour boundary)", r.body, hour)
		}

		t.Run("bad input", func(t *testing.T) {
			cases := []struct{ path, msg string }{
				{"/api/v1/projects/shop/dashboard/volume?bucket=minute", `"bucket"`},
				{"/api/v1/projects/shop/dashboard/volume?from=2000-01-01T00:00:00Z", "buckets"},
				{"/api/v1/projects/shop/dashboard/volume?from=now", `"from"`},
				{"/api/v1/projects/shop/dashboard/levels?bucket=hour", `"bucket"`},
				{"/api/v1/projects/shop/dashboard/top-issues?limit=0", `"limit"`},
				{"/api/v1/projects/shop/dashboard/tags", `"key"`},
				{"/api/v1/projects/shop/dashboard/tags?key=" + strings.Repeat("k", 201), `"key"`},
				{"/api/v1/projects/shop/dashboard/health?x=1", `"x"`},
				{"/api/v1/issues/" + issue + "/timeline?bucket=week", `"bucket"`},
			}
			for _, c := range cases {
				n.want(n.do("GET", c.path, appAdmin, nil), 400, c.msg)
			}
		})
	})
}
