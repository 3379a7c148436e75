package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// CreateAlertRule stores r. A zero CreatedAt is set to now.
func (s *Store) CreateAlertRule(ctx context.Context, r *store.AlertRule) error {
	if _, ok := batch.ParseUUID(r.ID); !ok {
		return fmt.Errorf("create alert rule: id %q is not a UUID", r.ID)
	}
	r.ID, r.ProjectID = canonical(r.ID), canonical(r.ProjectID)
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	cond, err := json.Marshal(r.Condition)
	if err != nil {
		return fmt.Errorf("create alert rule: %w", err)
	}
	actions, err := json.Marshal(r.Actions)
	if err != nil {
		return fmt.Errorf("create alert rule: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO alert_rules (id, project_id, name, enabled, condition_type, condition,
			cooldown_seconds, actions, webhook_secret, last_fired_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ProjectID, r.Name, r.Enabled, r.Condition.Type, string(cond), r.CooldownSeconds, string(actions),
		r.WebhookSecret, nullTime(r.LastFiredAt), micros(r.CreatedAt))
	switch {
	case isConflict(err):
		return fmt.Errorf("create alert rule: %w", store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("create alert rule: project %q: %w", r.ProjectID, store.ErrNotFound)
	}
	return wrap("create alert rule", err)
}

const ruleColumns = `id, project_id, name, enabled, condition, cooldown_seconds, actions, webhook_secret,
	last_fired_at, created_at`

func scanRule(row interface{ Scan(...any) error }) (*store.AlertRule, error) {
	var r store.AlertRule
	var cond, actions string
	var fired sql.NullInt64
	var created int64
	if err := row.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Enabled, &cond, &r.CooldownSeconds, &actions,
		&r.WebhookSecret, &fired, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cond), &r.Condition); err != nil {
		return nil, fmt.Errorf("condition: %w", err)
	}
	if err := json.Unmarshal([]byte(actions), &r.Actions); err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	r.LastFiredAt, r.CreatedAt = timePtr(fired), fromMicros(created)
	return &r, nil
}

// AlertRule returns a rule by id.
func (s *Store) AlertRule(ctx context.Context, id string) (*store.AlertRule, error) {
	r, err := scanRule(s.r.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE id = ?", canonical(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("alert rule %q: %w", id, store.ErrNotFound)
	}
	return r, wrap(fmt.Sprintf("alert rule %q", id), err)
}

// ListAlertRules returns a project's rules, oldest first.
func (s *Store) ListAlertRules(ctx context.Context, projectID string) ([]*store.AlertRule, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE project_id = ? ORDER BY created_at, id",
		canonical(projectID))
	if err != nil {
		return nil, wrap("list alert rules", err)
	}
	rs, err := collect(rows, scanRule)
	return rs, wrap("list alert rules", err)
}

// execOne runs a write and returns ErrNotFound if it changed no row.
func (s *Store) execOne(ctx context.Context, op, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// SetAlertRuleEnabled enables or disables a rule.
func (s *Store) SetAlertRuleEnabled(ctx context.Context, id string, enabled bool) error {
	return s.execOne(ctx, fmt.Sprintf("set alert rule %q enabled", id),
		"UPDATE alert_rules SET enabled = ? WHERE id = ?", enabled, canonical(id))
}

// DeleteAlertRule deletes a rule with its alerts and deliveries.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	return s.execOne(ctx, fmt.Sprintf("delete alert rule %q", id), "DELETE FROM alert_rules WHERE id = ?", canonical(id))
}

// ClaimAlertRules claims the enabled scheduled rules for period; writes
// are serialized, so the UPDATE is the compare-and-set.
func (s *Store) ClaimAlertRules(ctx context.Context, period int64) ([]*store.AlertRule, error) {
	rows, err := s.w.QueryContext(ctx, `UPDATE alert_rules SET last_period = ?1
		WHERE enabled AND condition_type IN ('threshold', 'rate_of_change') AND last_period < ?1
		RETURNING `+ruleColumns, period)
	if err != nil {
		return nil, wrap("claim alert rules", err)
	}
	rs, err := collect(rows, scanRule)
	return rs, wrap("claim alert rules", err)
}

// FireAlert stores a if its rule's cooldown allows, atomically.
func (s *Store) FireAlert(ctx context.Context, a *store.Alert) (bool, error) {
	op := fmt.Sprintf("fire alert of rule %q", a.RuleID)
	if _, ok := batch.ParseUUID(a.ID); !ok {
		return false, fmt.Errorf("%s: alert id %q is not a UUID", op, a.ID)
	}
	a.ID, a.RuleID = canonical(a.ID), canonical(a.RuleID)
	if a.FiredAt.IsZero() {
		a.FiredAt = s.now()
	}
	if a.Status == "" {
		a.Status = store.AlertActive
	}
	fired := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		at := micros(a.FiredAt)
		err := tx.QueryRowContext(ctx, `UPDATE alert_rules SET last_fired_at = ?2
			WHERE id = ?1 AND enabled AND (last_fired_at IS NULL OR last_fired_at + cooldown_seconds * 1000000 <= ?2)
			RETURNING project_id, name, condition_type`, a.RuleID, at).Scan(&a.ProjectID, &a.RuleName, &a.Condition)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var issue, details any
		if a.IssueID != 0 {
			issue = a.IssueID
		}
		if len(a.Details) > 0 {
			details = string(a.Details)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, rule_id, project_id, rule_name, condition, status, title,
				issue_id, details, fired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.RuleID, a.ProjectID, a.RuleName, a.Condition, a.Status, a.Title, issue, details, at); err != nil {
			return err
		}
		fired = true
		return nil
	})
	if err != nil {
		return false, wrap(op, err)
	}
	return fired, nil
}

const alertColumns = `id, rule_id, project_id, rule_name, condition, status, title, issue_id, details, fired_at,
	acknowledged_at, acknowledged_by, resolved_at, resolved_by`

func scanAlert(row interface{ Scan(...any) error }) (*store.Alert, error) {
	var a store.Alert
	var issue, ack, res sql.NullInt64
	var details, ackBy, resBy sql.NullString
	var fired int64
	if err := row.Scan(&a.ID, &a.RuleID, &a.ProjectID, &a.RuleName, &a.Condition, &a.Status, &a.Title, &issue,
		&details, &fired, &ack, &ackBy, &res, &resBy); err != nil {
		return nil, err
	}
	a.IssueID = issue.Int64
	if details.Valid {
		a.Details = json.RawMessage(details.String)
	}
	a.FiredAt = fromMicros(fired)
	a.AcknowledgedAt, a.AcknowledgedBy = timePtr(ack), ackBy.String
	a.ResolvedAt, a.ResolvedBy = timePtr(res), resBy.String
	return &a, nil
}

// Alert returns an alert by id.
func (s *Store) Alert(ctx context.Context, id string) (*store.Alert, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, "SELECT "+alertColumns+" FROM alerts WHERE id = ?", canonical(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("alert %q: %w", id, store.ErrNotFound)
	}
	return a, wrap(fmt.Sprintf("alert %q", id), err)
}

// ListAlerts returns a page of a project's alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, projectID string, page store.AlertPage) ([]*store.Alert, error) {
	if page.Limit <= 0 {
		return nil, nil
	}
	q := "SELECT " + alertColumns + " FROM alerts WHERE project_id = ? AND (? = '' OR status = ?)"
	args := []any{canonical(projectID), page.Status, page.Status}
	if page.BeforeID != "" {
		q += " AND (fired_at, id) < (?, ?)"
		args = append(args, micros(page.BeforeFiredAt), canonical(page.BeforeID))
	}
	q += fmt.Sprintf(" ORDER BY fired_at DESC, id DESC LIMIT %d", page.Limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("list alerts", err)
	}
	as, err := collect(rows, scanAlert)
	return as, wrap("list alerts", err)
}

// SetAlertStatus moves an alert from one status to the next.
func (s *Store) SetAlertStatus(ctx context.Context, id, from, to string, at time.Time, who string) error {
	op := fmt.Sprintf("set status of alert %q to %s", id, to)
	var q string
	switch to {
	case store.AlertAcknowledged:
		q = "UPDATE alerts SET status = ?3, acknowledged_at = ?4, acknowledged_by = ?5 WHERE id = ?1 AND status = ?2"
	case store.AlertResolved:
		q = "UPDATE alerts SET status = ?3, resolved_at = ?4, resolved_by = ?5 WHERE id = ?1 AND status = ?2"
	default:
		return fmt.Errorf("%s: an alert cannot move to %q", op, to)
	}
	var failure error
	err := s.write(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, "SELECT status FROM alerts WHERE id = ?", canonical(id)).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			failure = fmt.Errorf("%s: %w", op, store.ErrNotFound)
			return errRollback
		}
		if err != nil {
			return err
		}
		if status != from {
			failure = fmt.Errorf("%s: it is %s, not %s: %w", op, status, from, store.ErrConflict)
			return errRollback
		}
		_, err = tx.ExecContext(ctx, q, canonical(id), from, to, micros(at), who)
		return err
	})
	if errors.Is(err, errRollback) {
		return failure
	}
	return wrap(op, err)
}

// AddWebhookDelivery records a delivery attempt. A zero At is set to now.
func (s *Store) AddWebhookDelivery(ctx context.Context, d *store.WebhookDelivery) error {
	if _, ok := batch.ParseUUID(d.ID); !ok {
		return fmt.Errorf("add webhook delivery: id %q is not a UUID", d.ID)
	}
	d.ID, d.RuleID, d.AlertID = canonical(d.ID), canonical(d.RuleID), canonical(d.AlertID)
	if d.At.IsZero() {
		d.At = s.now()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, rule_id, alert_id, url, attempt, status_code, error,
			success, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.RuleID, d.AlertID, d.URL, d.Attempt, d.StatusCode, batch.CleanText(d.Error), d.Success, d.DurationMS, micros(d.At))
	if isForeignKey(err) {
		return fmt.Errorf("add webhook delivery: rule %q or alert %q: %w", d.RuleID, d.AlertID, store.ErrNotFound)
	}
	return wrap("add webhook delivery", err)
}

// ListWebhookDeliveries returns a rule's latest delivery attempts.
func (s *Store) ListWebhookDeliveries(ctx context.Context, ruleID string, limit int) ([]*store.WebhookDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, rule_id, alert_id, url, attempt, status_code, error, success, duration_ms, at
		FROM webhook_deliveries WHERE rule_id = ? ORDER BY at DESC, attempt DESC, id LIMIT ?`, canonical(ruleID), limit)
	if err != nil {
		return nil, wrap("list webhook deliveries", err)
	}
	ds, err := collect(rows, func(r interface{ Scan(...any) error }) (*store.WebhookDelivery, error) {
		var d store.WebhookDelivery
		var at int64
		err := r.Scan(&d.ID, &d.RuleID, &d.AlertID, &d.URL, &d.Attempt, &d.StatusCode, &d.Error, &d.Success, &d.DurationMS, &at)
		d.At = fromMicros(at)
		return &d, err
	})
	return ds, wrap("list webhook deliveries", err)
}

// levelRankSQL ranks events.level as batch.LevelRank does.
const levelRankSQL = `CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warning' THEN 2
	WHEN 'error' THEN 3 WHEN 'fatal' THEN 4 ELSE 3 END`

// CountEvents counts a project's events received in [q.From, q.To) that
// match q's level and tags, using the (project_id, received_at) index.
func (s *Store) CountEvents(ctx context.Context, q store.EventCount) (int64, error) {
	var sb strings.Builder
	sb.WriteString("SELECT count(*) FROM events WHERE project_id = ? AND received_at >= ? AND received_at < ?")
	args := []any{canonical(q.ProjectID), micros(q.From), micros(q.To)}
	if q.Level != "" {
		sb.WriteString(" AND " + levelRankSQL + " >= ?")
		args = append(args, batch.LevelRank(q.Level))
	}
	for k, v := range q.Tags {
		sb.WriteString(" AND EXISTS (SELECT 1 FROM json_each(events.tags) WHERE key = ? AND value = ?)")
		args = append(args, k, v)
	}
	var n int64
	err := s.r.QueryRowContext(ctx, sb.String(), args...).Scan(&n)
	return n, wrap("count events", err)
}
