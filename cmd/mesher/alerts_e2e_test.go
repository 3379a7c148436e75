package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/alert"
)

func TestAlertConfigErrorsNameTheVariable(t *testing.T) {
	for _, env := range []map[string]string{
		{"MESHER_ALERT_INTERVAL": "0s"},
		{"MESHER_ALERT_INTERVAL": "2h"},
		{"MESHER_RETENTION_DAYS": "0"},
		{"MESHER_RETENTION_DAYS": "400"},
	} {
		for k := range env {
			err := run(context.Background(), []string{"serve"}, func(v string) string { return env[v] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%v: got %v, want an error naming %s", env, err, k)
			}
		}
	}
	c, err := parseServeConfig([]string{"-alert-interval", "5s", "-retention-days", "7"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil || c.AlertInterval != 5*time.Second || c.RetentionDays != 7 {
		t.Fatalf("got %+v, %v", c, err)
	}
}

// TestTeamsAndAlerts runs the binary on both stores: the admin token hands
// an organisation to its owner, whose token creates a project and a
// threshold rule with a webhook; an event sent with the project's key
// fires the rule within a period of MESHER_ALERT_INTERVAL, and the signed
// webhook reaches a receiver in this test.
func TestTeamsAndAlerts(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		got := make(chan *http.Request, 10)
		bodies := make(chan []byte, 10)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- r
			bodies <- b
		}))
		defer hook.Close()

		env := nodeEnv(t, kind)
		env["MESHER_ALERT_INTERVAL"] = "1s"
		n := startNode(t, env)
		want(t, n.do("POST", "/api/v1/orgs", n.Admin, `{"name":"Acme"}`), 201, "")
		r := n.do("POST", "/api/v1/orgs/acme/members", n.Admin, `{"name":"Ada","email":"ada@example.com","role":"owner"}`)
		want(t, r, 201, "")
		r = n.do("POST", "/api/v1/orgs/acme/members/"+r.str("id")+"/tokens", n.Admin, nil)
		want(t, r, 201, "")
		owner := r.str("token")

		r = n.do("POST", "/api/v1/projects", owner, `{"name":"Shop"}`)
		want(t, r, 201, "")
		key := r.str("api_key")
		r = n.do("POST", "/api/v1/projects/shop/alert-rules", owner, map[string]any{
			"name":      "any event",
			"condition": map[string]any{"type": "threshold", "count": 0, "window_minutes": 1},
			"actions":   map[string]any{"webhook_url": hook.URL},
		})
		want(t, r, 201, "")
		secret := r.str("webhook_secret")
		want(t, n.do("GET", "/api/v1/projects/shop/alert-rules", key, nil), 403, "")
		want(t, n.do("GET", "/api/v1/projects/shop/alert-rules", "", nil), 401, "")

		want(t, n.do("POST", "/api/v1/events", key, `{"message":"boom"}`), 202, "")
		select {
		case req := <-got:
			body := <-bodies
			if !alert.Verify(secret, body, req.Header.Get(alert.SignatureHeader)) {
				t.Errorf("webhook signature does not verify: %s", body)
			}
			if !bytes.Contains(body, []byte(`"condition":"threshold"`)) {
				t.Errorf("webhook body: %s", body)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no webhook within 20s\n%s", n.out)
		}
		r = n.do("GET", "/api/v1/projects/shop/alerts?status=active", owner, nil)
		want(t, r, 200, "")
		if !bytes.Contains(r.Body, []byte(`"status":"active"`)) {
			t.Errorf("alerts: %s", r.Body)
		}
	})
}
