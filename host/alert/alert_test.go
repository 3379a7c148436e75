package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore returns a fresh store of kind, closed when t ends.
func openStore(t *testing.T, kind string) store.Store {
	t.Helper()
	ctx := context.Background()
	var s store.Store
	var err error
	switch kind {
	case "postgres":
		s, err = postgres.Open(ctx, postgres.Config{URL: pgtest.URL(t), Logger: quiet})
	default:
		s, err = embedded.Open(ctx, embedded.Config{Dir: t.TempDir()})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func forEachStore(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// publisher records what the engine publishes.
type publisher struct {
	mu   sync.Mutex
	msgs []stream.Message
}

func (p *publisher) Broadcast(m stream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, m)
}

func (p *publisher) all() []stream.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]stream.Message(nil), p.msgs...)
}

func newProject(t *testing.T, s store.Store) *store.Project {
	t.Helper()
	id := storetest.NewID()
	p := &store.Project{ID: id, Slug: "p-" + id[:8], Name: "P"}
	if err := s.CreateProject(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func newRule(t *testing.T, s store.Store, p *store.Project, cond store.AlertCondition, cooldown int, actions store.AlertActions) *store.AlertRule {
	t.Helper()
	r := &store.AlertRule{ID: storetest.NewID(), ProjectID: p.ID, Name: "rule", Enabled: true, Condition: cond,
		CooldownSeconds: cooldown, Actions: actions, WebhookSecret: "whsec_test"}
	if err := s.CreateAlertRule(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// commitAt stores n events of project p received at at.
func commitAt(t *testing.T, s store.Store, p *store.Project, n int, level string, at time.Time) []store.Committed {
	t.Helper()
	events := make([]*store.Event, n)
	for i := range events {
		events[i] = &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "fp-" + level, Title: "boom", Level: level,
			Timestamp: at, ReceivedAt: at, Body: json.RawMessage(`{}`)}
	}
	res, err := s.Commit(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func alerts(t *testing.T, s store.Store, p *store.Project) []*store.Alert {
	t.Helper()
	as, err := s.ListAlerts(context.Background(), p.ID, store.AlertPage{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestThreshold evaluates a threshold rule on an injected clock: once per
// period, on more than count events in the window, quiet during its
// cooldown.
func TestThreshold(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		s := openStore(t, kind)
		p := newProject(t, s)
		pub := &publisher{}
		e := alert.New(alert.Config{Store: s, Publisher: pub, Logger: quiet})
		defer e.Close(ctx)
		// More than 3 error-or-worse events in 5 minutes; quiet for 10.
		newRule(t, s, p, store.AlertCondition{Type: store.ConditionThreshold, Count: 3, WindowMinutes: 5, Level: "error"}, 600,
			store.AlertActions{Stream: true})
		now := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour) // a period boundary, in a partition that exists
		step := func(d time.Duration, wantAlerts int) {
			t.Helper()
			now = now.Add(d)
			if err := e.Evaluate(ctx, now); err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := len(alerts(t, s, p)); got != wantAlerts {
				t.Fatalf("at %v: %d alerts, want %d", now, got, wantAlerts)
			}
		}
		commitAt(t, s, p, 3, "error", now.Add(-time.Minute))
		commitAt(t, s, p, 5, "warning", now.Add(-time.Minute)) // filtered out by level
		step(time.Second, 0)                                   // 3 is not more than 3
		commitAt(t, s, p, 1, "fatal", now)
		step(0, 0)              // the same period: claimed already, not evaluated again
		step(30*time.Second, 1) // the next period: 4 > 3
		step(30*time.Second, 1) // cooling down
		step(9*time.Minute, 1)  // cooling down still, and the window has moved past the events
		commitAt(t, s, p, 4, "error", now)
		step(time.Minute, 2) // cooldown over, 4 new events in the window

		as := alerts(t, s, p)
		a := as[0]
		if a.Status != store.AlertActive || a.Condition != store.ConditionThreshold {
			t.Errorf("alert: %+v", a)
		}
		var details map[string]any
		if err := json.Unmarshal(a.Details, &details); err != nil || details["count"] != 4.0 || details["threshold"] != 3.0 {
			t.Errorf("alert details: %s (%v)", a.Details, err)
		}
		msgs := pub.all()
		if len(msgs) != 2 || msgs[0].Type != stream.TypeAlert || msgs[0].ProjectID != p.ID {
			t.Fatalf("stream messages: %+v, want 2 alert messages", msgs)
		}
		var m struct {
			Type   string       `json:"type"`
			Action string       `json:"action"`
			Alert  *store.Alert `json:"alert"`
		}
		if err := json.Unmarshal(msgs[1].Payload, &m); err != nil || m.Type != "alert" || m.Action != "fired" || m.Alert.ID != as[0].ID {
			t.Errorf("stream payload %s (%v)", msgs[1].Payload, err)
		}
	})
}

// TestRateOfChange fires when this window has at least factor times the
// events of the previous one, and at least min_count.
func TestRateOfChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		s := openStore(t, kind)
		e := alert.New(alert.Config{Store: s, Interval: time.Minute, Logger: quiet})
		defer e.Close(ctx)
		cond := store.AlertCondition{Type: store.ConditionRateOfChange, WindowMinutes: 10, Factor: 2, MinCount: 3}
		cases := []struct {
			name       string
			prev, cur  int
			wantAlerts int
		}{
			{"doubled", 2, 4, 1},
			{"not quite doubled", 3, 5, 0},
			{"from nothing, below min_count", 0, 2, 0},
			{"from nothing, at min_count", 0, 3, 1},
			{"steady", 10, 10, 0},
		}
		now := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := newProject(t, s)
				newRule(t, s, p, cond, 0, store.AlertActions{Stream: true})
				now = now.Add(time.Minute)
				if c.prev > 0 {
					commitAt(t, s, p, c.prev, "error", now.Add(-15*time.Minute))
				}
				commitAt(t, s, p, c.cur, "error", now.Add(-5*time.Minute))
				commitAt(t, s, p, 50, "error", now.Add(-25*time.Minute)) // before both windows
				if err := e.Evaluate(ctx, now); err != nil {
					t.Fatal(err)
				}
				if got := len(alerts(t, s, p)); got != c.wantAlerts {
					t.Errorf("previous %d, current %d: %d alerts, want %d", c.prev, c.cur, got, c.wantAlerts)
				}
			})
		}
	})
}

// TestOncePerPeriodAcrossNodes runs four engines, each with its own
// connection pool to one PostgreSQL database as four nodes would, all
// evaluating every period at the same moment: each rule fires once per
// period, never twice.
func TestOncePerPeriodAcrossNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	var engines []*alert.Engine
	var s store.Store
	for i := range 4 {
		st, err := postgres.Open(ctx, postgres.Config{URL: url, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			s = st
		}
		e := alert.New(alert.Config{Store: st, Logger: quiet})
		t.Cleanup(func() { e.Close(ctx) })
		engines = append(engines, e)
	}
	p := newProject(t, s)
	const rules = 5
	for range rules {
		newRule(t, s, p, store.AlertCondition{Type: store.ConditionThreshold, Count: 0, WindowMinutes: 60}, 0, store.AlertActions{Stream: true})
	}
	now := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	commitAt(t, s, p, 1, "error", now.Add(-time.Minute))
	const periods = 6
	for i := range periods {
		at := now.Add(time.Duration(i)*alert.DefaultInterval + time.Second)
		var wg sync.WaitGroup
		for _, e := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.Evaluate(ctx, at); err != nil {
					t.Errorf("Evaluate: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	if got := len(alerts(t, s, p)); got != rules*periods {
		t.Errorf("%d rules over %d periods on 4 nodes: %d alerts, want %d", rules, periods, got, rules*periods)
	}
}

// receiver is a webhook endpoint that answers each attempt with the next
// status of a script, and records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	at     time.Time
	body   []byte
	header http.Header
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{at: time.Now(), body: b, header: r.Header.Clone()})
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// TestWebhook delivers alerts to a real local HTTP receiver: signed, with
// retries and exponential backoff on failures, none after a refusal, each
// attempt in the delivery log.
func TestWebhook(t *testing.T) {
	const backoff = 50 * time.Millisecond
	cases := []struct {
		name         string
		statuses     []int
		wantAttempts int
		wantSuccess  bool
	}{
		{"first try", nil, 1, true},
		{"two failures then success", []int{500, 503, 200}, 3, true},
		{"refused: no retry", []int{400}, 1, false},
		{"always failing: gives up", []int{500, 500, 500, 500}, 4, false},
	}
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		s := openStore(t, kind)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				rc := newReceiver(t, c.statuses...)
				p := newProject(t, s)
				e := alert.New(alert.Config{Store: s, Logger: quiet, WebhookAttempts: 4, WebhookBackoff: backoff})
				defer e.Close(ctx)
				r := newRule(t, s, p, store.AlertCondition{Type: store.ConditionThreshold, Count: 0, WindowMinutes: 5}, 0,
					store.AlertActions{WebhookURL: rc.URL + "/hook"})
				now := time.Now().UTC()
				commitAt(t, s, p, 1, "error", now.Add(-time.Minute))
				if err := e.Evaluate(ctx, now); err != nil {
					t.Fatal(err)
				}
				e.Wait()

				as := alerts(t, s, p)
				if len(as) != 1 {
					t.Fatalf("%d alerts, want 1", len(as))
				}
				reqs := rc.requests()
				if len(reqs) != c.wantAttempts {
					t.Fatalf("receiver got %d requests, want %d", len(reqs), c.wantAttempts)
				}
				for i, req := range reqs {
					if !alert.Verify(r.WebhookSecret, req.body, req.header.Get(alert.SignatureHeader)) {
						t.Errorf("attempt %d: signature %q does not verify", i+1, req.header.Get(alert.SignatureHeader))
					}
					if alert.Verify("another secret", req.body, req.header.Get(alert.SignatureHeader)) {
						t.Errorf("attempt %d: signature verifies with the wrong secret", i+1)
					}
					if req.header.Get(alert.DeliveryHeader) != as[0].ID || req.header.Get("Content-Type") != "application/json" {
						t.Errorf("attempt %d: headers %v", i+1, req.header)
					}
					if i > 0 {
						// Exponential: backoff, then 2×backoff, …
						want := backoff << (i - 1)
						if gap := req.at.Sub(reqs[i-1].at); gap < want {
							t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, want)
						}
					}
				}
				var body alert.WebhookBody
				if err := json.Unmarshal(reqs[0].body, &body); err != nil {
					t.Fatal(err)
				}
				if body.Event != "alert.fired" || body.Alert.ID != as[0].ID || body.Rule.ID != r.ID || body.Project.Slug != p.Slug {
					t.Errorf("webhook body: %s", reqs[0].body)
				}

				ds, err := s.ListWebhookDeliveries(ctx, r.ID, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != c.wantAttempts {
					t.Fatalf("delivery log: %d entries, want %d", len(ds), c.wantAttempts)
				}
				last := ds[0] // newest first
				if last.Attempt != c.wantAttempts || last.Success != c.wantSuccess || last.AlertID != as[0].ID {
					t.Errorf("last delivery: %+v", last)
				}
				for _, d := range ds[1:] {
					if d.Success || d.StatusCode < 500 || d.Error == "" {
						t.Errorf("failed delivery logged as %+v", d)
					}
				}
			})
		}
	})
}

// TestCloseCancelsDelivery stops an engine while its webhook receiver
// hangs: Close returns, and the log says the attempt was canceled.
func TestCloseCancelsDelivery(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "embedded")
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := newProject(t, s)
	e := alert.New(alert.Config{Store: s, Logger: quiet})
	r := newRule(t, s, p, store.AlertCondition{Type: store.ConditionThreshold, Count: 0, WindowMinutes: 5}, 0,
		store.AlertActions{WebhookURL: srv.URL})
	now := time.Now().UTC()
	commitAt(t, s, p, 1, "error", now.Add(-time.Minute))
	if err := e.Evaluate(ctx, now); err != nil {
		t.Fatal(err)
	}
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// Bounds generous for a loaded machine: the receiver never answers,
	// so only canceling the attempt lets Close return (the logged error
	// says which ended it).
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	ds, err := s.ListWebhookDeliveries(ctx, r.ID, 10)
	if err != nil || len(ds) != 1 || ds[0].Success || !strings.Contains(ds[0].Error, "canceled") {
		t.Fatalf("delivery log after Close: %+v, %v; want one canceled attempt", ds, err)
	}
}

// TestIssueRules fires new_issue and regression rules from committed
// batches, as ingestion reports them, through the engine's worker.
func TestIssueRules(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		s := openStore(t, kind)
		p := newProject(t, s)
		pub := &publisher{}
		e := alert.New(alert.Config{Store: s, Publisher: pub, Logger: quiet})
		e.Start()
		defer e.Close(ctx)
		newRule(t, s, p, store.AlertCondition{Type: store.ConditionNewIssue, Level: "error"}, 0, store.AlertActions{Stream: true})
		reg := newRule(t, s, p, store.AlertCondition{Type: store.ConditionRegression}, 0, store.AlertActions{Stream: true})
		off := newRule(t, s, p, store.AlertCondition{Type: store.ConditionNewIssue}, 0, store.AlertActions{Stream: true})
		if err := s.SetAlertRuleEnabled(ctx, off.ID, false); err != nil {
			t.Fatal(err)
		}

		commit := func(level, fp string) store.Committed {
			ev := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: fp, Title: "boom " + fp, Level: level,
				Timestamp: time.Now(), Body: json.RawMessage(`{}`)}
			res, err := s.Commit(ctx, []*store.Event{ev})
			if err != nil {
				t.Fatal(err)
			}
			e.Committed([]*store.Event{ev}, res)
			return res[0]
		}
		waitFor := func(n int) []*store.Alert {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				as := alerts(t, s, p)
				if len(as) >= n || time.Now().After(deadline) {
					return as
				}
				time.Sleep(10 * time.Millisecond)
			}
		}

		commit("warning", "a") // new, but below the rule's level
		first := commit("error", "b")
		as := waitFor(1)
		if len(as) != 1 || as[0].IssueID != first.IssueID || as[0].Condition != store.ConditionNewIssue {
			t.Fatalf("after a new error issue: %+v", as)
		}
		commit("error", "b") // not new: nothing
		if err := s.SetIssueStatus(ctx, p.ID, first.IssueID, store.StatusResolved); err != nil {
			t.Fatal(err)
		}
		if r := commit("error", "b"); !r.Regressed {
			t.Fatalf("commit after resolving: %+v, want a regression", r)
		}
		as = waitFor(2)
		if len(as) != 2 || as[0].RuleID != reg.ID || as[0].Condition != store.ConditionRegression || as[0].IssueID != first.IssueID {
			t.Fatalf("after a regression: %+v", as)
		}
		// The worker broadcasts after storing the alert: wait for both
		// messages before checking that nothing more comes.
		for deadline := time.Now().Add(10 * time.Second); len(pub.all()) < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // nothing more comes
		if got := len(alerts(t, s, p)); got != 2 {
			t.Errorf("%d alerts, want 2", got)
		}
		if got := len(pub.all()); got != 2 {
			t.Errorf("%d stream messages, want 2", got)
		}
	})
}
