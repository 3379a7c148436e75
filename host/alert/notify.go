package alert

import (
	"encoding/json"
	"time"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
)

// note is an issue a committed event created or reopened.
type note struct {
	condition string // store.ConditionNewIssue or store.ConditionRegression
	event     *store.Event
	issueID   int64
}

// Committed queues the issues a committed batch created or reopened for
// the worker that matches them against event-driven rules. It never
// blocks: when the queue is full the issue is dropped and counted.
func (e *Engine) Committed(events []*store.Event, results []store.Committed) {
	for i, r := range results {
		var cond string
		switch {
		case r.Duplicate:
			continue
		case r.NewIssue:
			cond = store.ConditionNewIssue
		case r.Regressed:
			cond = store.ConditionRegression
		default:
			continue
		}
		select {
		case e.notes <- note{condition: cond, event: events[i], issueID: r.IssueID}:
		default:
			e.mu.Lock()
			e.dropped++
			n := e.dropped
			e.mu.Unlock()
			if n&(n-1) == 0 { // 1, 2, 4, 8, …: say so without flooding the log
				e.log.Warn("alert: queue full; new and reopened issues skipped", "skipped", n)
			}
		}
	}
}

// work matches queued issues against their projects' rules, a batch at a
// time, reading each project's rules once per batch.
func (e *Engine) work() {
	defer e.loops.Done()
	for {
		var batch []note
		stopping := false
		select {
		case <-e.stop:
			stopping = true
		case n := <-e.notes:
			batch = append(batch, n)
		}
	drain:
		for len(batch) < 1000 {
			select {
			case n := <-e.notes:
				batch = append(batch, n)
			default:
				break drain
			}
		}
		e.match(batch)
		if stopping && len(e.notes) == 0 {
			return
		}
	}
}

func (e *Engine) match(batch []note) {
	rules := map[string][]*store.AlertRule{}
	for _, n := range batch {
		pid := n.event.ProjectID
		rs, ok := rules[pid]
		if !ok {
			var err error
			rs, err = e.cfg.Store.ListAlertRules(e.ctx, pid)
			if err != nil {
				if e.ctx.Err() == nil {
					e.log.Error("alert: read rules", "project", pid, "err", err)
				}
				continue
			}
			rules[pid] = rs
		}
		for _, r := range rs {
			if !r.Enabled || r.Condition.Type != n.condition || !matches(r.Condition, n.event) {
				continue
			}
			if err := e.fire(e.ctx, r, issueAlert(r, n, e.cfg.Now())); err != nil && e.ctx.Err() == nil {
				e.log.Error("alert: fire", "rule", r.ID, "err", err)
			}
		}
	}
}

// matches reports whether an event passes a rule's level and tag filters.
func matches(c store.AlertCondition, ev *store.Event) bool {
	if c.Level != "" && levelRank(ev.Level) < levelRank(c.Level) {
		return false
	}
	for k, v := range c.Tags {
		if ev.Tags[k] != v {
			return false
		}
	}
	return true
}

// levelRank orders levels as the store does: debug 0 to fatal 4, unknown
// as error.
func levelRank(l string) int {
	switch l {
	case "debug":
		return 0
	case "info":
		return 1
	case "warning":
		return 2
	case "fatal":
		return 4
	}
	return 3
}

// issueAlert is the alert of an event-driven rule for a new or reopened
// issue.
func issueAlert(r *store.AlertRule, n note, now time.Time) *store.Alert {
	ev := n.event
	title := "New issue: " + ev.Title
	if n.condition == store.ConditionRegression {
		title = "Regression: " + ev.Title
	}
	details, _ := json.Marshal(map[string]any{
		"event_id": ev.ID, "fingerprint": ev.Fingerprint, "level": ev.Level, "environment": ev.Environment,
		"release": ev.Release, "tags": ev.Tags,
	})
	return &store.Alert{ID: ingest.NewUUID(), RuleID: r.ID, Title: title, IssueID: n.issueID, Details: details, FiredAt: now}
}
