package store

import (
	"context"
	"encoding/json"
	"time"
)

// Alert rule conditions.
const (
	// ConditionNewIssue fires when an event creates an issue.
	ConditionNewIssue = "new_issue"
	// ConditionRegression fires when an event reopens a resolved issue.
	ConditionRegression = "regression"
	// ConditionThreshold fires when more than Count events arrived in the
	// last WindowMinutes.
	ConditionThreshold = "threshold"
	// ConditionRateOfChange fires when the events of the last
	// WindowMinutes number at least MinCount and at least Factor times
	// those of the window before it.
	ConditionRateOfChange = "rate_of_change"
)

// Scheduled reports whether rules with this condition are evaluated on a
// schedule (threshold, rate_of_change) rather than as events commit.
func Scheduled(condition string) bool {
	return condition == ConditionThreshold || condition == ConditionRateOfChange
}

// AlertCondition is what makes a rule fire. Level and Tags filter the
// events (for new_issue and regression: the event that created or reopened
// the issue) that count.
type AlertCondition struct {
	Type          string            `json:"type"`                     // a Condition… constant
	Count         int64             `json:"count,omitempty"`          // threshold: fire when more than Count events
	WindowMinutes int               `json:"window_minutes,omitempty"` // threshold, rate_of_change: the window
	Factor        float64           `json:"factor,omitempty"`         // rate_of_change: this window ≥ Factor × the previous one
	MinCount      int64             `json:"min_count,omitempty"`      // rate_of_change: and this window ≥ MinCount
	Level         string            `json:"level,omitempty"`          // only events at this level or more severe
	Tags          map[string]string `json:"tags,omitempty"`           // only events with every one of these tags
}

// AlertActions are what a rule does when it fires.
type AlertActions struct {
	// Stream publishes {"type":"alert",…} on the project's live stream.
	Stream bool `json:"stream"`
	// WebhookURL, if set, receives the alert as a signed JSON POST.
	WebhookURL string `json:"webhook_url,omitempty"`
}

// AlertRule is a project's rule.
type AlertRule struct {
	ID              string         `json:"id"` // UUID
	ProjectID       string         `json:"project_id"`
	Name            string         `json:"name"`
	Enabled         bool           `json:"enabled"`
	Condition       AlertCondition `json:"condition"`
	CooldownSeconds int            `json:"cooldown_seconds"` // after firing, the rule stays quiet this long
	Actions         AlertActions   `json:"actions"`
	// WebhookSecret keys the HMAC-SHA256 signature of webhook bodies. It
	// is stored as is (signing needs it) and never listed.
	WebhookSecret string     `json:"-"`
	LastFiredAt   *time.Time `json:"last_fired_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// Alert statuses. An alert moves active → acknowledged → resolved, never
// back.
const (
	AlertActive       = "active"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// Alert is a rule having fired.
type Alert struct {
	ID             string          `json:"id"` // UUID
	RuleID         string          `json:"rule_id"`
	ProjectID      string          `json:"project_id"`
	RuleName       string          `json:"rule_name"`
	Condition      string          `json:"condition"` // the rule's condition type when it fired
	Status         string          `json:"status"`
	Title          string          `json:"title"`
	IssueID        int64           `json:"issue_id,omitempty"` // new_issue, regression
	Details        json.RawMessage `json:"details,omitempty"`  // what was measured: counts, window, …
	FiredAt        time.Time       `json:"fired_at"`
	AcknowledgedAt *time.Time      `json:"acknowledged_at,omitempty"`
	AcknowledgedBy string          `json:"acknowledged_by,omitempty"`
	ResolvedAt     *time.Time      `json:"resolved_at,omitempty"`
	ResolvedBy     string          `json:"resolved_by,omitempty"`
}

// AlertPage selects alerts of a project, newest first: those fired before
// (BeforeFiredAt, BeforeID) when BeforeID is set, with Status if set, at
// most Limit (which must be positive).
type AlertPage struct {
	Status        string
	Limit         int
	BeforeFiredAt time.Time
	BeforeID      string
}

// WebhookDelivery is one attempt to deliver an alert to a webhook.
type WebhookDelivery struct {
	ID         string    `json:"id"` // UUID
	RuleID     string    `json:"rule_id"`
	AlertID    string    `json:"alert_id"`
	URL        string    `json:"url"`
	Attempt    int       `json:"attempt"`               // 1 for the first try
	StatusCode int       `json:"status_code,omitempty"` // 0 when no answer came
	Error      string    `json:"error,omitempty"`
	Success    bool      `json:"success"`
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"` // when the attempt started
}

// EventCount selects the events a scheduled rule counts: a project's
// events received in [From, To), at Level or more severe if Level is set,
// with every one of Tags.
type EventCount struct {
	ProjectID string
	From, To  time.Time
	Level     string
	Tags      map[string]string
}

// Alerts stores alert rules, the alerts they fire and webhook deliveries.
type Alerts interface {
	// CreateAlertRule stores r: ErrNotFound if its project does not
	// exist, ErrConflict if its id is taken.
	CreateAlertRule(ctx context.Context, r *AlertRule) error
	// AlertRule returns a rule by id, with its webhook secret.
	AlertRule(ctx context.Context, id string) (*AlertRule, error)
	// ListAlertRules returns a project's rules, oldest first, with their
	// webhook secrets.
	ListAlertRules(ctx context.Context, projectID string) ([]*AlertRule, error)
	// SetAlertRuleEnabled enables or disables a rule; ErrNotFound if
	// there is no such rule.
	SetAlertRuleEnabled(ctx context.Context, id string, enabled bool) error
	// DeleteAlertRule deletes a rule with its alerts and deliveries;
	// ErrNotFound if there is no such rule.
	DeleteAlertRule(ctx context.Context, id string) error

	// ClaimAlertRules claims, for the evaluation period that starts at
	// period (Unix seconds), every enabled scheduled rule not yet claimed
	// for it or a later period, and returns them. It is a compare-and-set
	// on each rule: of any number of concurrent callers, on any node,
	// each rule is returned to exactly one per period.
	ClaimAlertRules(ctx context.Context, period int64) ([]*AlertRule, error)
	// FireAlert stores a, an alert of rule a.RuleID, if the rule is
	// enabled and not cooling down (it last fired at least its cooldown
	// before a.FiredAt), and records a.FiredAt as when it last fired,
	// atomically: of concurrent calls, only those the cooldown allows
	// succeed. It reports whether a was stored.
	FireAlert(ctx context.Context, a *Alert) (bool, error)
	// Alert returns an alert by id.
	Alert(ctx context.Context, id string) (*Alert, error)
	// ListAlerts returns a page of a project's alerts.
	ListAlerts(ctx context.Context, projectID string, page AlertPage) ([]*Alert, error)
	// SetAlertStatus moves an alert from status from to status to at at,
	// by who: ErrNotFound if there is no such alert, ErrConflict if its
	// status is not from.
	SetAlertStatus(ctx context.Context, id, from, to string, at time.Time, who string) error

	// AddWebhookDelivery records a delivery attempt.
	AddWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	// ListWebhookDeliveries returns a rule's latest delivery attempts,
	// newest first, at most limit.
	ListWebhookDeliveries(ctx context.Context, ruleID string, limit int) ([]*WebhookDelivery, error)

	// CountEvents counts the events q selects.
	CountEvents(ctx context.Context, q EventCount) (int64, error)
}
