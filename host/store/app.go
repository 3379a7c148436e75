package store

import (
	"context"
	"time"
)

// App is what the application API reads and writes beyond ingestion:
// triage of issues, event search and the dashboards.
type App interface {
	Triage
	Search
	Dashboards
}

// MaxPage is the most items one page of a listing of the API holds.
const MaxPage = 100

// StatusDiscarded selects discarded issues in IssueQuery.Status. It is not
// a stored status: a discarded issue keeps its status, and has DiscardedAt
// set.
const StatusDiscarded = "discarded"

// IssueQuery selects a page of a project's issues, ordered by last seen,
// latest first, then by id, highest first.
type IssueQuery struct {
	ProjectID string
	// Status is unresolved, resolved or archived (issues with that status
	// that are not discarded), StatusDiscarded, or "" for every issue that
	// is not discarded.
	Status     string
	Level      string // "" or an issue level
	AssignedTo string // "" or a member id
	// Text, if set, must occur in the title, ignoring case (ASCII letters
	// only on the embedded store).
	Text  string
	Limit int          // at least 1
	After *IssueCursor // nil: the first page
}

// IssueCursor is the last issue of a page; the next page starts after it.
type IssueCursor struct {
	LastSeen time.Time
	ID       int64
}

// DiscardedIssue is what ingestion needs to drop a discarded issue's
// events.
type DiscardedIssue struct {
	ID          int64
	ProjectID   string
	Fingerprint string
}

// Triage changes issues.
type Triage interface {
	// IssueByID returns an issue of any project.
	IssueByID(ctx context.Context, id int64) (*Issue, error)
	// ListIssues returns the page q selects.
	ListIssues(ctx context.Context, q IssueQuery) ([]*Issue, error)
	// AssignIssue sets the member an issue is assigned to; "" unassigns it.
	// ErrNotFound if the project has no such issue.
	AssignIssue(ctx context.Context, projectID string, id int64, memberID string) error
	// DiscardIssue marks an issue discarded at at; discarding it again
	// keeps the first time. Its stored events stay. ErrNotFound if the
	// project has no such issue.
	DiscardIssue(ctx context.Context, projectID string, id int64, at time.Time) error
	// DeleteIssue deletes an issue, its events and what the dashboards
	// count of them. An event of its fingerprint committed later starts a
	// new issue. ErrNotFound if the project has no such issue.
	DeleteIssue(ctx context.Context, projectID string, id int64) error
	// DiscardedIssues returns every discarded issue of every project.
	DiscardedIssues(ctx context.Context) ([]DiscardedIssue, error)
	// AddDropped adds, for each issue id, the events dropped at ingestion
	// to its Dropped count. Ids that no longer exist are skipped.
	AddDropped(ctx context.Context, drops map[int64]int64) error
	// ReopenSpiking makes unresolved again, and returns, every archived
	// issue (not discarded) whose events in the hour of now or in the hour
	// before it outnumber max(SpikeMinimum, SpikeFactor × its hourly
	// average over the SpikeBaseline before those two hours). Events are
	// counted by when they were received. Each issue is returned by one
	// call only, even when nodes call it at the same time.
	ReopenSpiking(ctx context.Context, now time.Time) ([]*Issue, error)
}

// The rule of Triage.ReopenSpiking.
const (
	SpikeMinimum  = 10
	SpikeFactor   = 10
	SpikeBaseline = 7 * 24 * time.Hour
)

// EventQuery selects a page of a project's events, ordered by when they
// were received, latest first, then by id, highest first.
type EventQuery struct {
	ProjectID string
	IssueID   int64 // 0: every issue
	// Text is a full-text query over title, message and exception values.
	// PostgreSQL reads it as websearch_to_tsquery does (words ANDed,
	// "quoted phrases", -word, OR); the embedded store as FTS5 words
	// ANDed, "quoted phrases" and -word. Words are not stemmed. Text
	// without any word matches nothing.
	Text   string
	Tags   []TagFilter  // each must match
	From   time.Time    // received at or after; zero: no bound
	To     time.Time    // received before; zero: no bound
	Limit  int          // at least 1
	Before *EventCursor // nil: the first page
}

// TagFilter matches events whose tag Key has Value.
type TagFilter struct{ Key, Value string }

// EventCursor is the last event of a page; the next page starts after it.
type EventCursor struct {
	ReceivedAt time.Time
	ID         string
}

// Search finds events.
type Search interface {
	// SearchEvents returns the page q selects, without Body and Flags.
	SearchEvents(ctx context.Context, q EventQuery) ([]*Event, error)
	// EventNeighbors returns the ids of the events of e's issue received
	// just before and just after e (in the order of EventQuery), or ""
	// where there is none.
	EventNeighbors(ctx context.Context, e *Event) (prev, next string, err error)
}

// Bucket is the width of a dashboard's time buckets: Hour or Day, in UTC.
type Bucket string

// Buckets.
const (
	Hour Bucket = "hour"
	Day  Bucket = "day"
)

// Duration returns the width of b.
func (b Bucket) Duration() time.Duration {
	if b == Day {
		return 24 * time.Hour
	}
	return time.Hour
}

// CountPoint is the number of events received in the bucket starting at
// Time.
type CountPoint struct {
	Time  time.Time `json:"time"`
	Count int64     `json:"count"`
}

// IssueEvents is an issue and its events in a range.
type IssueEvents struct {
	Issue  *Issue
	Events int64
}

// TagValueCount is how many events had a tag value.
type TagValueCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Health is a project at a glance.
type Health struct {
	UnresolvedCount int64 `json:"unresolved_count"` // unresolved issues, not discarded
	Events24h       int64 `json:"events_24h"`       // events received in the 24 hours up to now
	NewToday        int64 `json:"new_today"`        // issues created since midnight UTC
}

// MaxTagLength bounds the keys and values the tag counts keep, in
// characters; longer ones are counted cut to this length.
const MaxTagLength = 200

// Dashboards count a project's events. They read counts that Commit keeps
// per project, issue, level and hour, and per tag value and day, by when
// events were received; so ranges must start and end on the hour (on midnight UTC
// for TopTagValues) and from must be before to.
type Dashboards interface {
	// EventVolume returns the events received per bucket in [from, to),
	// of one issue if issueID is not 0, leaving out empty buckets.
	EventVolume(ctx context.Context, projectID string, issueID int64, from, to time.Time, b Bucket) ([]CountPoint, error)
	// LevelCounts returns the events received in [from, to) by level.
	LevelCounts(ctx context.Context, projectID string, from, to time.Time) (map[string]int64, error)
	// TopIssues returns the limit issues, not discarded, with the most
	// events received in [from, to), most first, then by id.
	TopIssues(ctx context.Context, projectID string, from, to time.Time, limit int) ([]IssueEvents, error)
	// TopTagValues returns the limit values of tag key that the most
	// events received in [from, to) had, most first, then by value.
	TopTagValues(ctx context.Context, projectID, key string, from, to time.Time, limit int) ([]TagValueCount, error)
	// ProjectHealth returns the project's health at now; any time.
	ProjectHealth(ctx context.Context, projectID string, now time.Time) (*Health, error)
}
