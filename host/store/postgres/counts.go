package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// Commit keeps the counts the dashboards read (migration 0003) in the
// transaction that stores the events: per issue, level and hour
// (issue_counts), per project, level and hour (event_counts) and per tag
// value and day (tag_counts). Each upsert takes its row locks sorted by
// key, in that order of tables, after the batch's issues are locked and
// as the last writes before COMMIT; DeleteIssue locks the same rows in the
// same order. So commits counting the same hour or tag value queue behind
// each other but cannot deadlock.

// countCTEs are the counting steps of commitOneSQL, over its fresh and
// iss. Each step reads the one before it in a condition that always holds
// (an uncorrelated subquery, run once before any row), which makes
// PostgreSQL run them in this order whatever order it finishes a
// statement's sub-statements in: the order every commit locks the counts
// in.
const countCTEs = `ic AS (
	INSERT INTO issue_counts AS c (issue_id, project_id, hour, level, n)
	SELECT * FROM (
		SELECT iss.id, f.p, date_trunc('hour', f.rcv, 'UTC'), f.l, count(*)
		FROM fresh f JOIN iss ON iss.project_id = f.p AND iss.fingerprint = f.f
		GROUP BY 1, 2, 3, 4
	) AS u (id, p, h, l, n)
	ORDER BY u.id, u.h, u.l COLLATE "C"
	ON CONFLICT (issue_id, hour, level) DO UPDATE SET n = c.n + excluded.n
	RETURNING 1
), ec AS (
	INSERT INTO event_counts AS c (project_id, hour, level, n)
	SELECT * FROM (
		SELECT p, date_trunc('hour', rcv, 'UTC'), l, count(*) FROM fresh GROUP BY 1, 2, 3
	) AS u (p, h, l, n)
	WHERE (SELECT count(*) FROM ic) >= 0
	ORDER BY u.p, u.h, u.l COLLATE "C"
	ON CONFLICT (project_id, hour, level) DO UPDATE SET n = c.n + excluded.n
	RETURNING 1
), tc AS (
	INSERT INTO tag_counts AS c (project_id, key, day, value, n)
	SELECT * FROM (
		SELECT f.p, left(t.key, ` + maxTag + `), date_trunc('day', f.rcv, 'UTC'), left(t.value, ` + maxTag + `), count(*)
		FROM fresh f, jsonb_each_text(NULLIF(f.tags, '')::jsonb) t
		GROUP BY 1, 2, 3, 4
	) AS u (p, k, d, v, n)
	WHERE (SELECT count(*) FROM ec) >= 0
	ORDER BY u.p, u.k COLLATE "C", u.d, u.v COLLATE "C"
	ON CONFLICT (project_id, key, day, value) DO UPDATE SET n = c.n + excluded.n
)`

// maxTag is store.MaxTagLength in SQL.
const maxTag = "200"

// queueCounts queues on b the upserts that add the new events of a large
// batch to the counts, and returns how many it queued. results holds each
// event's issue id.
func queueCounts(b *pgx.Batch, events []*store.Event, isNew func(int) bool, results []store.Committed) int {
	hc, tc := batch.Counts(events, isNew)
	queued := 0
	if len(hc) > 0 {
		type issueKey struct {
			project     [16]byte
			fingerprint string
		}
		issueOf := map[issueKey]int64{}
		for i, e := range events {
			if isNew(i) {
				p, _ := batch.ParseUUID(e.ProjectID)
				issueOf[issueKey{p, batch.CleanText(e.Fingerprint)}] = results[i].IssueID
			}
		}
		type projectHour struct {
			project [16]byte
			hour    time.Time
			level   string
		}
		perProject := map[projectHour]int64{}
		var ids, ns []int64
		var projects [][16]byte
		var hours []time.Time
		var levels []string
		for _, c := range hc {
			p, _ := batch.ParseUUID(c.ProjectID)
			id := issueOf[issueKey{p, c.Fingerprint}]
			ids, projects, hours, levels, ns = append(ids, id), append(projects, p), append(hours, c.Hour), append(levels, c.Level), append(ns, c.N)
			perProject[projectHour{p, c.Hour, c.Level}] += c.N
		}
		b.Queue(`INSERT INTO issue_counts AS c (issue_id, project_id, hour, level, n)
			SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bigint[]) AS u (id, p, h, l, n)
			ORDER BY u.id, u.h, u.l COLLATE "C"
			ON CONFLICT (issue_id, hour, level) DO UPDATE SET n = c.n + excluded.n`, ids, projects, hours, levels, ns)
		// New slices: the batch keeps the ones above until it is sent.
		var pProjects [][16]byte
		var pHours []time.Time
		var pLevels []string
		var pNs []int64
		for k, n := range perProject {
			pProjects, pHours, pLevels, pNs = append(pProjects, k.project), append(pHours, k.hour), append(pLevels, k.level), append(pNs, n)
		}
		b.Queue(`INSERT INTO event_counts AS c (project_id, hour, level, n)
			SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[]) AS u (p, h, l, n)
			ORDER BY u.p, u.h, u.l COLLATE "C"
			ON CONFLICT (project_id, hour, level) DO UPDATE SET n = c.n + excluded.n`, pProjects, pHours, pLevels, pNs)
		queued += 2
	}
	if len(tc) > 0 {
		projects, keys, days, values, ns := make([][16]byte, len(tc)), make([]string, len(tc)),
			make([]time.Time, len(tc)), make([]string, len(tc)), make([]int64, len(tc))
		for i, c := range tc {
			projects[i], _ = batch.ParseUUID(c.ProjectID)
			keys[i], days[i], values[i], ns[i] = c.Key, c.Day, c.Value, c.N
		}
		b.Queue(`INSERT INTO tag_counts AS c (project_id, key, day, value, n)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[]) AS u (p, k, d, v, n)
			ORDER BY u.p, u.k COLLATE "C", u.d, u.v COLLATE "C"
			ON CONFLICT (project_id, key, day, value) DO UPDATE SET n = c.n + excluded.n`, projects, keys, days, values, ns)
		queued++
	}
	return queued
}

// execBatch sends b and reads its n results.
func execBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch, n int) error {
	br := conn.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}
