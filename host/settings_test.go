package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/storetest"
)

type settingsView struct {
	store.ProjectSettings
	Effective store.ProjectSettings `json:"effective"`
}

// TestSettings validates settings, and checks that a change applies to
// ingestion at once, without a restart.
func TestSettings(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		n := newAppNode(t, kind, host.Config{RetentionDays: 45, Limits: api.Limits{RateLimit: 1000, RateBurst: 1000}})
		var proj struct {
			APIKey string `json:"api_key"`
		}
		n.must(201, "POST", "/api/v1/projects", adminToken, map[string]string{"name": "App", "slug": "app"}).decode(t, &proj)
		var s settingsView
		n.must(200, "GET", "/api/v1/projects/app/settings", adminToken, nil).decode(t, &s)
		want := settingsView{Effective: store.ProjectSettings{RetentionDays: 45, SampleRate: 1, RateLimit: 1000, RateBurst: 1000}}
		if s != want {
			t.Errorf("default settings: %+v, want %+v", s, want)
		}

		t.Run("bad input", func(t *testing.T) {
			cases := []struct{ body, msg string }{
				{`{"retention_days":0}`, `"retention_days"`},
				{`{"retention_days":366}`, `"retention_days"`},
				{`{"retention_days":1.5}`, `"retention_days"`},
				{`{"retention_days":"30"}`, `"retention_days"`},
				{`{"sample_rate":0}`, `"sample_rate"`},
				{`{"sample_rate":1.01}`, `"sample_rate"`},
				{`{"rate_limit":0}`, `"rate_limit"`},
				{`{"rate_limit":-3}`, `"rate_limit"`},
				{`{"rate_burst":10}`, `"rate_burst"`},
				{`{"rate_limit":10,"rate_burst":0.5}`, `"rate_burst"`},
				{`{"retention":30}`, `"retention"`},
				{`[]`, "JSON object"},
			}
			for _, c := range cases {
				r := n.do("PUT", "/api/v1/projects/app/settings", adminToken, c.body)
				if r.Status != 400 || !strings.Contains(r.errorText(), c.msg) {
					t.Errorf("PUT %s: got %s, want 400 naming %s", c.body, r, c.msg)
				}
			}
		})

		// The key and project are cached by now; a new limit still applies
		// to the next request. One token per 100 s: the bucket cannot
		// refill between b and c, however slow the machine.
		n.must(202, "POST", "/api/v1/events", proj.APIKey, `{"message":"a"}`)
		n.must(200, "PUT", "/api/v1/projects/app/settings", adminToken, `{"retention_days":7,"rate_limit":0.01,"rate_burst":1}`).decode(t, &s)
		if s.RetentionDays != 7 || s.Effective.RetentionDays != 7 || s.Effective.RateLimit != 0.01 || s.Effective.RateBurst != 1 {
			t.Errorf("after PUT: %+v", s)
		}
		n.must(202, "POST", "/api/v1/events", proj.APIKey, `{"message":"b"}`)
		n.must(429, "POST", "/api/v1/events", proj.APIKey, `{"message":"c"}`)

		// Sampling: keep almost nothing.
		time.Sleep(50 * time.Millisecond) // the default rate refills the bucket
		n.must(200, "PUT", "/api/v1/projects/app/settings", adminToken, `{"sample_rate":1e-9}`)
		id := storetest.NewID()
		n.must(202, "POST", "/api/v1/events", proj.APIKey, fmt.Sprintf(`{"event_id":%q,"message":"sampled"}`, id))
		n.must(404, "GET", "/api/v1/projects/app/events/"+id, adminToken, nil)

		// An empty body returns to the defaults.
		n.must(200, "PUT", "/api/v1/projects/app/settings", adminToken, `{}`).decode(t, &s)
		if s != want {
			t.Errorf("after PUT {}: %+v, want %+v", s, want)
		}
		id = storetest.NewID()
		n.must(202, "POST", "/api/v1/events", proj.APIKey, fmt.Sprintf(`{"event_id":%q,"message":"kept"}`, id))
		n.must(200, "GET", "/api/v1/projects/app/events/"+id, adminToken, nil)

		var u struct {
			store.ProjectUsage
			RetentionDays int `json:"retention_days"`
		}
		n.must(200, "GET", "/api/v1/projects/app/storage", adminToken, nil).decode(t, &u)
		if u.Events != 3 || u.Issues < 1 || u.EventBytes <= 0 || u.TotalBytes <= 0 || u.RetentionDays != 45 || len(u.Tables) == 0 || u.Method == "" {
			t.Errorf("storage: %+v", u)
		}
		n.must(404, "GET", "/api/v1/projects/nope/storage", adminToken, nil)
	})
}

// TestRetentionJob runs the node's retention job on an injected clock:
// when the clock passes a project's retention, the job deletes the older
// events and keeps the issue with its count.
func TestRetentionJob(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		start := time.Now().UTC()
		var clock atomic.Int64
		clock.Store(start.UnixNano())
		now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
		n := newAppNode(t, kind, host.Config{Now: now, RetentionInterval: 20 * time.Millisecond, RetentionDays: 30})
		p := &store.Project{ID: storetest.NewID(), Slug: "short", Name: "Short", Settings: store.ProjectSettings{RetentionDays: 3}}
		noErr(t, n.Store.CreateProject(ctx, p))
		old := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "f", Title: "t", Level: "error",
			Timestamp: start.Add(-24 * time.Hour), ReceivedAt: start.Add(-24 * time.Hour), Body: json.RawMessage(`{}`)}
		fresh := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "f", Title: "t", Level: "error",
			Timestamp: start, ReceivedAt: start, Body: json.RawMessage(`{}`)}
		res, err := n.Store.Commit(ctx, []*store.Event{old, fresh})
		noErr(t, err)

		time.Sleep(100 * time.Millisecond) // several runs: a day old is within 3 days
		if _, err := n.Store.Event(ctx, p.ID, old.ID); err != nil {
			t.Fatalf("event a day old, retention 3 days: %v", err)
		}
		clock.Store(start.Add(3*24*time.Hour - time.Minute).UnixNano()) // old is now 4 days old, fresh not quite 3
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := n.Store.Event(ctx, p.ID, old.ID)
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the retention job did not delete an event past its project's retention within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := n.Store.Event(ctx, p.ID, fresh.ID); err != nil {
			t.Errorf("event a minute short of 3 days old, retention 3 days: %v", err)
		}
		is, err := n.Store.Issue(ctx, p.ID, res[0].IssueID)
		if err != nil || is.Count != 2 {
			t.Errorf("issue after retention: %+v, %v; want it kept with count 2", is, err)
		}
	})
}
