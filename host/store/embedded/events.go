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

// lookupChunk is how many events Commit looks up in one statement, well
// under SQLite's limit of 32,766 parameters.
const lookupChunk = 500

// Commit stores a batch in one write transaction. Writes are serialized,
// so it reads what it needs (is the event stored? the issue's state?) and
// writes the result without locking rows: a few statements per event, all
// in process.
func (s *Store) Commit(ctx context.Context, events []*store.Event) ([]store.Committed, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap("commit", err)
	}
	now := s.now()
	ids := make([]string, len(events))
	projects := make([]string, len(events))
	for i, e := range events {
		if _, ok := batch.ParseUUID(e.ID); !ok {
			return nil, fmt.Errorf("commit: event %d: id %q is not a UUID", i, e.ID)
		}
		ids[i], projects[i] = canonical(e.ID), canonical(e.ProjectID)
		if e.ReceivedAt.IsZero() {
			e.ReceivedAt = now
		}
	}
	first := batch.FirstIndex(events)
	results := make([]store.Committed, len(events))
	isNew := make([]bool, len(events))
	var failure error
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Which events are new: look the batch's ids up a chunk at a time.
		var lookup []int // first occurrences
		for i := range events {
			if first[i] == i {
				lookup = append(lookup, i)
			}
		}
		stored := make(map[[2]string]int64)
		for len(lookup) > 0 {
			chunk := lookup[:min(len(lookup), lookupChunk)]
			lookup = lookup[len(chunk):]
			args := make([]any, 0, 2*len(chunk))
			for _, i := range chunk {
				args = append(args, projects[i], ids[i])
			}
			q := "SELECT project_id, id, issue_id FROM events WHERE (project_id, id) IN (VALUES " +
				strings.Repeat("(?, ?), ", len(chunk)-1) + "(?, ?))"
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("look up events: %w", err)
			}
			for rows.Next() {
				var k [2]string
				var issue int64
				if err := rows.Scan(&k[0], &k[1], &issue); err != nil {
					rows.Close()
					return fmt.Errorf("look up events: %w", err)
				}
				stored[k] = issue
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("look up events: %w", err)
			}
		}
		for i := range events {
			if first[i] != i {
				continue
			}
			if issue, ok := stored[[2]string{projects[i], ids[i]}]; ok {
				results[i] = store.Committed{Duplicate: true, IssueID: issue}
			} else {
				isNew[i] = true
			}
		}

		// Issues.
		groups := batch.Groups(events, func(i int) bool { return isNew[i] })
		checked := make(map[string]bool)
		for _, g := range groups {
			if checked[g.ProjectID] {
				continue
			}
			checked[g.ProjectID] = true
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM projects WHERE id = ?", canonical(g.ProjectID)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				failure = fmt.Errorf("commit: project %s: %w", g.ProjectID, store.ErrNotFound)
				return errRollback
			}
			if err != nil {
				return fmt.Errorf("look up project %s: %w", g.ProjectID, err)
			}
		}
		for _, g := range groups {
			id, created, regressed, err := upsertIssue(ctx, tx, g, now)
			if err != nil {
				return err
			}
			for _, i := range g.Events {
				results[i].IssueID = id
			}
			results[g.First].NewIssue, results[g.First].Regressed = created, regressed
		}

		// Events.
		insert, err := tx.PrepareContext(ctx, `INSERT INTO events (id, project_id, issue_id, fingerprint, title, level,
			message, environment, release, tags, timestamp, received_at, body, flags)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		index, err := tx.PrepareContext(ctx, "INSERT INTO events_fts (rowid, title, message, exception) VALUES (?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer index.Close()
		for i, e := range events {
			if !isNew[i] {
				continue
			}
			var tags, body, flags any
			if len(e.Tags) > 0 {
				b, err := json.Marshal(e.Tags)
				if err != nil {
					return fmt.Errorf("event %d: tags: %w", i, err)
				}
				tags = string(batch.CleanJSON(b))
			}
			if len(e.Body) > 0 {
				body = string(batch.CleanJSON(e.Body))
			}
			if len(e.Flags) > 0 {
				flags = string(batch.CleanJSON(e.Flags))
			}
			title, message := batch.CleanText(e.Title), batch.CleanText(e.Message)
			res, err := insert.ExecContext(ctx, ids[i], projects[i], results[i].IssueID,
				batch.CleanText(e.Fingerprint), title, batch.CleanText(e.Level),
				message, batch.CleanText(e.Environment), batch.CleanText(e.Release),
				tags, micros(e.Timestamp), micros(e.ReceivedAt), body, flags)
			if err != nil {
				return fmt.Errorf("insert event %d: %w", i, err)
			}
			seq, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("insert event %d: %w", i, err)
			}
			if _, err := index.ExecContext(ctx, seq, title, message, batch.CleanText(exceptionText(e.Body))); err != nil {
				return fmt.Errorf("index event %d: %w", i, err)
			}
		}
		return addCounts(ctx, tx, events, isNew, results)
	})
	if errors.Is(err, errRollback) {
		return nil, failure
	}
	if err != nil {
		return nil, wrap("commit", err)
	}
	for i, e := range events {
		if first[i] != i {
			results[i] = store.Committed{Duplicate: true, IssueID: results[first[i]].IssueID}
		}
		e.IssueID = results[i].IssueID
	}
	return results, nil
}

// upsertIssue creates the issue of g or adds g to it.
func upsertIssue(ctx context.Context, tx *sql.Tx, g *batch.Group, now time.Time) (id int64, created, regressed bool, err error) {
	project := canonical(g.ProjectID)
	var level, status string
	err = tx.QueryRowContext(ctx, "SELECT id, level, status FROM issues WHERE project_id = ? AND fingerprint = ?",
		project, g.Fingerprint).Scan(&id, &level, &status)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `INSERT INTO issues (project_id, fingerprint, title, level, status, count,
			first_seen, last_seen, created_at, updated_at) VALUES (?, ?, ?, ?, 'unresolved', ?, ?, ?, ?, ?) RETURNING id`,
			project, g.Fingerprint, g.Title, g.Level, g.Count,
			micros(g.FirstSeen), micros(g.LastSeen), micros(now), micros(now)).Scan(&id)
		if err != nil {
			return 0, false, false, fmt.Errorf("insert issue %q: %w", g.Fingerprint, err)
		}
		return id, true, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("look up issue %q: %w", g.Fingerprint, err)
	}
	regressed = status == store.StatusResolved
	_, err = tx.ExecContext(ctx, `UPDATE issues SET
			count = count + ?, first_seen = min(first_seen, ?), last_seen = max(last_seen, ?), level = ?,
			status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END,
			resolved_at = CASE WHEN status = 'resolved' THEN NULL ELSE resolved_at END,
			regressed_at = CASE WHEN status = 'resolved' THEN ? ELSE regressed_at END,
			updated_at = ?
		WHERE id = ?`, g.Count, micros(g.FirstSeen), micros(g.LastSeen), batch.MaxLevel(level, g.Level),
		micros(now), micros(now), id)
	if err != nil {
		return 0, false, false, fmt.Errorf("update issue %d: %w", id, err)
	}
	return id, false, regressed, nil
}

const eventColumns = `id, project_id, issue_id, fingerprint, title, level, message, environment, release, tags,
	timestamp, received_at, body, flags`

// Event returns one stored event of a project.
func (s *Store) Event(ctx context.Context, projectID, id string) (*store.Event, error) {
	op := fmt.Sprintf("event %s of project %s", id, projectID)
	var e store.Event
	var tags, body, flags sql.NullString
	var ts, received int64
	err := s.r.QueryRowContext(ctx, "SELECT "+eventColumns+" FROM events WHERE project_id = ? AND id = ?",
		canonical(projectID), canonical(id)).Scan(&e.ID, &e.ProjectID, &e.IssueID, &e.Fingerprint, &e.Title, &e.Level,
		&e.Message, &e.Environment, &e.Release, &tags, &ts, &received, &body, &flags)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	if tags.Valid {
		if err := json.Unmarshal([]byte(tags.String), &e.Tags); err != nil {
			return nil, fmt.Errorf("%s: tags: %w", op, err)
		}
	}
	if body.Valid {
		e.Body = json.RawMessage(body.String)
	}
	if flags.Valid {
		e.Flags = json.RawMessage(flags.String)
	}
	e.Timestamp, e.ReceivedAt = fromMicros(ts), fromMicros(received)
	return &e, nil
}

// Issue returns one issue of a project.
func (s *Store) Issue(ctx context.Context, projectID string, id int64) (*store.Issue, error) {
	op := fmt.Sprintf("issue %d of project %s", id, projectID)
	is, err := scanIssue(s.r.QueryRowContext(ctx, "SELECT "+issueColumns+" FROM issues WHERE project_id = ? AND id = ?",
		canonical(projectID), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return is, nil
}

// SetIssueStatus changes an issue's status. Resolving records when;
// anything else clears it.
func (s *Store) SetIssueStatus(ctx context.Context, projectID string, id int64, status string) error {
	op := fmt.Sprintf("set status of issue %d of project %s", id, projectID)
	switch status {
	case store.StatusUnresolved, store.StatusResolved, store.StatusArchived:
	default:
		return fmt.Errorf("%s: status %q is not one of unresolved, resolved, archived", op, status)
	}
	now := micros(s.now())
	res, err := s.w.ExecContext(ctx, `UPDATE issues SET status = ?1, updated_at = ?2,
		resolved_at = CASE WHEN ?1 = 'resolved' THEN coalesce(resolved_at, ?2) END
		WHERE project_id = ?3 AND id = ?4`, status, now, canonical(projectID), id)
	if err != nil {
		return wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}
