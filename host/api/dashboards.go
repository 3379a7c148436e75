package api

import (
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/store"
)

// The dashboards and an issue's timeline read the counts the store keeps
// per hour (per day for tags), by when events were received: a range is
// widened to whole buckets — from rounded down, to rounded up — and the
// answer says which range it counted.

// bucketRange reads ?bucket (hour by default), ?from and ?to, widened to
// whole buckets, and bounds the number of buckets.
func (a *API) bucketRange(q *queryParams) (store.Bucket, time.Time, time.Time, error) {
	b, err := q.oneOf("bucket", string(store.Hour), string(store.Hour), string(store.Day))
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	bucket := store.Bucket(b)
	span := defaultHourRange
	if bucket == store.Day {
		span = defaultDayRange
	}
	from, to, err := q.timeRange(a.cfg.Now(), span)
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	from, to = widen(from, to, bucket.Duration())
	if n := int64(to.Sub(from) / bucket.Duration()); n > maxBuckets {
		return "", time.Time{}, time.Time{}, errorf(http.StatusBadRequest,
			"the range from %q to %q holds %d %s buckets; at most %d: shorten it, or use bucket=day",
			"from", "to", n, bucket, maxBuckets)
	}
	return bucket, from, to, nil
}

// widen rounds from down and to up to multiples of unit (UTC).
func widen(from, to time.Time, unit time.Duration) (time.Time, time.Time) {
	f, t := from.Truncate(unit), to.Truncate(unit)
	if t.Before(to) {
		t = t.Add(unit)
	}
	return f, t
}

// points returns the count of every bucket from from to to, zeros
// included.
func points(sparse []store.CountPoint, from, to time.Time, unit time.Duration) ([]store.CountPoint, int64) {
	have := make(map[int64]int64, len(sparse))
	for _, p := range sparse {
		have[p.Time.UnixMicro()] = p.Count
	}
	out := make([]store.CountPoint, 0, to.Sub(from)/unit)
	var total int64
	for t := from; t.Before(to); t = t.Add(unit) {
		n := have[t.UnixMicro()]
		total += n
		out = append(out, store.CountPoint{Time: t, Count: n})
	}
	return out, total
}

// volume answers a volume or timeline request for a project or one issue.
func (a *API) volume(w http.ResponseWriter, r *http.Request, q *queryParams, p *store.Project, issueID int64) error {
	bucket, from, to, err := a.bucketRange(q)
	if err != nil {
		return err
	}
	sparse, err := a.cfg.Store.EventVolume(r.Context(), p.ID, issueID, from, to, bucket)
	if err != nil {
		return err
	}
	pts, total := points(sparse, from, to, bucket.Duration())
	resp := map[string]any{"bucket": bucket, "from": from, "to": to, "points": pts, "total": total}
	if issueID != 0 {
		resp["issue_id"] = issueID
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// issueTimeline is GET /api/v1/issues/:id/timeline?bucket=hour|day&from=&to=.
func (a *API) issueTimeline(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	is, p, err := a.issueFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"bucket", "from", "to"}, nil)
	if err != nil {
		return err
	}
	return a.volume(w, r, q, p, is.ID)
}

// dashboardVolume is GET /api/v1/projects/:project/dashboard/volume?bucket=&from=&to=.
func (a *API) dashboardVolume(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"bucket", "from", "to"}, nil)
	if err != nil {
		return err
	}
	return a.volume(w, r, q, p, 0)
}

// hourRange reads ?from and ?to (default the last 24 hours), widened to
// whole hours.
func (a *API) hourRange(q *queryParams) (time.Time, time.Time, error) {
	from, to, err := q.timeRange(a.cfg.Now(), defaultHourRange)
	if err != nil {
		return from, to, err
	}
	from, to = widen(from, to, time.Hour)
	return from, to, nil
}

// dashboardLevels is GET /api/v1/projects/:project/dashboard/levels?from=&to=:
// events by level, every level present.
func (a *API) dashboardLevels(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"from", "to"}, nil)
	if err != nil {
		return err
	}
	from, to, err := a.hourRange(q)
	if err != nil {
		return err
	}
	levels, err := a.cfg.Store.LevelCounts(r.Context(), p.ID, from, to)
	if err != nil {
		return err
	}
	for _, l := range []string{"debug", "info", "warning", "error", "fatal"} {
		levels[l] += 0
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "levels": levels})
	return nil
}

// topIssue is an issue with its events in the range counted.
type topIssue struct {
	*store.Issue
	Events int64 `json:"events"` // in the range
}

// dashboardTopIssues is GET /api/v1/projects/:project/dashboard/top-issues?from=&to=&limit=.
func (a *API) dashboardTopIssues(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"from", "to", "limit"}, nil)
	if err != nil {
		return err
	}
	from, to, err := a.hourRange(q)
	if err != nil {
		return err
	}
	limit, err := q.limit(defaultTopLimit, store.MaxPage)
	if err != nil {
		return err
	}
	top, err := a.cfg.Store.TopIssues(r.Context(), p.ID, from, to, limit)
	if err != nil {
		return err
	}
	out := make([]topIssue, len(top))
	for i, t := range top {
		out[i] = topIssue{t.Issue, t.Events}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "issues": out})
	return nil
}

// dashboardTags is GET /api/v1/projects/:project/dashboard/tags?key=&from=&to=&limit=:
// the values of a tag the most events had, counted per UTC day.
func (a *API) dashboardTags(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"key", "from", "to", "limit"}, nil)
	if err != nil {
		return err
	}
	key, err := q.text("key", store.MaxTagLength)
	if err != nil {
		return err
	}
	if key == "" {
		return errorf(http.StatusBadRequest, "query parameter %q is required: the tag whose values to count", "key")
	}
	from, to, err := q.timeRange(a.cfg.Now(), defaultHourRange)
	if err != nil {
		return err
	}
	from, to = widen(from, to, store.Day.Duration())
	if n := to.Sub(from) / store.Day.Duration(); n > maxBuckets {
		return errorf(http.StatusBadRequest, "the range from %q to %q holds %d days; at most %d", "from", "to", n, maxBuckets)
	}
	limit, err := q.limit(defaultTopLimit, store.MaxPage)
	if err != nil {
		return err
	}
	values, err := a.cfg.Store.TopTagValues(r.Context(), p.ID, key, from, to, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "from": from, "to": to, "values": nonNil(values)})
	return nil
}

// dashboardHealth is GET /api/v1/projects/:project/dashboard/health.
func (a *API) dashboardHealth(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	h, err := a.cfg.Store.ProjectHealth(r.Context(), p.ID, a.cfg.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}
