package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
)

// Limits of alert rules.
const (
	maxWindowMinutes = 24 * 60
	maxCooldown      = 7 * 24 * 3600
	maxRuleTags      = 10
	maxFactor        = 1000
	// defaultScheduledCooldown is the cooldown of a threshold or
	// rate_of_change rule that sets none: without one such a rule fires
	// every period while the condition holds. new_issue and regression
	// rules default to none: each new or reopened issue is news.
	defaultScheduledCooldown = 300
)

// ruleRequest is the body of POST /api/v1/projects/:project/alert-rules.
type ruleRequest struct {
	Name      string                `json:"name"`
	Enabled   *bool                 `json:"enabled"`
	Condition *store.AlertCondition `json:"condition"`
	Cooldown  *int                  `json:"cooldown_seconds"`
	Actions   *store.AlertActions   `json:"actions"`
}

var levelNames = map[string]bool{"debug": true, "info": true, "warning": true, "error": true, "fatal": true}

// validateRule checks a rule request and returns the rule it describes,
// naming the field at fault.
func validateRule(req *ruleRequest) (*store.AlertRule, error) {
	bad := func(format string, args ...any) error { return errorf(http.StatusBadRequest, format, args...) }
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return nil, bad(`field "name" must be 1 to 100 characters`)
	}
	c := req.Condition
	if c == nil {
		return nil, bad(`field "condition" is required: {"type": "new_issue" | "regression" | "threshold" | "rate_of_change", …}`)
	}
	scheduled := store.Scheduled(c.Type)
	switch c.Type {
	case store.ConditionNewIssue, store.ConditionRegression:
	case store.ConditionThreshold:
		if c.Count < 0 {
			return nil, bad(`field "condition.count" must be 0 or more (the rule fires on more than count events), got %d`, c.Count)
		}
	case store.ConditionRateOfChange:
		if !(c.Factor > 1 && c.Factor <= maxFactor) {
			return nil, bad(`field "condition.factor" must be more than 1 and at most %d (the rule fires when this window has factor times the events of the previous one), got %v`, maxFactor, c.Factor)
		}
		if c.MinCount == 0 {
			c.MinCount = 1
		}
		if c.MinCount < 1 {
			return nil, bad(`field "condition.min_count" must be 1 or more, got %d`, c.MinCount)
		}
	default:
		return nil, bad(`field "condition.type" must be one of new_issue, regression, threshold, rate_of_change, got %q`, c.Type)
	}
	if scheduled {
		if c.WindowMinutes < 1 || c.WindowMinutes > maxWindowMinutes {
			return nil, bad(`field "condition.window_minutes" must be 1 to %d for a %s rule, got %d`, maxWindowMinutes, c.Type, c.WindowMinutes)
		}
	} else {
		for _, f := range []struct {
			name string
			set  bool
		}{{"count", c.Count != 0}, {"window_minutes", c.WindowMinutes != 0}, {"factor", c.Factor != 0}, {"min_count", c.MinCount != 0}} {
			if f.set {
				return nil, bad(`field "condition.%s" does not apply to a %s rule`, f.name, c.Type)
			}
		}
	}
	if c.Type == store.ConditionThreshold && (c.Factor != 0 || c.MinCount != 0) {
		return nil, bad(`fields "condition.factor" and "condition.min_count" apply to rate_of_change rules only`)
	}
	if c.Type == store.ConditionRateOfChange && c.Count != 0 {
		return nil, bad(`field "condition.count" applies to threshold rules only`)
	}
	if c.Level != "" && !levelNames[c.Level] {
		return nil, bad(`field "condition.level" must be one of debug, info, warning, error, fatal, got %q`, c.Level)
	}
	if len(c.Tags) > maxRuleTags {
		return nil, bad(`field "condition.tags" has %d tags; at most %d`, len(c.Tags), maxRuleTags)
	}
	for k, v := range c.Tags {
		if k == "" || len(k) > store.MaxTagLength || v == "" || len(v) > store.MaxTagLength {
			return nil, bad(`field "condition.tags": keys and values must be 1 to %d characters, got %q: %q`, store.MaxTagLength, k, v)
		}
	}
	if len(c.Tags) == 0 {
		c.Tags = nil
	}

	cooldown := 0
	if scheduled {
		cooldown = defaultScheduledCooldown
	}
	if req.Cooldown != nil {
		cooldown = *req.Cooldown
		if cooldown < 0 || cooldown > maxCooldown {
			return nil, bad(`field "cooldown_seconds" must be 0 to %d, got %d`, maxCooldown, cooldown)
		}
	}
	actions := store.AlertActions{Stream: true}
	if req.Actions != nil {
		actions = *req.Actions
		if actions.WebhookURL != "" {
			u, err := url.Parse(actions.WebhookURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(actions.WebhookURL) > 2000 {
				return nil, bad(`field "actions.webhook_url" must be an http:// or https:// URL of at most 2000 characters, got %q`, actions.WebhookURL)
			}
		}
		if !actions.Stream && actions.WebhookURL == "" {
			return nil, bad(`field "actions" must turn on "stream", set "webhook_url", or both`)
		}
	}
	enabled := true
	if req.Enabled != nil {
		enabled = *req.Enabled
	}
	return &store.AlertRule{Name: req.Name, Enabled: enabled, Condition: *c, CooldownSeconds: cooldown, Actions: actions}, nil
}

// newRuleResponse is a rule as created: the only time its webhook secret
// is shown.
type newRuleResponse struct {
	*store.AlertRule
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

func (a *API) createRule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectAccess(r, ps.ByName("project"), RoleAdmin)
	if err != nil {
		return err
	}
	var req ruleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rule, err := validateRule(&req)
	if err != nil {
		return err
	}
	rule.ID, rule.ProjectID, rule.CreatedAt = ingest.NewUUID(), p.ID, a.cfg.Now().UTC()
	if rule.Actions.WebhookURL != "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		rule.WebhookSecret = "whsec_" + hex.EncodeToString(b[:])
	}
	if err := a.cfg.Store.CreateAlertRule(r.Context(), rule); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, newRuleResponse{AlertRule: rule, WebhookSecret: rule.WebhookSecret})
	return nil
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	p, err := a.projectAccess(r, ps.ByName("project"), RoleViewer)
	if err != nil {
		return err
	}
	rules, err := a.cfg.Store.ListAlertRules(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert_rules": nonNil(rules)})
	return nil
}

// rule resolves :id, an alert rule, and checks the caller's role in its
// project.
func (a *API) rule(r *http.Request, id string, need Role) (*store.AlertRule, error) {
	rule, err := a.cfg.Store.AlertRule(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(r)
	}
	if err != nil {
		return nil, err
	}
	if _, err := a.projectOf(r, rule.ProjectID, need); err != nil {
		return nil, err
	}
	return rule, nil
}

// toggleRule is POST /api/v1/alert-rules/:id/toggle: {"enabled": bool}
// sets the rule on or off; without a body it flips.
func (a *API) toggleRule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	rule, err := a.rule(r, ps.ByName("id"), RoleAdmin)
	if err != nil {
		return err
	}
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	enabled := !rule.Enabled
	if req.Enabled != nil {
		enabled = *req.Enabled
	}
	if err := a.cfg.Store.SetAlertRuleEnabled(r.Context(), rule.ID, enabled); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(r)
		}
		return err
	}
	rule.Enabled = enabled
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	rule, err := a.rule(r, ps.ByName("id"), RoleAdmin)
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteAlertRule(r.Context(), rule.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(r)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": rule.ID, "deleted": true})
	return nil
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	rule, err := a.rule(r, ps.ByName("id"), RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"limit"}, nil)
	if err != nil {
		return err
	}
	limit, err := q.limit(50, store.MaxPage)
	if err != nil {
		return err
	}
	ds, err := a.cfg.Store.ListWebhookDeliveries(r.Context(), rule.ID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNil(ds)})
	return nil
}

// alertCursor is the position of an alert in the list.
type alertCursor struct {
	FiredAt int64  `json:"t"` // Unix microseconds
	ID      string `json:"id"`
}

// listAlerts is GET /api/v1/projects/:project/alerts?status=&limit=&cursor=:
// newest first, with next_cursor when there is more.
func (a *API) listAlerts(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectAccess(r, ps.ByName("project"), RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"status", "limit", cursorParam}, nil)
	if err != nil {
		return err
	}
	var page store.AlertPage
	if page.Status, err = q.oneOf("status", "", store.AlertActive, store.AlertAcknowledged, store.AlertResolved); err != nil {
		return err
	}
	limit, err := q.limit(50, store.MaxPage)
	if err != nil {
		return err
	}
	var c alertCursor
	if ok, err := a.decodeCursor(q, "alerts", p.ID, &c); err != nil {
		return err
	} else if ok {
		page.BeforeFiredAt, page.BeforeID = time.UnixMicro(c.FiredAt).UTC(), c.ID
	}
	page.Limit = limit + 1 // one more tells whether there is a next page
	alerts, err := a.cfg.Store.ListAlerts(r.Context(), p.ID, page)
	if err != nil {
		return err
	}
	var next *string
	if len(alerts) > limit {
		alerts = alerts[:limit]
		last := alerts[limit-1]
		s := a.encodeCursor("alerts", p.ID, alertCursor{last.FiredAt.UnixMicro(), last.ID})
		next = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": nonNil(alerts), "next_cursor": next})
	return nil
}

// moveAlert moves :id from status from to status to; a member acts on
// alerts as on issues.
func (a *API) moveAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params, from, to string) error {
	al, err := a.cfg.Store.Alert(r.Context(), ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound(r)
	}
	if err != nil {
		return err
	}
	if _, err := a.projectOf(r, al.ProjectID, RoleMember); err != nil {
		return err
	}
	c, err := a.authenticate(r)
	if err != nil {
		return err
	}
	at := a.cfg.Now().UTC().Truncate(time.Microsecond)
	err = a.cfg.Store.SetAlertStatus(r.Context(), al.ID, from, to, at, c.name())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(r)
	case errors.Is(err, store.ErrConflict):
		cur, gerr := a.cfg.Store.Alert(r.Context(), al.ID)
		if gerr == nil {
			al = cur
		}
		return errorf(http.StatusConflict, "alert %s is %s: only an %s alert can be %s", al.ID, al.Status, from, to)
	case err != nil:
		return err
	}
	al, err = a.cfg.Store.Alert(r.Context(), al.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, al)
	return nil
}

func (a *API) acknowledgeAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	return a.moveAlert(w, r, ps, store.AlertActive, store.AlertAcknowledged)
}

func (a *API) resolveAlert(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	return a.moveAlert(w, r, ps, store.AlertAcknowledged, store.AlertResolved)
}
