package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

type eventKey struct{ project, id [16]byte }

// copyThreshold is the batch size from which new events are written with
// COPY, in the multi-step transaction below. A smaller batch — what
// single-event requests produce — is committed by commitOne, a single
// statement: one round trip and one plan instead of eight statements, which
// matters because the database's per-statement work, not the rows,
// dominates small commits.
const copyThreshold = 200

// Commit stores a batch in one transaction, in four steps, each one
// statement or one pipelined round trip for the whole batch:
//
//  1. Begin, and insert (project_id, event_id) of every distinct event into
//     event_ids, ON CONFLICT DO NOTHING RETURNING: what comes back is new,
//     the rest are resends.
//  2. Group the new events by issue and, in one pipeline: insert the
//     issues that do not exist yet (ON CONFLICT DO NOTHING RETURNING tells
//     which this batch created); lock every issue of the batch with SELECT
//     … FOR UPDATE, reading its id and status before the update; update
//     them all (count, first and last seen, level, status). A small batch
//     adds its events (INSERT … SELECT FROM unnest, joined to issues for
//     their ids) and the COMMIT to the same pipeline.
//  3. A large batch COPYs its new events into events,
//  4. adds them to the dashboards' counts (queueCounts) and commits, in
//     one round trip.
//
// Each step that takes row locks takes them in one order, sorted by key —
// event_ids by (project_id, event_id), issues by (project_id, fingerprint)
// — and a transaction only waits, in a step, for locks other transactions
// took in that same step (an issue's row exists, committed, before any
// transaction can lock it in step 2's SELECT): so nodes committing
// overlapping batches at the same time wait for each other but never
// deadlock.
func (s *Store) Commit(ctx context.Context, events []*store.Event) ([]store.Committed, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap("commit", err)
	}
	now := s.now()
	keys := make([]eventKey, len(events))
	for i, e := range events {
		var ok1, ok2 bool
		keys[i].project, ok1 = batch.ParseUUID(e.ProjectID)
		keys[i].id, ok2 = batch.ParseUUID(e.ID)
		if !ok1 {
			return nil, fmt.Errorf("commit: event %d: project %q: %w", i, e.ProjectID, store.ErrNotFound)
		}
		if !ok2 {
			return nil, fmt.Errorf("commit: event %d: id %q is not a UUID", i, e.ID)
		}
		if e.ReceivedAt.IsZero() {
			e.ReceivedAt = now
		}
	}
	first := batch.FirstIndex(events)
	results := make([]store.Committed, len(events))

	distinct := 0
	for i := range events {
		if first[i] == i {
			distinct++
		}
	}
	if distinct < copyThreshold {
		return s.commitOne(ctx, events, keys, first, results, now)
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap("commit: connect", err)
	}
	defer conn.Release()
	done := false
	defer func() {
		if !done {
			// Leave the connection outside any transaction; a broken one is
			// dropped by the pool.
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	// 1. Which events are new.
	isNew, err := insertEventIDs(ctx, conn.Conn(), events, keys, first)
	if err != nil {
		return nil, err
	}
	newEvent := func(i int) bool { return first[i] == i && isNew[keys[i]] }

	// 2. Issues, and for a small batch its events and the commit.
	groups := batch.Groups(events, newEvent)
	var dups []int // resends of events stored by an earlier batch
	fresh := 0
	for i := range events {
		switch {
		case first[i] == i && !isNew[keys[i]]:
			dups = append(dups, i)
		case newEvent(i):
			fresh++
		}
	}
	small := fresh < copyThreshold
	b := &pgx.Batch{}
	read := queueIssues(b, events, keys, groups, dups, results, now)
	if small {
		if fresh > 0 {
			args, err := eventArrays(events, keys, newEvent, fresh)
			if err != nil {
				return nil, err
			}
			b.Queue(insertEventsSQL, args...)
		}
		b.Queue("COMMIT")
	}
	br := conn.SendBatch(ctx, b)
	issueIDs, err := read(br)
	if err == nil && small {
		if fresh > 0 {
			_, err = br.Exec()
			err = wrap("commit: insert events", err)
		}
		if err == nil {
			_, err = br.Exec()
			err = wrap("commit", err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = wrap("commit: issues", cerr)
	}
	if err != nil {
		return nil, err
	}

	if !small {
		// 3. Events, by COPY.
		rows := make([][]any, 0, fresh)
		for i, e := range events {
			if !newEvent(i) {
				continue
			}
			tags, body, flags, err := eventJSON(i, e)
			if err != nil {
				return nil, err
			}
			rows = append(rows, []any{keys[i].id, keys[i].project, results[i].IssueID,
				batch.CleanText(e.Fingerprint), batch.CleanText(e.Title), batch.CleanText(e.Level),
				batch.CleanText(e.Message), batch.CleanText(e.Environment), batch.CleanText(e.Release),
				tags, e.Timestamp, e.ReceivedAt, body, flags})
		}
		if _, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(rows)); err != nil {
			return nil, wrap("commit: copy events", err)
		}
		// 4. The dashboards' counts, and the commit, in one round trip.
		b := &pgx.Batch{}
		counts := queueCounts(b, events, newEvent, results)
		b.Queue("COMMIT")
		if err := execBatch(ctx, conn.Conn(), b, counts+1); err != nil {
			return nil, wrap("commit", err)
		}
	}
	done = true
	for i, e := range events {
		if first[i] != i {
			results[i] = store.Committed{Duplicate: true, IssueID: results[first[i]].IssueID}
		} else if !newEvent(i) {
			results[i] = store.Committed{Duplicate: true, IssueID: issueIDs[keys[i]]}
		}
		e.IssueID = results[i].IssueID
	}
	return results, nil
}

// eventJSON returns an event's tags, body and flags cleaned for jsonb, nil
// where absent.
func eventJSON(i int, e *store.Event) (tags, body, flags []byte, err error) {
	if len(e.Tags) > 0 {
		b, err := json.Marshal(e.Tags)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("commit: event %d: tags: %w", i, err)
		}
		tags = batch.CleanJSON(b)
	}
	if len(e.Body) > 0 {
		body = batch.CleanJSON(e.Body)
	}
	if len(e.Flags) > 0 {
		flags = batch.CleanJSON(e.Flags)
	}
	return tags, body, flags, nil
}

// insertEventsSQL inserts the new events of a small batch, taking each
// event's issue id from the issues step 2 created or locked.
const insertEventsSQL = `INSERT INTO events (id, project_id, issue_id, fingerprint, title, level, message,
		environment, release, tags, "timestamp", received_at, body, flags)
	SELECT u.id, u.p, i.id, u.f, u.t, u.l, u.m, u.env, u.rel,
		NULLIF(u.tags, '')::jsonb, u.ts, u.rcv, NULLIF(u.body, '')::jsonb, NULLIF(u.flags, '')::jsonb
	FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[])
		AS u (id, p, f, t, l, m, env, rel, tags, ts, rcv, body, flags)
	JOIN issues i ON i.project_id = u.p AND i.fingerprint = u.f`

// eventArrays returns the arguments of insertEventsSQL.
func eventArrays(events []*store.Event, keys []eventKey, isNew func(int) bool, n int) ([]any, error) {
	var (
		ids, projects                             = make([][16]byte, 0, n), make([][16]byte, 0, n)
		fps, titles, levels, messages, envs, rels = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		tagsA, bodies, flagsA                     = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		ts, rcv                                   = make([]time.Time, 0, n), make([]time.Time, 0, n)
	)
	for i, e := range events {
		if !isNew(i) {
			continue
		}
		tags, body, flags, err := eventJSON(i, e)
		if err != nil {
			return nil, err
		}
		ids, projects = append(ids, keys[i].id), append(projects, keys[i].project)
		fps, titles = append(fps, batch.CleanText(e.Fingerprint)), append(titles, batch.CleanText(e.Title))
		levels, messages = append(levels, batch.CleanText(e.Level)), append(messages, batch.CleanText(e.Message))
		envs, rels = append(envs, batch.CleanText(e.Environment)), append(rels, batch.CleanText(e.Release))
		tagsA, bodies, flagsA = append(tagsA, string(tags)), append(bodies, string(body)), append(flagsA, string(flags))
		ts, rcv = append(ts, e.Timestamp), append(rcv, e.ReceivedAt)
	}
	return []any{ids, projects, fps, titles, levels, messages, envs, rels, tagsA, ts, rcv, bodies, flagsA}, nil
}

// insertEventIDs inserts the batch's distinct (project, id) pairs into
// event_ids, sorted, and returns those that were not there.
func insertEventIDs(ctx context.Context, conn *pgx.Conn, events []*store.Event, keys []eventKey, first []int) (map[eventKey]bool, error) {
	var projects, ids [][16]byte
	var received []time.Time
	for i, e := range events {
		if first[i] == i {
			projects = append(projects, keys[i].project)
			ids = append(ids, keys[i].id)
			received = append(received, e.ReceivedAt)
		}
	}
	// BEGIN travels in the same round trip.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`INSERT INTO event_ids (project_id, event_id, received_at)
		SELECT p, e, r FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS u (p, e, r) ORDER BY p, e
		ON CONFLICT DO NOTHING
		RETURNING project_id, event_id`, projects, ids, received)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, wrap("commit: begin", err)
	}
	isNew := make(map[eventKey]bool, len(ids))
	var k eventKey
	if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&k.project, &k.id}, func() error {
		isNew[k] = true
		return nil
	}); err != nil {
		return nil, wrap("commit: insert event ids", err)
	}
	if err := br.Close(); err != nil {
		return nil, wrap("commit: insert event ids", err)
	}
	return isNew, nil
}

// queueIssues queues on b the statements that create, lock and update the
// issues of groups, and the lookup of dups, earlier events the batch
// resends. The returned function reads their results from the batch, fills
// results for the groups' events, and returns the issue ids of dups.
func queueIssues(b *pgx.Batch, events []*store.Event, keys []eventKey, groups []*batch.Group,
	dups []int, results []store.Committed, now time.Time) func(pgx.BatchResults) (map[eventKey]int64, error) {
	n := len(groups)
	var (
		projects    = make([][16]byte, n)
		fps         = make([]string, n)
		titles      = make([]string, n)
		levels      = make([]string, n)
		counts      = make([]int64, n)
		firstSeen   = make([]time.Time, n)
		lastSeen    = make([]time.Time, n)
		projectSet  = make(map[[16]byte]bool)
		projectList [][16]byte
	)
	for j, g := range groups {
		projects[j] = keys[g.First].project
		fps[j], titles[j], levels[j] = g.Fingerprint, g.Title, g.Level
		counts[j], firstSeen[j], lastSeen[j] = g.Count, g.FirstSeen, g.LastSeen
		if !projectSet[projects[j]] {
			projectSet[projects[j]] = true
			projectList = append(projectList, projects[j])
		}
	}
	if n > 0 {
		// Unknown projects, for a clear error; the foreign key of issues
		// is what guarantees it.
		b.Queue(`SELECT p::text FROM unnest($1::uuid[]) AS p WHERE NOT EXISTS (SELECT 1 FROM projects WHERE id = p)`,
			projectList)
		b.Queue(`INSERT INTO issues (project_id, fingerprint, title, level, status, count, first_seen, last_seen, created_at, updated_at)
			SELECT p, f, t, l, 'unresolved', 0, fs, ls, $7, $7
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS u (p, f, t, l, fs, ls)
			ORDER BY p, f COLLATE "C"
			ON CONFLICT (project_id, fingerprint) DO NOTHING
			RETURNING project_id, fingerprint`, projects, fps, titles, levels, firstSeen, lastSeen, now)
		b.Queue(`SELECT i.id, i.project_id, i.fingerprint, i.status
			FROM issues i JOIN unnest($1::uuid[], $2::text[]) AS u (p, f) ON i.project_id = u.p AND i.fingerprint = u.f
			ORDER BY i.project_id, i.fingerprint COLLATE "C"
			FOR UPDATE OF i`, projects, fps)
		b.Queue(`UPDATE issues i SET
				count = i.count + u.n,
				first_seen = least(i.first_seen, u.fs),
				last_seen = greatest(i.last_seen, u.ls),
				level = CASE WHEN mesher_level_rank(u.l) > mesher_level_rank(i.level) THEN u.l ELSE i.level END,
				status = CASE WHEN i.status = 'resolved' THEN 'unresolved' ELSE i.status END,
				resolved_at = CASE WHEN i.status = 'resolved' THEN NULL ELSE i.resolved_at END,
				regressed_at = CASE WHEN i.status = 'resolved' THEN $7 ELSE i.regressed_at END,
				updated_at = $7
			FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS u (p, f, n, l, fs, ls)
			WHERE i.project_id = u.p AND i.fingerprint = u.f`, projects, fps, counts, levels, firstSeen, lastSeen, now)
	}
	if len(dups) > 0 {
		dp, di := make([][16]byte, len(dups)), make([][16]byte, len(dups))
		for j, i := range dups {
			dp[j], di[j] = keys[i].project, keys[i].id
		}
		b.Queue(`SELECT d.project_id, d.event_id, e.issue_id
			FROM unnest($1::uuid[], $2::uuid[]) AS u (p, e)
			JOIN event_ids d ON d.project_id = u.p AND d.event_id = u.e
			JOIN events e ON e.project_id = d.project_id AND e.received_at = d.received_at AND e.id = d.event_id`, dp, di)
	}
	return func(br pgx.BatchResults) (map[eventKey]int64, error) {
		return readIssues(br, keys, groups, dups, results, projects, fps, n)
	}
}

func readIssues(br pgx.BatchResults, keys []eventKey, groups []*batch.Group, dups []int,
	results []store.Committed, projects [][16]byte, fps []string, n int) (map[eventKey]int64, error) {
	type issueKey struct {
		project     [16]byte
		fingerprint string
	}
	created := make(map[issueKey]bool)
	ids := make(map[issueKey]int64, n)
	regressed := make(map[issueKey]bool)
	if n > 0 {
		unknown, err := pgx.CollectRows(mustRows(br.Query()), pgx.RowTo[string])
		if err != nil {
			return nil, wrap("commit: check projects", err)
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("commit: project %s: %w", strings.Join(unknown, ", "), store.ErrNotFound)
		}
		var k issueKey
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&k.project, &k.fingerprint}, func() error {
			created[k] = true
			return nil
		}); err != nil {
			if pgCode(err) == codeForeignKeyViolation {
				return nil, fmt.Errorf("commit: %w: %w", store.ErrNotFound, err)
			}
			return nil, wrap("commit: insert issues", err)
		}
		var id int64
		var status string
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&id, &k.project, &k.fingerprint, &status}, func() error {
			ids[k] = id
			regressed[k] = status == store.StatusResolved
			return nil
		}); err != nil {
			return nil, wrap("commit: lock issues", err)
		}
		if _, err := br.Exec(); err != nil {
			return nil, wrap("commit: update issues", err)
		}
	}
	var dupIssues map[eventKey]int64
	if len(dups) > 0 {
		dupIssues = make(map[eventKey]int64, len(dups))
		var k eventKey
		var id int64
		if _, err := pgx.ForEachRow(mustRows(br.Query()), []any{&k.project, &k.id, &id}, func() error {
			dupIssues[k] = id
			return nil
		}); err != nil {
			return nil, wrap("commit: look up resent events", err)
		}
	}
	for j, g := range groups {
		k := issueKey{projects[j], fps[j]}
		id, ok := ids[k]
		if !ok { // cannot happen: the row was inserted or found, and locked
			return nil, fmt.Errorf("commit: issue of project %s fingerprint %q vanished", g.ProjectID, g.Fingerprint)
		}
		for _, i := range g.Events {
			results[i].IssueID = id
		}
		results[g.First].NewIssue = created[k]
		results[g.First].Regressed = regressed[k] && !created[k]
	}
	return dupIssues, nil
}

// mustRows lets pgx.CollectRows and pgx.ForEachRow report a batch query's
// error, which BatchResults.Query returns in its rows.
func mustRows(rows pgx.Rows, err error) pgx.Rows { return rows }

const eventSelect = `SELECT e.id, e.project_id, e.issue_id, e.fingerprint, e.title, e.level, e.message, e.environment,
	e.release, e.tags, e."timestamp", e.received_at, e.body, e.flags`

// Event returns one stored event of a project.
func (s *Store) Event(ctx context.Context, projectID, id string) (*store.Event, error) {
	op := fmt.Sprintf("event %s of project %s", id, projectID)
	pid, ok1 := batch.ParseUUID(projectID)
	eid, ok2 := batch.ParseUUID(id)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	// received_at from event_ids picks the one partition to look in.
	var received time.Time
	err := s.pool.QueryRow(ctx, "SELECT received_at FROM event_ids WHERE project_id = $1 AND event_id = $2", pid, eid).Scan(&received)
	if isNoRows(err) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	var e store.Event
	var tags, body, flags []byte
	err = s.pool.QueryRow(ctx, eventSelect+` FROM events e
		WHERE e.project_id = $1 AND e.received_at = $2 AND e.id = $3`, pid, received, eid).Scan(
		&e.ID, &e.ProjectID, &e.IssueID, &e.Fingerprint, &e.Title, &e.Level, &e.Message, &e.Environment,
		&e.Release, &tags, &e.Timestamp, &e.ReceivedAt, &body, &flags)
	if isNoRows(err) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(tags) > 0 {
		if err := json.Unmarshal(tags, &e.Tags); err != nil {
			return nil, fmt.Errorf("%s: tags: %w", op, err)
		}
	}
	if len(body) > 0 {
		e.Body = body
	}
	if len(flags) > 0 {
		e.Flags = flags
	}
	e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
	return &e, nil
}

// Issue returns one issue of a project.
func (s *Store) Issue(ctx context.Context, projectID string, id int64) (*store.Issue, error) {
	op := fmt.Sprintf("issue %d of project %s", id, projectID)
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	is, err := scanIssue(s.pool.QueryRow(ctx, "SELECT "+issueColumns+" FROM issues WHERE project_id = $1 AND id = $2", pid, id))
	if isNoRows(err) {
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
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE issues SET status = $3, updated_at = $4,
		resolved_at = CASE WHEN $3 = 'resolved' THEN coalesce(resolved_at, $4) END
		WHERE project_id = $1 AND id = $2`, pid, id, status, s.now())
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// commitOneSQL stores a small batch in one statement (so in one implicit
// transaction): it inserts the event ids, keeps the events whose id was
// new, upserts their issues in (project, fingerprint) order — the order
// every commit locks issues in, so concurrent commits never deadlock — and
// inserts the events with their issue ids, and adds them to the
// dashboards' counts (countCTEs). It returns, for each new event, its
// position in the batch, its issue, and whether this batch created or
// reopened the issue. An issue's regressed_at is set to $15 exactly when a
// resolved issue is reopened, which is how the statement tells a
// regression apart.
const commitOneSQL = `WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::int[])
		AS u (id, p, f, t, l, m, env, rel, tags, ts, rcv, body, flags, ord)
), ids AS (
	INSERT INTO event_ids (project_id, event_id, received_at)
	SELECT p, id, rcv FROM input ORDER BY p, id
	ON CONFLICT DO NOTHING
	RETURNING project_id, event_id
), fresh AS (
	SELECT input.* FROM input JOIN ids ON ids.project_id = input.p AND ids.event_id = input.id
), groups AS (
	SELECT p, f, count(*) AS n, min(ts) AS fs, max(ts) AS ls,
		(array_agg(t ORDER BY ord))[1] AS t,
		(array_agg(l ORDER BY mesher_level_rank(l) DESC, ord))[1] AS l
	FROM fresh GROUP BY p, f
), iss AS (
	INSERT INTO issues AS i (project_id, fingerprint, title, level, status, count, first_seen, last_seen, created_at, updated_at)
	SELECT p, f, t, l, 'unresolved', n, fs, ls, $15, $15 FROM groups ORDER BY p, f COLLATE "C"
	ON CONFLICT (project_id, fingerprint) DO UPDATE SET
		count = i.count + excluded.count,
		first_seen = least(i.first_seen, excluded.first_seen),
		last_seen = greatest(i.last_seen, excluded.last_seen),
		level = CASE WHEN mesher_level_rank(excluded.level) > mesher_level_rank(i.level) THEN excluded.level ELSE i.level END,
		status = CASE WHEN i.status = 'resolved' THEN 'unresolved' ELSE i.status END,
		resolved_at = CASE WHEN i.status = 'resolved' THEN NULL ELSE i.resolved_at END,
		regressed_at = CASE WHEN i.status = 'resolved' THEN $15 ELSE i.regressed_at END,
		updated_at = $15
	RETURNING i.id, i.project_id, i.fingerprint, (i.xmax = 0) AS created, (i.xmax <> 0 AND coalesce(i.regressed_at = $15, false)) AS regressed
), ev AS (
	INSERT INTO events (id, project_id, issue_id, fingerprint, title, level, message, environment, release, tags,
		"timestamp", received_at, body, flags)
	SELECT f.id, f.p, iss.id, f.f, f.t, f.l, f.m, f.env, f.rel, NULLIF(f.tags, '')::jsonb, f.ts, f.rcv,
		NULLIF(f.body, '')::jsonb, NULLIF(f.flags, '')::jsonb
	FROM fresh f JOIN iss ON iss.project_id = f.p AND iss.fingerprint = f.f
), ` + countCTEs + `
SELECT f.ord, iss.id, iss.created, iss.regressed FROM fresh f JOIN iss ON iss.project_id = f.p AND iss.fingerprint = f.f`

// commitOne commits a small batch with commitOneSQL and looks up the issues
// of resent events, if any.
func (s *Store) commitOne(ctx context.Context, events []*store.Event, keys []eventKey, first []int,
	results []store.Committed, now time.Time) ([]store.Committed, error) {
	var ords []int32
	args, err := eventArrays(events, keys, func(i int) bool {
		if first[i] == i {
			ords = append(ords, int32(i))
			return true
		}
		return false
	}, len(events))
	if err != nil {
		return nil, err
	}
	args = append(args, ords, now)
	rows, err := s.pool.Query(ctx, commitOneSQL, args...)
	if err != nil {
		return nil, wrap("commit", err)
	}
	isNew := make([]bool, len(events))
	issueFirst := map[int64]int{} // issue id -> first new event of the batch in it
	var ord int32
	var id int64
	var created, regressed bool
	_, err = pgx.ForEachRow(rows, []any{&ord, &id, &created, &regressed}, func() error {
		i := int(ord)
		isNew[i] = true
		results[i].IssueID = id
		if f, ok := issueFirst[id]; !ok || i < f {
			if ok {
				results[f].NewIssue, results[f].Regressed = false, false
			}
			issueFirst[id] = i
			results[i].NewIssue, results[i].Regressed = created, regressed
		}
		return nil
	})
	if err != nil {
		if pgCode(err) == codeForeignKeyViolation {
			return nil, fmt.Errorf("commit: unknown project: %w: %w", store.ErrNotFound, err)
		}
		return nil, wrap("commit", err)
	}
	var dups []int
	for i := range events {
		if first[i] == i && !isNew[i] {
			dups = append(dups, i)
		}
	}
	dupIssues := map[eventKey]int64{}
	if len(dups) > 0 {
		dp, di := make([][16]byte, len(dups)), make([][16]byte, len(dups))
		for j, i := range dups {
			dp[j], di[j] = keys[i].project, keys[i].id
		}
		rows, err := s.pool.Query(ctx, `SELECT d.project_id, d.event_id, e.issue_id
			FROM unnest($1::uuid[], $2::uuid[]) AS u (p, e)
			JOIN event_ids d ON d.project_id = u.p AND d.event_id = u.e
			JOIN events e ON e.project_id = d.project_id AND e.received_at = d.received_at AND e.id = d.event_id`, dp, di)
		if err != nil {
			return nil, wrap("commit: look up resent events", err)
		}
		var k eventKey
		if _, err := pgx.ForEachRow(rows, []any{&k.project, &k.id, &id}, func() error {
			dupIssues[k] = id
			return nil
		}); err != nil {
			return nil, wrap("commit: look up resent events", err)
		}
	}
	for i, e := range events {
		switch {
		case first[i] != i:
			results[i] = store.Committed{Duplicate: true, IssueID: results[first[i]].IssueID}
		case !isNew[i]:
			results[i] = store.Committed{Duplicate: true, IssueID: dupIssues[keys[i]]}
		}
		e.IssueID = results[i].IssueID
	}
	return results, nil
}
