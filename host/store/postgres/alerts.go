package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// CreateAlertRule stores r. A zero CreatedAt is set to now.
func (s *Store) CreateAlertRule(ctx context.Context, r *store.AlertRule) error {
	uid, ok := batch.ParseUUID(r.ID)
	if !ok {
		return fmt.Errorf("create alert rule: id %q is not a UUID", r.ID)
	}
	pid, ok := batch.ParseUUID(r.ProjectID)
	if !ok {
		return fmt.Errorf("create alert rule: project %q: %w", r.ProjectID, store.ErrNotFound)
	}
	r.ID, r.ProjectID = batch.FormatUUID(uid), batch.FormatUUID(pid)
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
	_, err = s.pool.Exec(ctx, `INSERT INTO alert_rules (id, project_id, name, enabled, condition_type, condition,
			cooldown_seconds, actions, webhook_secret, last_fired_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		uid, pid, r.Name, r.Enabled, r.Condition.Type, cond, r.CooldownSeconds, actions, r.WebhookSecret, r.LastFiredAt, r.CreatedAt)
	switch pgCode(err) {
	case codeUniqueViolation:
		return fmt.Errorf("create alert rule: %w", store.ErrConflict)
	case codeForeignKeyViolation:
		return fmt.Errorf("create alert rule: project %q: %w", r.ProjectID, store.ErrNotFound)
	}
	return wrap("create alert rule", err)
}

const ruleColumns = `id, project_id, name, enabled, condition, cooldown_seconds, actions, webhook_secret,
	last_fired_at, created_at`

func scanRule(row pgx.Row) (*store.AlertRule, error) {
	var r store.AlertRule
	var cond, actions []byte
	if err := row.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Enabled, &cond, &r.CooldownSeconds, &actions,
		&r.WebhookSecret, &r.LastFiredAt, &r.CreatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cond, &r.Condition); err != nil {
		return nil, fmt.Errorf("condition: %w", err)
	}
	if err := json.Unmarshal(actions, &r.Actions); err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	if r.LastFiredAt != nil {
		t := r.LastFiredAt.UTC()
		r.LastFiredAt = &t
	}
	return &r, nil
}

// AlertRule returns a rule by id.
func (s *Store) AlertRule(ctx context.Context, id string) (*store.AlertRule, error) {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return nil, fmt.Errorf("alert rule %q: %w", id, store.ErrNotFound)
	}
	r, err := scanRule(s.pool.QueryRow(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE id = $1", uid))
	if isNoRows(err) {
		return nil, fmt.Errorf("alert rule %q: %w", id, store.ErrNotFound)
	}
	return r, wrap(fmt.Sprintf("alert rule %q", id), err)
}

func collectRules(rows pgx.Rows, err error) ([]*store.AlertRule, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.AlertRule, error) { return scanRule(r) })
}

// ListAlertRules returns a project's rules, oldest first.
func (s *Store) ListAlertRules(ctx context.Context, projectID string) ([]*store.AlertRule, error) {
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return nil, nil
	}
	rs, err := collectRules(s.pool.Query(ctx, "SELECT "+ruleColumns+" FROM alert_rules WHERE project_id = $1 ORDER BY created_at, id", pid))
	return rs, wrap("list alert rules", err)
}

// SetAlertRuleEnabled enables or disables a rule.
func (s *Store) SetAlertRuleEnabled(ctx context.Context, id string, enabled bool) error {
	return s.execOne(ctx, fmt.Sprintf("set alert rule %q enabled", id), id, "UPDATE alert_rules SET enabled = $2 WHERE id = $1", enabled)
}

// DeleteAlertRule deletes a rule with its alerts and deliveries.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	return s.execOne(ctx, fmt.Sprintf("delete alert rule %q", id), id, "DELETE FROM alert_rules WHERE id = $1")
}

// execOne runs q with the UUID id as $1 and args after it, and returns
// ErrNotFound if it changed no row.
func (s *Store) execOne(ctx context.Context, op, id, q string, args ...any) error {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, q, append([]any{uid}, args...)...)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// ClaimAlertRules claims the enabled scheduled rules for period. The
// UPDATE's WHERE is re-checked against the latest committed row when a
// concurrent claim holds it, so a rule claimed by another node meanwhile
// is skipped: each rule goes to one caller per period.
func (s *Store) ClaimAlertRules(ctx context.Context, period int64) ([]*store.AlertRule, error) {
	rs, err := collectRules(s.pool.Query(ctx, `UPDATE alert_rules SET last_period = $1
		WHERE enabled AND condition_type IN ('threshold', 'rate_of_change') AND last_period < $1
		RETURNING `+ruleColumns, period))
	return rs, wrap("claim alert rules", err)
}

// FireAlert stores a if its rule's cooldown allows, atomically.
func (s *Store) FireAlert(ctx context.Context, a *store.Alert) (bool, error) {
	op := fmt.Sprintf("fire alert of rule %q", a.RuleID)
	uid, ok1 := batch.ParseUUID(a.ID)
	rid, ok2 := batch.ParseUUID(a.RuleID)
	if !ok1 || !ok2 {
		return false, fmt.Errorf("%s: alert id %q or rule id is not a UUID", op, a.ID)
	}
	a.ID, a.RuleID = batch.FormatUUID(uid), batch.FormatUUID(rid)
	if a.FiredAt.IsZero() {
		a.FiredAt = s.now()
	}
	if a.Status == "" {
		a.Status = store.AlertActive
	}
	fired := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row lock the UPDATE takes makes concurrent fires of one rule
		// take turns, each seeing the last_fired_at the previous one set.
		err := tx.QueryRow(ctx, `UPDATE alert_rules SET last_fired_at = $2
			WHERE id = $1 AND enabled
				AND (last_fired_at IS NULL OR last_fired_at + cooldown_seconds * interval '1 second' <= $2)
			RETURNING project_id, name, condition_type`, rid, a.FiredAt).Scan(&a.ProjectID, &a.RuleName, &a.Condition)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		var issue *int64
		if a.IssueID != 0 {
			issue = &a.IssueID
		}
		var details []byte
		if len(a.Details) > 0 {
			details = a.Details
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alerts (id, rule_id, project_id, rule_name, condition, status, title,
				issue_id, details, fired_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			uid, rid, a.ProjectID, a.RuleName, a.Condition, a.Status, a.Title, issue, details, a.FiredAt); err != nil {
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

func scanAlert(row pgx.Row) (*store.Alert, error) {
	var a store.Alert
	var issue *int64
	var details []byte
	var ackBy, resBy *string
	if err := row.Scan(&a.ID, &a.RuleID, &a.ProjectID, &a.RuleName, &a.Condition, &a.Status, &a.Title, &issue,
		&details, &a.FiredAt, &a.AcknowledgedAt, &ackBy, &a.ResolvedAt, &resBy); err != nil {
		return nil, err
	}
	if issue != nil {
		a.IssueID = *issue
	}
	if len(details) > 0 {
		a.Details = details
	}
	if ackBy != nil {
		a.AcknowledgedBy = *ackBy
	}
	if resBy != nil {
		a.ResolvedBy = *resBy
	}
	a.FiredAt = a.FiredAt.UTC()
	for _, t := range []**time.Time{&a.AcknowledgedAt, &a.ResolvedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return &a, nil
}

// Alert returns an alert by id.
func (s *Store) Alert(ctx context.Context, id string) (*store.Alert, error) {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return nil, fmt.Errorf("alert %q: %w", id, store.ErrNotFound)
	}
	a, err := scanAlert(s.pool.QueryRow(ctx, "SELECT "+alertColumns+" FROM alerts WHERE id = $1", uid))
	if isNoRows(err) {
		return nil, fmt.Errorf("alert %q: %w", id, store.ErrNotFound)
	}
	return a, wrap(fmt.Sprintf("alert %q", id), err)
}

// ListAlerts returns a page of a project's alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, projectID string, page store.AlertPage) ([]*store.Alert, error) {
	pid, ok := batch.ParseUUID(projectID)
	if !ok || page.Limit <= 0 {
		return nil, nil
	}
	q := "SELECT " + alertColumns + " FROM alerts WHERE project_id = $1 AND ($2 = '' OR status = $2)"
	args := []any{pid, page.Status}
	if page.BeforeID != "" {
		bid, ok := batch.ParseUUID(page.BeforeID)
		if !ok {
			return nil, fmt.Errorf("list alerts: cursor id %q is not a UUID", page.BeforeID)
		}
		q += " AND (fired_at, id) < ($3, $4)"
		args = append(args, page.BeforeFiredAt, bid)
	}
	q += fmt.Sprintf(" ORDER BY fired_at DESC, id DESC LIMIT %d", page.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("list alerts", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Alert, error) { return scanAlert(r) })
	return as, wrap("list alerts", err)
}

// SetAlertStatus moves an alert from one status to the next.
func (s *Store) SetAlertStatus(ctx context.Context, id, from, to string, at time.Time, who string) error {
	op := fmt.Sprintf("set status of alert %q to %s", id, to)
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	var q string
	switch to {
	case store.AlertAcknowledged:
		q = "UPDATE alerts SET status = $3, acknowledged_at = $4, acknowledged_by = $5 WHERE id = $1 AND status = $2"
	case store.AlertResolved:
		q = "UPDATE alerts SET status = $3, resolved_at = $4, resolved_by = $5 WHERE id = $1 AND status = $2"
	default:
		return fmt.Errorf("%s: an alert cannot move to %q", op, to)
	}
	tag, err := s.pool.Exec(ctx, q, uid, from, to, at, who)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	a, err := s.Alert(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: it is %s, not %s: %w", op, a.Status, from, store.ErrConflict)
}

// AddWebhookDelivery records a delivery attempt. A zero At is set to now.
func (s *Store) AddWebhookDelivery(ctx context.Context, d *store.WebhookDelivery) error {
	uid, ok1 := batch.ParseUUID(d.ID)
	rid, ok2 := batch.ParseUUID(d.RuleID)
	aid, ok3 := batch.ParseUUID(d.AlertID)
	if !ok1 {
		return fmt.Errorf("add webhook delivery: id %q is not a UUID", d.ID)
	}
	if !ok2 || !ok3 {
		return fmt.Errorf("add webhook delivery: rule %q or alert %q: %w", d.RuleID, d.AlertID, store.ErrNotFound)
	}
	if d.At.IsZero() {
		d.At = s.now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, rule_id, alert_id, url, attempt, status_code, error,
			success, duration_ms, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		uid, rid, aid, d.URL, d.Attempt, d.StatusCode, batch.CleanText(d.Error), d.Success, d.DurationMS, d.At)
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("add webhook delivery: rule %q or alert %q: %w", d.RuleID, d.AlertID, store.ErrNotFound)
	}
	return wrap("add webhook delivery", err)
}

// ListWebhookDeliveries returns a rule's latest delivery attempts.
func (s *Store) ListWebhookDeliveries(ctx context.Context, ruleID string, limit int) ([]*store.WebhookDelivery, error) {
	rid, ok := batch.ParseUUID(ruleID)
	if !ok || limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, rule_id, alert_id, url, attempt, status_code, error, success, duration_ms, at
		FROM webhook_deliveries WHERE rule_id = $1 ORDER BY at DESC, attempt DESC, id LIMIT $2`, rid, limit)
	if err != nil {
		return nil, wrap("list webhook deliveries", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.WebhookDelivery, error) {
		var d store.WebhookDelivery
		err := r.Scan(&d.ID, &d.RuleID, &d.AlertID, &d.URL, &d.Attempt, &d.StatusCode, &d.Error, &d.Success, &d.DurationMS, &d.At)
		d.At = d.At.UTC()
		return &d, err
	})
	return ds, wrap("list webhook deliveries", err)
}

// CountEvents counts a project's events received in [q.From, q.To) that
// match q's level and tags, using the (project_id, received_at) index.
func (s *Store) CountEvents(ctx context.Context, q store.EventCount) (int64, error) {
	pid, ok := batch.ParseUUID(q.ProjectID)
	if !ok {
		return 0, nil
	}
	sql := `SELECT count(*) FROM events WHERE project_id = $1 AND received_at >= $2 AND received_at < $3`
	args := []any{pid, q.From, q.To}
	if q.Level != "" {
		args = append(args, q.Level)
		sql += fmt.Sprintf(" AND mesher_level_rank(level) >= mesher_level_rank($%d)", len(args))
	}
	if len(q.Tags) > 0 {
		tags, err := json.Marshal(q.Tags)
		if err != nil {
			return 0, fmt.Errorf("count events: tags: %w", err)
		}
		args = append(args, tags)
		sql += fmt.Sprintf(" AND tags @> $%d::jsonb", len(args))
	}
	var n int64
	err := s.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, wrap("count events", err)
}
