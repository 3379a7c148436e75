package main

import (
	"fmt"
	"strings"
)

// dashboardQueries are the sub-benchmarks of BenchmarkDashboards, in
// report order.
var dashboardQueries = []struct{ name, label string }{
	{"volume/hour-24h", "volume, hourly, last 24 h"},
	{"volume/day-7d", "volume, daily, last 7 days"},
	{"levels/24h", "levels, last 24 h"},
	{"levels/7d", "levels, last 7 days"},
	{"top-issues/24h", "top issues, last 24 h"},
	{"top-issues/7d", "top issues, last 7 days"},
	{"tags/browser-7d", "tag values, `browser` (8 values), 7 days"},
	{"tags/user-7d", "tag values, `user` (20,000 values), 7 days"},
	{"health", "health"},
	{"timeline/top-issue-hour-7d", "issue timeline, hourly, 7 days (largest issue)"},
	{"search/text-24h", "search, two words, last 24 h (not a target)"},
	{"search/tag-24h", "search, one tag, last 24 h (not a target)"},
}

func dashboardSection(r results) string {
	var b strings.Builder
	b.WriteString("## Dashboards on a project with a million events (PostgreSQL)\n\n")
	b.WriteString("`BenchmarkDashboards` (host/store/postgres) loads one project with 1,000,000 events received over " +
		"the last 7 days — 500 issues of Zipf-distributed sizes, realistic levels and tags, ~800-byte bodies — by COPY " +
		"into each day's partition, then times each store query 300 times. The dashboards read the counts the store " +
		"keeps per project, issue, level and hour and per tag value and day (migration 0003), not the events. " +
		"Target: p99 at most 200 ms.\n\n")
	b.WriteString("| query | p50 | p99 | target |\n|---|---:|---:|---|\n")
	for _, q := range dashboardQueries {
		p50, ok1 := r.get("BenchmarkDashboards/"+q.name, "p50-ms")
		p99, ok2 := r.get("BenchmarkDashboards/"+q.name, "p99-ms")
		target := "–"
		if ok2 && !strings.HasPrefix(q.name, "search/") {
			target = verdict(p99 <= 200)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", q.label, msOf(p50, ok1), msOf(p99, ok2), target)
	}
	return b.String()
}

func msOf(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return num(v, true) + " ms"
}
