package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// SearchEvents returns the page q selects. Text is matched against the
// generated search column (GIN-indexed) with websearch_to_tsquery in the
// 'simple' configuration, the one the column is built with; tags by
// containment (GIN-indexed); the range and the order by the (project_id,
// received_at, id) index, which a time range also prunes partitions with.
func (s *Store) SearchEvents(ctx context.Context, q store.EventQuery) ([]*store.Event, error) {
	pid, ok := batch.ParseUUID(q.ProjectID)
	if !ok || q.Limit <= 0 {
		return nil, nil
	}
	var args sqlArgs
	where := []string{"e.project_id = " + args.add(pid)}
	if q.IssueID != 0 {
		where = append(where, "e.issue_id = "+args.add(q.IssueID))
	}
	if !q.From.IsZero() {
		where = append(where, "e.received_at >= "+args.add(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "e.received_at < "+args.add(q.To))
	}
	if q.Text != "" {
		where = append(where, "e.search @@ websearch_to_tsquery('simple', "+args.add(batch.CleanText(q.Text))+")")
	}
	for _, t := range q.Tags {
		tag, err := json.Marshal(map[string]string{batch.CleanText(t.Key): batch.CleanText(t.Value)})
		if err != nil {
			return nil, fmt.Errorf("search events: tag %q: %w", t.Key, err)
		}
		where = append(where, "e.tags @> "+args.add(string(tag))+"::jsonb")
	}
	if c := q.Before; c != nil {
		cid, ok := batch.ParseUUID(c.ID)
		if !ok {
			return nil, fmt.Errorf("search events: cursor id %q is not a UUID", c.ID)
		}
		r, id := args.add(c.ReceivedAt), args.add(cid)
		where = append(where, fmt.Sprintf("e.received_at <= %s AND (e.received_at < %s OR e.id < %s)", r, r, id))
	}
	sql := `SELECT e.id, e.project_id, e.issue_id, e.fingerprint, e.title, e.level, e.message, e.environment,
		e.release, e.tags, e."timestamp", e.received_at FROM events e WHERE ` + strings.Join(where, " AND ") +
		" ORDER BY e.received_at DESC, e.id DESC LIMIT " + args.add(q.Limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap("search events", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Event, error) {
		var e store.Event
		var tags []byte
		if err := r.Scan(&e.ID, &e.ProjectID, &e.IssueID, &e.Fingerprint, &e.Title, &e.Level, &e.Message,
			&e.Environment, &e.Release, &tags, &e.Timestamp, &e.ReceivedAt); err != nil {
			return nil, err
		}
		if len(tags) > 0 {
			if err := json.Unmarshal(tags, &e.Tags); err != nil {
				return nil, fmt.Errorf("event %s: tags: %w", e.ID, err)
			}
		}
		e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
		return &e, nil
	})
	return events, wrap("search events", err)
}

// EventNeighbors returns the events of e's issue just before and after it.
// Each bound on received_at prunes the partitions on the other side.
func (s *Store) EventNeighbors(ctx context.Context, e *store.Event) (prev, next string, err error) {
	op := fmt.Sprintf("neighbors of event %s", e.ID)
	pid, ok1 := batch.ParseUUID(e.ProjectID)
	eid, ok2 := batch.ParseUUID(e.ID)
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	var p, n *string
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT id::text FROM events WHERE project_id = $1 AND issue_id = $2
			AND received_at <= $3 AND (received_at < $3 OR id < $4)
			ORDER BY received_at DESC, id DESC LIMIT 1),
		(SELECT id::text FROM events WHERE project_id = $1 AND issue_id = $2
			AND received_at >= $3 AND (received_at > $3 OR id > $4)
			ORDER BY received_at, id LIMIT 1)`, pid, e.IssueID, e.ReceivedAt, eid).Scan(&p, &n)
	if err != nil {
		return "", "", wrap(op, err)
	}
	if p != nil {
		prev = *p
	}
	if n != nil {
		next = *n
	}
	return prev, next, nil
}
