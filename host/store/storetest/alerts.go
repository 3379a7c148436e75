package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

func newRule(t *testing.T, s store.Store, projectID string, cond store.AlertCondition, cooldown int) *store.AlertRule {
	t.Helper()
	r := &store.AlertRule{
		ID: NewID(), ProjectID: projectID, Name: "rule " + cond.Type, Enabled: true, Condition: cond,
		CooldownSeconds: cooldown, Actions: store.AlertActions{Stream: true, WebhookURL: "http://127.0.0.1:1/hook"},
		WebhookSecret: "s3cret", // created now: in order
	}
	noErr(t, "CreateAlertRule", s.CreateAlertRule(context.Background(), r))
	return r
}

func testAlertRules(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	cond := store.AlertCondition{Type: store.ConditionThreshold, Count: 10, WindowMinutes: 5, Level: "error", Tags: map[string]string{"env": "prod"}}
	r := newRule(t, s, p.ID, cond, 60)
	wantErr(t, "CreateAlertRule with a taken id", s.CreateAlertRule(ctx, &store.AlertRule{ID: r.ID, ProjectID: p.ID,
		Name: "x", Condition: store.AlertCondition{Type: store.ConditionNewIssue}}), store.ErrConflict)
	wantErr(t, "CreateAlertRule for an unknown project", s.CreateAlertRule(ctx, &store.AlertRule{ID: NewID(), ProjectID: NewID(),
		Name: "x", Condition: store.AlertCondition{Type: store.ConditionNewIssue}}), store.ErrNotFound)

	got, err := s.AlertRule(ctx, r.ID)
	noErr(t, "AlertRule", err)
	checkUTC(t, "CreatedAt", got.CreatedAt)
	want := *r
	want.CreatedAt = utc(want.CreatedAt)
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("AlertRule: got %+v, want %+v", *got, want)
	}
	_, err = s.AlertRule(ctx, NewID())
	wantErr(t, "AlertRule(unknown)", err, store.ErrNotFound)
	r2 := newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionNewIssue}, 0)
	list, err := s.ListAlertRules(ctx, p.ID)
	noErr(t, "ListAlertRules", err)
	if len(list) != 2 || list[0].ID != r.ID || list[1].ID != r2.ID {
		t.Errorf("ListAlertRules: got %d rules, want %s then %s", len(list), r.ID, r2.ID)
	}
	noErr(t, "SetAlertRuleEnabled", s.SetAlertRuleEnabled(ctx, r2.ID, false))
	got, err = s.AlertRule(ctx, r2.ID)
	noErr(t, "AlertRule", err)
	if got.Enabled {
		t.Error("rule still enabled after SetAlertRuleEnabled(false)")
	}
	wantErr(t, "SetAlertRuleEnabled(unknown)", s.SetAlertRuleEnabled(ctx, NewID(), true), store.ErrNotFound)
	noErr(t, "DeleteAlertRule", s.DeleteAlertRule(ctx, r2.ID))
	wantErr(t, "DeleteAlertRule again", s.DeleteAlertRule(ctx, r2.ID), store.ErrNotFound)
}

func testAlertClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	threshold := newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionThreshold, Count: 1, WindowMinutes: 1}, 0)
	rate := newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionRateOfChange, Factor: 2, MinCount: 1, WindowMinutes: 1}, 0)
	newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionNewIssue}, 0) // never scheduled
	off := newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionThreshold, Count: 1, WindowMinutes: 1}, 0)
	noErr(t, "SetAlertRuleEnabled", s.SetAlertRuleEnabled(ctx, off.ID, false))
	want := []string{threshold.ID, rate.ID}
	sort.Strings(want)

	// Eight evaluators claim each of three periods at once: each rule
	// goes to exactly one of them per period.
	period := base.Truncate(30 * time.Second).Unix()
	for round := range 3 {
		p := period + int64(round)*30
		var mu sync.Mutex
		var claimed []string
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs, err := s.ClaimAlertRules(ctx, p)
				if err != nil {
					t.Errorf("ClaimAlertRules: %v", err)
					return
				}
				mu.Lock()
				for _, r := range rs {
					claimed = append(claimed, r.ID)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		sort.Strings(claimed)
		if !reflect.DeepEqual(claimed, want) {
			t.Errorf("period %d: claimed %v, want each scheduled, enabled rule once: %v", p, claimed, want)
		}
	}
	// An earlier period, as a node whose clock is behind would ask for,
	// claims nothing.
	rs, err := s.ClaimAlertRules(ctx, period)
	noErr(t, "ClaimAlertRules", err)
	if len(rs) != 0 {
		t.Errorf("claiming a past period: got %d rules, want none", len(rs))
	}
}

func testAlertFiring(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	r := newRule(t, s, p.ID, store.AlertCondition{Type: store.ConditionNewIssue}, 60)
	fire := func(at time.Time) (*store.Alert, bool) {
		t.Helper()
		a := &store.Alert{ID: NewID(), RuleID: r.ID, Title: "New issue: boom", IssueID: 7,
			Details: json.RawMessage(`{"count":1}`), FiredAt: at}
		ok, err := s.FireAlert(ctx, a)
		noErr(t, "FireAlert", err)
		return a, ok
	}

	// Concurrent fires of one rule: the cooldown lets one through.
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &store.Alert{ID: NewID(), RuleID: r.ID, Title: "t", FiredAt: base}
			ok, err := s.FireAlert(ctx, a)
			if err != nil {
				t.Errorf("FireAlert: %v", err)
			}
			if ok {
				mu.Lock()
				fired++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fired != 1 {
		t.Fatalf("6 concurrent fires within the cooldown: %d stored, want 1", fired)
	}
	if _, ok := fire(base.Add(59 * time.Second)); ok {
		t.Error("fired 59 s after the last time, within a 60 s cooldown")
	}
	first, ok := fire(base.Add(60 * time.Second))
	if !ok {
		t.Fatal("did not fire 60 s after the last time, with a 60 s cooldown")
	}
	if first.ProjectID != p.ID || first.RuleName != r.Name || first.Condition != store.ConditionNewIssue || first.Status != store.AlertActive {
		t.Errorf("FireAlert filled %+v", first)
	}
	got, err := s.Alert(ctx, first.ID)
	noErr(t, "Alert", err)
	want := *first
	want.FiredAt = utc(want.FiredAt)
	if !jsonEqual(got.Details, want.Details) {
		t.Errorf("Alert details: got %s, want %s", got.Details, want.Details)
	}
	want.Details = got.Details // jsonb keeps the value, not the text
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Alert: got %+v, want %+v", *got, want)
	}
	rule, err := s.AlertRule(ctx, r.ID)
	noErr(t, "AlertRule", err)
	if rule.LastFiredAt == nil || !rule.LastFiredAt.Equal(utc(first.FiredAt)) {
		t.Errorf("rule last fired at %v, want %v", rule.LastFiredAt, utc(first.FiredAt))
	}
	noErr(t, "SetAlertRuleEnabled", s.SetAlertRuleEnabled(ctx, r.ID, false))
	if _, ok := fire(base.Add(time.Hour)); ok {
		t.Error("a disabled rule fired")
	}
	noErr(t, "SetAlertRuleEnabled", s.SetAlertRuleEnabled(ctx, r.ID, true))

	t.Run("status", func(t *testing.T) {
		at := base.Add(2 * time.Hour)
		cases := []struct {
			from, to string
			want     error
		}{
			{store.AlertAcknowledged, store.AlertResolved, store.ErrConflict}, // it is active
			{store.AlertActive, store.AlertAcknowledged, nil},
			{store.AlertActive, store.AlertAcknowledged, store.ErrConflict}, // twice
			{store.AlertAcknowledged, store.AlertResolved, nil},
			{store.AlertAcknowledged, store.AlertResolved, store.ErrConflict},
		}
		for _, c := range cases {
			err := s.SetAlertStatus(ctx, first.ID, c.from, c.to, at, "member-1")
			if c.want == nil {
				noErr(t, fmt.Sprintf("SetAlertStatus(%s → %s)", c.from, c.to), err)
			} else {
				wantErr(t, fmt.Sprintf("SetAlertStatus(%s → %s)", c.from, c.to), err, c.want)
			}
		}
		wantErr(t, "SetAlertStatus(unknown)", s.SetAlertStatus(ctx, NewID(), store.AlertActive, store.AlertAcknowledged, at, ""), store.ErrNotFound)
		got, err := s.Alert(ctx, first.ID)
		noErr(t, "Alert", err)
		if got.Status != store.AlertResolved || got.AcknowledgedAt == nil || got.ResolvedAt == nil ||
			got.AcknowledgedBy != "member-1" || got.ResolvedBy != "member-1" || !got.ResolvedAt.Equal(utc(at)) {
			t.Errorf("after acknowledge and resolve: %+v", got)
		}
	})

	t.Run("list", func(t *testing.T) {
		// Fire more alerts, a minute apart, past the cooldown.
		var ids []string
		for i := range 5 {
			a, ok := fire(base.Add(time.Duration(3+i) * time.Hour))
			if !ok {
				t.Fatalf("alert %d did not fire", i)
			}
			ids = append([]string{a.ID}, ids...) // newest first
		}
		var all []string
		page := store.AlertPage{Limit: 2}
		for {
			as, err := s.ListAlerts(ctx, p.ID, page)
			noErr(t, "ListAlerts", err)
			for _, a := range as {
				all = append(all, a.ID)
			}
			if len(as) < page.Limit {
				break
			}
			page.BeforeFiredAt, page.BeforeID = as[len(as)-1].FiredAt, as[len(as)-1].ID
		}
		// 5 new, then the resolved one and the first of the concurrent ones.
		if len(all) != 7 || !reflect.DeepEqual(all[:5], ids) || all[5] != first.ID {
			t.Errorf("paged ListAlerts: got %v, want %v then %s and one more", all, ids, first.ID)
		}
		resolved, err := s.ListAlerts(ctx, p.ID, store.AlertPage{Status: store.AlertResolved, Limit: 10})
		noErr(t, "ListAlerts(resolved)", err)
		if len(resolved) != 1 || resolved[0].ID != first.ID {
			t.Errorf("ListAlerts(resolved): got %d alerts, want %s", len(resolved), first.ID)
		}
		other, err := s.ListAlerts(ctx, NewID(), store.AlertPage{Limit: 10})
		noErr(t, "ListAlerts(other project)", err)
		if len(other) != 0 {
			t.Errorf("ListAlerts of another project: got %d alerts", len(other))
		}
	})

	t.Run("deliveries", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			d := &store.WebhookDelivery{ID: NewID(), RuleID: r.ID, AlertID: first.ID, URL: "http://127.0.0.1:1/hook",
				Attempt: i, StatusCode: 500, Error: "HTTP 500", DurationMS: 3, At: base.Add(time.Duration(i) * time.Second)}
			if i == 3 {
				d.StatusCode, d.Error, d.Success = 200, "", true
			}
			noErr(t, "AddWebhookDelivery", s.AddWebhookDelivery(ctx, d))
		}
		wantErr(t, "AddWebhookDelivery for an unknown alert", s.AddWebhookDelivery(ctx, &store.WebhookDelivery{
			ID: NewID(), RuleID: r.ID, AlertID: NewID(), URL: "x", Attempt: 1}), store.ErrNotFound)
		ds, err := s.ListWebhookDeliveries(ctx, r.ID, 2)
		noErr(t, "ListWebhookDeliveries", err)
		if len(ds) != 2 || ds[0].Attempt != 3 || !ds[0].Success || ds[1].Attempt != 2 || ds[1].StatusCode != 500 {
			t.Errorf("ListWebhookDeliveries: got %+v, want attempts 3 (success) then 2", ds)
		}
		noErr(t, "DeleteAlertRule", s.DeleteAlertRule(ctx, r.ID))
		_, err = s.Alert(ctx, first.ID)
		wantErr(t, "Alert after deleting its rule", err, store.ErrNotFound)
		ds, err = s.ListWebhookDeliveries(ctx, r.ID, 10)
		noErr(t, "ListWebhookDeliveries", err)
		if len(ds) != 0 {
			t.Errorf("deliveries of a deleted rule: got %d", len(ds))
		}
	})
}

func testCountEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := newProject(t, s)
	q := newProject(t, s)
	at := base.Truncate(time.Minute)
	var events []*store.Event
	add := func(p *store.Project, level string, tags map[string]string, received time.Time) {
		e := newEvent(p, "fp-"+level, level, received)
		e.ReceivedAt, e.Tags = received, tags
		events = append(events, e)
	}
	prod := map[string]string{"env": "prod", "region": "eu"}
	add(p, "error", prod, at)
	add(p, "fatal", prod, at.Add(time.Minute))
	add(p, "warning", prod, at.Add(2*time.Minute))
	add(p, "error", map[string]string{"env": "dev"}, at.Add(3*time.Minute))
	add(p, "error", nil, at.Add(10*time.Minute)) // outside the window
	add(p, "error", nil, at.Add(-time.Second))   // outside too
	add(q, "error", prod, at)                    // another project
	_, err := s.Commit(ctx, events)
	noErr(t, "Commit", err)

	cases := []struct {
		name  string
		level string
		tags  map[string]string
		want  int64
	}{
		{"all", "", nil, 4},
		{"error and worse", "error", nil, 3},
		{"fatal", "fatal", nil, 1},
		{"tag", "", map[string]string{"env": "prod"}, 3},
		{"two tags", "", map[string]string{"env": "prod", "region": "eu"}, 3},
		{"tag and level", "error", map[string]string{"env": "prod"}, 2},
		{"no such tag value", "", map[string]string{"env": "staging"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := s.CountEvents(ctx, store.EventCount{ProjectID: p.ID, From: at, To: at.Add(10 * time.Minute), Level: c.level, Tags: c.tags})
			noErr(t, "CountEvents", err)
			if n != c.want {
				t.Errorf("got %d events, want %d", n, c.want)
			}
		})
	}
}
