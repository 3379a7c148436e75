package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// SearchEvents returns the page q selects. Text goes through ftsMatch to
// the events_fts index; tags are matched with json_each; the range and
// the order use events_project_received_idx.
func (s *Store) SearchEvents(ctx context.Context, q store.EventQuery) ([]*store.Event, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	where := []string{"e.project_id = ?"}
	args := []any{canonical(q.ProjectID)}
	if q.IssueID != 0 {
		where = append(where, "e.issue_id = ?")
		args = append(args, q.IssueID)
	}
	if !q.From.IsZero() {
		where = append(where, "e.received_at >= ?")
		args = append(args, micros(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "e.received_at < ?")
		args = append(args, micros(q.To))
	}
	if q.Text != "" {
		cond, targs := ftsMatch(batch.CleanText(q.Text))
		where = append(where, cond)
		args = append(args, targs...)
	}
	for _, t := range q.Tags {
		where = append(where, "EXISTS (SELECT 1 FROM json_each(e.tags) j WHERE j.key = ? AND j.value = ?)")
		args = append(args, batch.CleanText(t.Key), batch.CleanText(t.Value))
	}
	if c := q.Before; c != nil {
		r := micros(c.ReceivedAt)
		where = append(where, "e.received_at <= ? AND (e.received_at < ? OR e.id < ?)")
		args = append(args, r, r, canonical(c.ID))
	}
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, `SELECT e.id, e.project_id, e.issue_id, e.fingerprint, e.title, e.level, e.message,
		e.environment, e.release, e.tags, e.timestamp, e.received_at FROM events e WHERE `+strings.Join(where, " AND ")+
		" ORDER BY e.received_at DESC, e.id DESC LIMIT ?", args...)
	if err != nil {
		return nil, wrap("search events", err)
	}
	events, err := collect(rows, func(r interface{ Scan(...any) error }) (*store.Event, error) {
		var e store.Event
		var tags *string
		var ts, received int64
		if err := r.Scan(&e.ID, &e.ProjectID, &e.IssueID, &e.Fingerprint, &e.Title, &e.Level, &e.Message,
			&e.Environment, &e.Release, &tags, &ts, &received); err != nil {
			return nil, err
		}
		if tags != nil {
			if err := json.Unmarshal([]byte(*tags), &e.Tags); err != nil {
				return nil, fmt.Errorf("event %s: tags: %w", e.ID, err)
			}
		}
		e.Timestamp, e.ReceivedAt = fromMicros(ts), fromMicros(received)
		return &e, nil
	})
	return events, wrap("search events", err)
}

// EventNeighbors returns the events of e's issue just before and after it.
func (s *Store) EventNeighbors(ctx context.Context, e *store.Event) (prev, next string, err error) {
	r := micros(e.ReceivedAt)
	var p, n *string
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT id FROM events WHERE project_id = ?1 AND issue_id = ?2 AND received_at <= ?3 AND (received_at < ?3 OR id < ?4)
			ORDER BY received_at DESC, id DESC LIMIT 1),
		(SELECT id FROM events WHERE project_id = ?1 AND issue_id = ?2 AND received_at >= ?3 AND (received_at > ?3 OR id > ?4)
			ORDER BY received_at, id LIMIT 1)`, canonical(e.ProjectID), e.IssueID, r, canonical(e.ID)).Scan(&p, &n)
	if err != nil {
		return "", "", wrap("neighbors of event "+e.ID, err)
	}
	if p != nil {
		prev = *p
	}
	if n != nil {
		next = *n
	}
	return prev, next, nil
}

// ftsMatch translates a query written for PostgreSQL's
// websearch_to_tsquery into a condition on e.seq over events_fts, with its
// arguments: words are ANDed, "a quoted phrase" matches its words in
// order, -word excludes, and OR between terms makes alternatives (AND
// binding tighter). A word is a run of letters and digits; a term of
// several (bob@example.com) is a phrase of them. A query without any word
// matches nothing, as in PostgreSQL.
func ftsMatch(text string) (string, []any) {
	type term struct {
		phrase string
		not    bool
	}
	groups := [][]term{nil}
	rs := []rune(text)
	for i := 0; i < len(rs); {
		if unicode.IsSpace(rs[i]) {
			i++
			continue
		}
		not := false
		if rs[i] == '-' && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) {
			not = true
			i++
		}
		var raw string
		if rs[i] == '"' {
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				j++
			}
			raw = string(rs[i+1 : min(j, len(rs))])
			i = j + 1
		} else {
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) {
				j++
			}
			raw = string(rs[i:j])
			i = j
			if !not && strings.EqualFold(raw, "or") {
				if len(groups[len(groups)-1]) > 0 {
					groups = append(groups, nil)
				}
				continue
			}
		}
		words := strings.FieldsFunc(raw, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if len(words) == 0 {
			continue
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], term{`"` + strings.Join(words, " ") + `"`, not})
	}
	const in = "e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)"
	var conds []string
	var args []any
	for _, g := range groups {
		var pos, neg []string
		for _, t := range g {
			if t.not {
				neg = append(neg, t.phrase)
			} else {
				pos = append(pos, t.phrase)
			}
		}
		switch {
		case len(pos) > 0 && len(neg) > 0:
			conds = append(conds, in)
			args = append(args, "("+strings.Join(pos, " AND ")+") NOT ("+strings.Join(neg, " OR ")+")")
		case len(pos) > 0:
			conds = append(conds, in)
			args = append(args, strings.Join(pos, " AND "))
		case len(neg) > 0:
			conds = append(conds, "NOT "+in)
			args = append(args, strings.Join(neg, " OR "))
		}
	}
	if len(conds) == 0 {
		return "0", nil
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}
