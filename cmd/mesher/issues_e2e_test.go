package main

import (
	"fmt"
	"net/url"
	"testing"
)

// TestIssuesEndToEnd triages an issue through the real binary on both
// stores: the schema is migrated at start, the node drops a discarded
// issue's events, and every action reaches the live stream.
func TestIssuesEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		n := startNode(t, nodeEnv(t, kind))
		_, key := n.project("shop")
		ws := n.dial("shop", key)

		want(t, n.do("POST", "/api/v1/events", key, `{"message":"checkout crashed","level":"fatal","tags":{"region":"eu"}}`), 202, "")
		r := n.do("GET", "/api/v1/projects/shop/issues?status=unresolved", n.Admin, nil)
		want(t, r, 200, "")
		issues, _ := r.JSON["issues"].([]any)
		if len(issues) != 1 {
			t.Fatalf("issues: got %s, want one", r.Body)
		}
		id := fmt.Sprint(issues[0].(map[string]any)["id"])
		if m := next(t, ws, "issue"); m["action"] != "new" {
			t.Fatalf("stream: got %v, want the new issue", m)
		}

		want(t, n.do("POST", "/api/v1/issues/"+id+"/resolve", n.Admin, nil), 200, "")
		if m := next(t, ws, "issue"); m["action"] != "resolved" || fmt.Sprint(m["id"]) != id {
			t.Errorf("stream after resolve: got %v, want action resolved for issue %s", m, id)
		}
		want(t, n.do("POST", "/api/v1/issues/"+id+"/discard", n.Admin, nil), 200, "")
		if m := next(t, ws, "issue"); m["action"] != "discarded" {
			t.Errorf("stream after discard: got %v, want action discarded", m)
		}
		want(t, n.do("POST", "/api/v1/events", key, `{"message":"checkout crashed","level":"fatal"}`), 202, "")
		r = n.do("GET", "/api/v1/issues/"+id, n.Admin, nil)
		want(t, r, 200, "")
		if r.JSON["count"] != 1.0 || r.JSON["status"] != "resolved" {
			t.Errorf("discarded issue after another event: got %s, want count 1, still resolved (the event dropped)", r.Body)
		}

		r = n.do("GET", "/api/v1/projects/shop/events?q=checkout&tag="+url.QueryEscape("region:eu"), n.Admin, nil)
		want(t, r, 200, "")
		if events, _ := r.JSON["events"].([]any); len(events) != 1 {
			t.Errorf("search: got %s, want one event", r.Body)
		}
		r = n.do("GET", "/api/v1/projects/shop/dashboard/health", n.Admin, nil)
		want(t, r, 200, "")
		if r.JSON["events_24h"] != 1.0 {
			t.Errorf("health: got %s, want 1 event in 24 h", r.Body)
		}
		want(t, n.do("GET", "/api/v1/projects/shop/issues?cursor=forged", n.Admin, nil), 400, `"cursor"`)
	})
}
