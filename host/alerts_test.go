package host_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/store"
)

// hook is a webhook receiver that keeps what it gets.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
	got  chan struct{}
}

func newHook(t *testing.T) *hook {
	h := &hook{got: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs, h.body = append(h.reqs, r), append(h.body, b)
		h.mu.Unlock()
		h.got <- struct{}{}
	}))
	t.Cleanup(h.Close)
	return h
}

// TestAlertRulesThroughTheAPI creates rules (refusing bad ones with the
// field named), fires a new_issue rule by sending an event, and follows
// the alert to the webhook, the live stream, and through acknowledge and
// resolve.
func TestAlertRulesThroughTheAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		n := newAppNode(t, kind, host.Config{})
		var proj struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		}
		n.must(201, "POST", "/api/v1/projects", adminToken, map[string]string{"name": "App", "slug": "app"}).decode(t, &proj)

		t.Run("bad rules", func(t *testing.T) {
			cases := []struct {
				name string
				body string
				msg  string
			}{
				{"no name", `{"condition":{"type":"new_issue"}}`, `"name"`},
				{"no condition", `{"name":"r"}`, `"condition"`},
				{"unknown type", `{"name":"r","condition":{"type":"sometimes"}}`, `"condition.type"`},
				{"threshold without window", `{"name":"r","condition":{"type":"threshold","count":5}}`, `"condition.window_minutes"`},
				{"window too long", `{"name":"r","condition":{"type":"threshold","count":5,"window_minutes":2000}}`, `"condition.window_minutes"`},
				{"negative count", `{"name":"r","condition":{"type":"threshold","count":-1,"window_minutes":5}}`, `"condition.count"`},
				{"fractional count", `{"name":"r","condition":{"type":"threshold","count":1.5,"window_minutes":5}}`, `"condition.count"`},
				{"factor of 1", `{"name":"r","condition":{"type":"rate_of_change","factor":1,"window_minutes":5}}`, `"condition.factor"`},
				{"count on rate_of_change", `{"name":"r","condition":{"type":"rate_of_change","factor":2,"window_minutes":5,"count":3}}`, `"condition.count"`},
				{"window on new_issue", `{"name":"r","condition":{"type":"new_issue","window_minutes":5}}`, `"condition.window_minutes"`},
				{"bad level", `{"name":"r","condition":{"type":"new_issue","level":"loud"}}`, `"condition.level"`},
				{"bad tag", `{"name":"r","condition":{"type":"new_issue","tags":{"env":""}}}`, `"condition.tags"`},
				{"negative cooldown", `{"name":"r","condition":{"type":"new_issue"},"cooldown_seconds":-5}`, `"cooldown_seconds"`},
				{"bad webhook", `{"name":"r","condition":{"type":"new_issue"},"actions":{"webhook_url":"ftp://x"}}`, `"actions.webhook_url"`},
				{"no action", `{"name":"r","condition":{"type":"new_issue"},"actions":{"stream":false}}`, `"actions"`},
				{"unknown field", `{"name":"r","condition":{"type":"new_issue"},"severity":3}`, `"severity"`},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := n.do("POST", "/api/v1/projects/app/alert-rules", adminToken, c.body)
					if r.Status != 400 || !strings.Contains(r.errorText(), c.msg) {
						t.Errorf("got %s, want 400 naming %s", r, c.msg)
					}
				})
			}
		})

		h := newHook(t)
		var rule struct {
			store.AlertRule
			WebhookSecret string `json:"webhook_secret"`
		}
		n.must(201, "POST", "/api/v1/projects/app/alert-rules", adminToken, map[string]any{
			"name":      "new errors",
			"condition": map[string]any{"type": "new_issue", "level": "error"},
			"actions":   map[string]any{"stream": true, "webhook_url": h.URL + "/mesher"},
		}).decode(t, &rule)
		if !strings.HasPrefix(rule.WebhookSecret, "whsec_") || rule.CooldownSeconds != 0 || !rule.Enabled {
			t.Fatalf("created rule: %+v", rule)
		}
		if l := n.must(200, "GET", "/api/v1/projects/app/alert-rules", adminToken, nil); strings.Contains(string(l.Body), rule.WebhookSecret) {
			t.Errorf("rule list shows the webhook secret: %s", l)
		}
		var threshold store.AlertRule
		n.must(201, "POST", "/api/v1/projects/app/alert-rules", adminToken,
			`{"name":"busy","condition":{"type":"threshold","count":100,"window_minutes":5}}`).decode(t, &threshold)
		if threshold.CooldownSeconds != 300 || !threshold.Actions.Stream {
			t.Errorf("threshold rule defaults: %+v", threshold)
		}
		var toggled store.AlertRule
		n.must(200, "POST", "/api/v1/alert-rules/"+threshold.ID+"/toggle", adminToken, nil).decode(t, &toggled)
		if toggled.Enabled {
			t.Error("toggle did not disable the rule")
		}
		n.must(200, "POST", "/api/v1/alert-rules/"+threshold.ID+"/toggle", adminToken, `{"enabled":false}`).decode(t, &toggled)
		if toggled.Enabled {
			t.Error(`toggle {"enabled":false} enabled the rule`)
		}
		n.must(200, "POST", "/api/v1/alert-rules/"+threshold.ID+"/delete", adminToken, nil)
		n.must(404, "POST", "/api/v1/alert-rules/"+threshold.ID+"/delete", adminToken, nil)

		// Fire it: a new error issue.
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.URL, "http")+"/api/v1/projects/app/stream?key="+proj.APIKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		n.must(202, "POST", "/api/v1/events", proj.APIKey, `{"message":"disk full","level":"error"}`)
		select {
		case <-h.got:
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook within 10s of a new issue")
		}
		h.mu.Lock()
		req, body := h.reqs[0], h.body[0]
		h.mu.Unlock()
		if !alert.Verify(rule.WebhookSecret, body, req.Header.Get(alert.SignatureHeader)) {
			t.Errorf("webhook signature %q does not verify", req.Header.Get(alert.SignatureHeader))
		}
		var wb alert.WebhookBody
		if err := json.Unmarshal(body, &wb); err != nil || wb.Alert.Condition != "new_issue" || wb.Project.Slug != "app" {
			t.Errorf("webhook body %s (%v)", body, err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("reading the stream for an alert: %v", err)
			}
			if m["type"] == "alert" {
				a, _ := m["alert"].(map[string]any)
				if m["action"] != "fired" || a["id"] != wb.Alert.ID {
					t.Errorf("stream alert: %v", m)
				}
				break
			}
		}

		var list struct {
			Alerts     []store.Alert `json:"alerts"`
			NextCursor *string       `json:"next_cursor"`
		}
		n.must(200, "GET", "/api/v1/projects/app/alerts", adminToken, nil).decode(t, &list)
		if len(list.Alerts) != 1 || list.Alerts[0].Status != "active" || list.Alerts[0].ID != wb.Alert.ID {
			t.Fatalf("alerts: %+v", list)
		}
		id := list.Alerts[0].ID
		var al store.Alert
		n.must(409, "POST", "/api/v1/alerts/"+id+"/resolve", adminToken, nil) // not acknowledged yet
		n.must(200, "POST", "/api/v1/alerts/"+id+"/acknowledge", adminToken, nil).decode(t, &al)
		if al.Status != "acknowledged" || al.AcknowledgedBy != "admin" || al.AcknowledgedAt == nil {
			t.Errorf("acknowledged: %+v", al)
		}
		r := n.must(409, "POST", "/api/v1/alerts/"+id+"/acknowledge", adminToken, nil)
		if !strings.Contains(r.errorText(), "acknowledged") {
			t.Errorf("second acknowledge: %s", r)
		}
		n.must(200, "POST", "/api/v1/alerts/"+id+"/resolve", adminToken, nil).decode(t, &al)
		if al.Status != "resolved" || al.ResolvedAt == nil {
			t.Errorf("resolved: %+v", al)
		}
		n.must(409, "POST", "/api/v1/alerts/"+id+"/resolve", adminToken, nil)
		n.must(409, "POST", "/api/v1/alerts/"+id+"/acknowledge", adminToken, nil)
		n.must(404, "POST", "/api/v1/alerts/"+rule.ID+"/acknowledge", adminToken, nil) // not an alert id

		var ds struct {
			Deliveries []store.WebhookDelivery `json:"deliveries"`
		}
		// The receiver saw the request before the engine read its
		// response and recorded the attempt: wait for the record.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			n.must(200, "GET", "/api/v1/alert-rules/"+rule.ID+"/deliveries", adminToken, nil).decode(t, &ds)
			if len(ds.Deliveries) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(ds.Deliveries) != 1 || !ds.Deliveries[0].Success || ds.Deliveries[0].StatusCode != 200 {
			t.Errorf("delivery log: %+v", ds)
		}

		// Pages: two more new issues, one alert each.
		n.must(202, "POST", "/api/v1/events", proj.APIKey, `{"message":"cpu hot","level":"fatal"}`)
		n.must(202, "POST", "/api/v1/events", proj.APIKey, `{"message":"queue stuck","level":"error"}`)
		deadline := time.Now().Add(10 * time.Second)
		for {
			n.must(200, "GET", "/api/v1/projects/app/alerts?status=active", adminToken, nil).decode(t, &list)
			if len(list.Alerts) == 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(list.Alerts) != 2 {
			t.Fatalf("active alerts: %d, want 2", len(list.Alerts))
		}
		var page1, page2 struct {
			Alerts     []store.Alert `json:"alerts"`
			NextCursor *string       `json:"next_cursor"`
		}
		n.must(200, "GET", "/api/v1/projects/app/alerts?limit=2", adminToken, nil).decode(t, &page1)
		if len(page1.Alerts) != 2 || page1.NextCursor == nil {
			t.Fatalf("first page: %+v", page1)
		}
		n.must(200, "GET", "/api/v1/projects/app/alerts?limit=2&cursor="+*page1.NextCursor, adminToken, nil).decode(t, &page2)
		if len(page2.Alerts) != 1 || page2.NextCursor != nil || page2.Alerts[0].ID != id {
			t.Fatalf("second page: %+v", page2)
		}
		tampered := []byte(*page1.NextCursor)
		tampered[3] ^= 1
		for _, q := range []string{"cursor=" + string(tampered), "cursor=xyz", "limit=0", "limit=101", "status=open", "sort=asc"} {
			if r := n.do("GET", "/api/v1/projects/app/alerts?"+q, adminToken, nil); r.Status != 400 {
				t.Errorf("GET alerts?%s: got %s, want 400", q, r)
			}
		}

		n.must(200, "POST", "/api/v1/alert-rules/"+rule.ID+"/delete", adminToken, nil)
		n.must(200, "GET", "/api/v1/projects/app/alerts", adminToken, nil).decode(t, &list)
		if len(list.Alerts) != 0 {
			t.Errorf("alerts after deleting their rule: %d", len(list.Alerts))
		}
		n.must(404, "GET", "/api/v1/alert-rules/"+rule.ID+"/deliveries", adminToken, nil)
	})
}
