package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// BenchmarkDashboards measures the dashboard queries, an issue's timeline
// and two searches on a project with a million events (MESHER_BENCH_EVENTS
// overrides the number) received over the last seven days: 500 issues of
// Zipf-distributed sizes, realistic levels, tags (one with 20,000 user
// values) and ~800-byte bodies with an exception and a stack trace. Each
// sub-benchmark reports the p50 and p99 of its query in milliseconds;
// run it with a fixed count, e.g. -benchtime=300x, for 300 samples each.
//
// Loading bypasses Commit for speed: each day's rows are COPYed into a
// table that is then attached as that day's partition (building its
// indexes once), and the counts the dashboards read are built with the
// backfill of migration 0003 — what Commit would have counted.
// It takes a minute or two, once per run of the benchmark function.
func BenchmarkDashboards(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("MESHER_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("MESHER_BENCH_EVENTS=%q: want a number ≥ 1000", v)
		}
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: pgtest.URL(b), PartitionInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	d, err := loadDashboardData(ctx, s, n, time.Now().UTC())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events, %d issues in %v", n, len(d.issues), time.Since(start).Round(time.Second))

	day, week := d.now.Add(-24*time.Hour), d.now.Add(-7*24*time.Hour)
	hourOf := func(t time.Time) time.Time { return t.Truncate(time.Hour) }
	ceilHour := func(t time.Time) time.Time { return t.Truncate(time.Hour).Add(time.Hour) }
	ceilDay := func(t time.Time) time.Time { return t.Truncate(24 * time.Hour).Add(24 * time.Hour) }
	top := d.issues[0] // the biggest issue
	queries := []struct {
		name string
		run  func() error
	}{
		{"volume/hour-24h", func() error {
			_, err := s.EventVolume(ctx, d.project, 0, hourOf(day), ceilHour(d.now), store.Hour)
			return err
		}},
		{"volume/day-7d", func() error {
			_, err := s.EventVolume(ctx, d.project, 0, week.Truncate(24*time.Hour), ceilDay(d.now), store.Day)
			return err
		}},
		{"levels/24h", func() error {
			_, err := s.LevelCounts(ctx, d.project, hourOf(day), ceilHour(d.now))
			return err
		}},
		{"levels/7d", func() error {
			_, err := s.LevelCounts(ctx, d.project, hourOf(week), ceilHour(d.now))
			return err
		}},
		{"top-issues/24h", func() error {
			_, err := s.TopIssues(ctx, d.project, hourOf(day), ceilHour(d.now), 10)
			return err
		}},
		{"top-issues/7d", func() error {
			_, err := s.TopIssues(ctx, d.project, hourOf(week), ceilHour(d.now), 10)
			return err
		}},
		{"tags/browser-7d", func() error {
			_, err := s.TopTagValues(ctx, d.project, "browser", week.Truncate(24*time.Hour), ceilDay(d.now), 10)
			return err
		}},
		{"tags/user-7d", func() error { // 20,000 values
			_, err := s.TopTagValues(ctx, d.project, "user", week.Truncate(24*time.Hour), ceilDay(d.now), 10)
			return err
		}},
		{"health", func() error {
			_, err := s.ProjectHealth(ctx, d.project, d.now)
			return err
		}},
		{"timeline/top-issue-hour-7d", func() error {
			_, err := s.EventVolume(ctx, d.project, top, hourOf(week), ceilHour(d.now), store.Hour)
			return err
		}},
		{"search/text-24h", func() error {
			_, err := s.SearchEvents(ctx, store.EventQuery{ProjectID: d.project, Text: "checkout timeout", From: day, To: d.now, Limit: 26})
			return err
		}},
		{"search/tag-24h", func() error {
			_, err := s.SearchEvents(ctx, store.EventQuery{ProjectID: d.project, Tags: []store.TagFilter{{Key: "browser", Value: "Safari 17"}},
				From: day, To: d.now, Limit: 26})
			return err
		}},
	}
	b.ResetTimer()
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			if err := q.run(); err != nil { // warm the plan cache and the buffers
				b.Fatal(err)
			}
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(samples)
			pct := func(p float64) float64 {
				return float64(samples[int(p*float64(len(samples)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

// dashboardData is what loadDashboardData loaded.
type dashboardData struct {
	project string
	issues  []int64 // largest first
	now     time.Time
}

// loadDashboardData loads n events of one project received in the seven
// days up to now.
func loadDashboardData(ctx context.Context, s *Store, n int, now time.Time) (*dashboardData, error) {
	const nIssues = 500
	d := &dashboardData{project: "0b9c4a52-1f0e-4d6a-9a51-6a1b2c3d4e5f", now: now}
	if err := s.CreateProject(ctx, &store.Project{ID: d.project, Slug: "bench", Name: "Bench"}); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))

	// Issues: fingerprints, titles, a level and a status each; created
	// over the week, a few today.
	type issue struct {
		fp, title, errType, level, status string
		created                           time.Time
	}
	issues := make([]issue, nIssues)
	levels := []string{"error", "error", "error", "error", "error", "error", "error", "warning", "warning", "fatal", "info"}
	statuses := []string{"unresolved", "unresolved", "unresolved", "unresolved", "resolved", "resolved", "archived"}
	types := []string{"TypeError", "ReferenceError", "TimeoutError", "ConnectionError", "KeyError", "ValueError"}
	areas := []string{"checkout", "cart", "search", "login", "payment", "profile", "inventory", "shipping"}
	for i := range issues {
		typ, area := types[i%len(types)], areas[(i/len(types))%len(areas)]
		issues[i] = issue{
			fp:      fmt.Sprintf("%064x", i+1),
			title:   fmt.Sprintf("%s: %s %s failed (code %d)", typ, area, []string{"timeout", "request", "render", "lookup"}[i%4], i),
			errType: typ,
			level:   levels[rng.IntN(len(levels))],
			status:  statuses[rng.IntN(len(statuses))],
			created: now.Add(-time.Duration(rng.Int64N(int64(7 * 24 * time.Hour)))),
		}
	}
	var fps, titles, lvls, sts []string
	var created []time.Time
	for _, is := range issues {
		fps, titles, lvls, sts = append(fps, is.fp), append(titles, is.title), append(lvls, is.level), append(sts, is.status)
		created = append(created, is.created)
	}
	rows, err := s.pool.Query(ctx, `INSERT INTO issues (project_id, fingerprint, title, level, status, count, first_seen, last_seen, created_at, updated_at)
		SELECT $1, f, t, l, st, 0, c, c, c, c FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS u (f, t, l, st, c)
		RETURNING id, fingerprint`, d.project, fps, titles, lvls, sts, created)
	if err != nil {
		return nil, fmt.Errorf("insert issues: %w", err)
	}
	ids := map[string]int64{}
	var id int64
	var fp string
	if _, err := pgx.ForEachRow(rows, []any{&id, &fp}, func() error { ids[fp] = id; return nil }); err != nil {
		return nil, fmt.Errorf("insert issues: %w", err)
	}
	for _, is := range issues {
		d.issues = append(d.issues, ids[is.fp])
	}

	// Events per day: the week's events spread over its hours, fewer at
	// night.
	first := now.Add(-7 * 24 * time.Hour)
	weights := make([]float64, 0, 7*24+1)
	var total float64
	for h := first.Truncate(time.Hour); h.Before(now); h = h.Add(time.Hour) {
		w := 0.4 + 0.6*float64(min(h.Hour(), 23-h.Hour()))/11 // peaks at midday
		weights = append(weights, w)
		total += w
	}
	type hourPlan struct {
		start time.Time
		count int
	}
	byDay := map[time.Time][]hourPlan{}
	left := n
	for i, w := range weights {
		h := first.Truncate(time.Hour).Add(time.Duration(i) * time.Hour)
		c := int(float64(n) * w / total)
		if i == len(weights)-1 {
			c = left
		}
		left -= c
		day := h.Truncate(24 * time.Hour)
		byDay[day] = append(byDay[day], hourPlan{h, c})
	}
	var days []time.Time
	for day := range byDay {
		days = append(days, day)
	}
	slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })

	browsers := []string{"Chrome 126", "Chrome 125", "Safari 17", "Firefox 127", "Edge 126", "Samsung Internet 25", "Opera 110", "Chrome Mobile 126"}
	oses := []string{"Windows 11", "macOS 14", "iOS 17", "Android 14", "Linux"}
	releases := []string{"web@2.14.1", "web@2.14.0", "web@2.13.9", "web@2.13.8", "web@2.12.0", "web@2.11.3"}
	envs := []string{"production", "production", "production", "staging", "development"}
	load := func(day time.Time, plan []hourPlan, seed uint64) error {
		name := PartitionName(day)
		r := rand.New(rand.NewPCG(seed, 7))
		z := rand.NewZipf(r, 1.1, 4, nIssues-1)
		rowsLeft := plan
		var inHour int
		var t0 time.Time
		var step time.Duration
		var buf []byte
		next := func() bool {
			for inHour == 0 {
				if len(rowsLeft) == 0 {
					return false
				}
				t0, inHour = rowsLeft[0].start, rowsLeft[0].count
				if inHour > 0 {
					step = time.Hour / time.Duration(inHour)
				}
				rowsLeft = rowsLeft[1:]
			}
			inHour--
			t0 = t0.Add(step)
			return true
		}
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if !next() {
				return nil, nil
			}
			i := int(z.Uint64())
			is := issues[i]
			level := is.level
			if r.IntN(10) == 0 {
				level = levels[r.IntN(len(levels))]
			}
			area := areas[i/len(types)%len(areas)]
			msg := fmt.Sprintf("%s %s timeout after %dms for order %d", area, is.errType, 100+r.IntN(5000), r.IntN(1_000_000))
			tags := map[string]string{
				"browser": browsers[r.IntN(len(browsers))], "os": oses[r.IntN(len(oses))],
				"release": releases[r.IntN(len(releases))], "environment": envs[r.IntN(len(envs))],
				"url": fmt.Sprintf("/%s/step-%d", area, r.IntN(12)), "user": strconv.Itoa(r.IntN(20_000)),
				"server": fmt.Sprintf("web-%02d", r.IntN(30)),
			}
			tagJSON, _ := json.Marshal(tags)
			eid := [16]byte{}
			for k := range eid {
				eid[k] = byte(r.Uint32())
			}
			eid[6], eid[8] = eid[6]&0x0f|0x40, eid[8]&0x3f|0x80
			ts := t0.Add(-time.Duration(r.IntN(2000)) * time.Millisecond)
			buf = buf[:0]
			buf = fmt.Appendf(buf, `{"event_id":%q,"timestamp":%q,"level":%q,"platform":"javascript","message":%q,`+
				`"exception":{"values":[{"type":%q,"value":%q,"stacktrace":{"frames":[`+
				`{"filename":"app:///static/js/main.4f2a1c.js","function":"handle%s","lineno":%d,"colno":17,"in_app":true},`+
				`{"filename":"app:///static/js/vendor.9b81e0.js","function":"commitRoot","lineno":20931,"colno":5},`+
				`{"filename":"app:///static/js/vendor.9b81e0.js","function":"performSyncWorkOnRoot","lineno":20514,"colno":9}]}}]},`+
				`"tags":%s,"contexts":{"browser":{"name":%q},"os":{"name":%q}},`+
				`"request":{"url":"https://shop.example.com%s","method":"GET"},"release":%q}`,
				batch.FormatUUID(eid), ts.Format(time.RFC3339Nano), level, msg, is.errType, msg,
				area, 100+i, tagJSON, tags["browser"], tags["os"], tags["url"], tags["release"])
			body := make([]byte, len(buf))
			copy(body, buf)
			return []any{eid, d.project, ids[is.fp], is.fp, is.title, level, msg, tags["environment"], tags["release"],
				tagJSON, ts, t0, body, nil}, nil
		})
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		steps := []string{
			"DROP TABLE IF EXISTS " + name,
			fmt.Sprintf(`CREATE TABLE %s (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED
				INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)`, name),
		}
		for _, q := range steps {
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if _, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{name}, eventColumns, src); err != nil {
			return fmt.Errorf("copy into %s: %w", name, err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
			name, pgTimestamp(day), pgTimestamp(day.Add(24*time.Hour)))); err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
		return nil
	}
	// Two loaders: the machine this is measured on has two cores.
	var wg sync.WaitGroup
	errs := make(chan error, len(days))
	work := make(chan int)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := load(days[i], byDay[days[i]], uint64(i)+10); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range days {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}

	// Issue counts and times, and the dashboards' counts, from the events.
	for _, q := range []string{
		`UPDATE issues i SET count = c.n, first_seen = c.f, last_seen = c.l
			FROM (SELECT issue_id, count(*) AS n, min("timestamp") AS f, max("timestamp") AS l FROM events GROUP BY issue_id) c
			WHERE i.id = c.issue_id`,
		`INSERT INTO issue_counts (issue_id, project_id, hour, level, n)
			SELECT issue_id, project_id, date_trunc('hour', received_at, 'UTC'), level, count(*)
			FROM events GROUP BY 1, 2, 3, 4`,
		`INSERT INTO event_counts (project_id, hour, level, n)
			SELECT project_id, hour, level, sum(n) FROM issue_counts GROUP BY 1, 2, 3`,
		`INSERT INTO tag_counts (project_id, key, day, value, n)
			SELECT e.project_id, left(t.key, 200), date_trunc('day', e.received_at, 'UTC'), left(t.value, 200), count(*)
			FROM events e, jsonb_each_text(e.tags) t GROUP BY 1, 2, 3, 4`,
		// A database that received these events over a week has been
		// vacuumed meanwhile; without this, autovacuum's first pass over
		// the freshly loaded partitions runs during the timings.
		"VACUUM ANALYZE issues, issue_counts, event_counts, tag_counts, events",
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	// Largest issue first.
	counts := map[int64]int64{}
	rows, err = s.pool.Query(ctx, "SELECT id, count FROM issues WHERE project_id = $1", d.project)
	if err != nil {
		return nil, err
	}
	var c int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &c}, func() error { counts[id] = c; return nil }); err != nil {
		return nil, err
	}
	slices.SortFunc(d.issues, func(a, b int64) int { return int(counts[b] - counts[a]) })
	return d, nil
}
