package store

import (
	"context"
	"time"
)

// DefaultRetentionDays is how long events are kept for a project that
// sets no retention of its own.
const DefaultRetentionDays = 90

// RetentionDays returns a project's retention in days: its setting, or
// def (DefaultRetentionDays if def ≤ 0) when it sets none.
func RetentionDays(s ProjectSettings, def int) int {
	if s.RetentionDays > 0 {
		return s.RetentionDays
	}
	if def > 0 {
		return def
	}
	return DefaultRetentionDays
}

// RetentionResult says what ApplyRetention removed.
type RetentionResult struct {
	// DroppedPartitions are the daily events partitions dropped whole
	// (PostgreSQL only).
	DroppedPartitions []string `json:"dropped_partitions,omitempty"`
	// DeletedEvents counts the events deleted row by row from what was
	// left.
	DeletedEvents int64 `json:"deleted_events"`
	// PrunedEventIDs counts the rows of the resend-dedupe table removed
	// (PostgreSQL only: the embedded store keeps ids in the events).
	PrunedEventIDs int64 `json:"pruned_event_ids"`
	// DeletedDeliveries counts the webhook delivery records removed.
	DeletedDeliveries int64 `json:"deleted_deliveries"`
}

// Retention ages out stored events.
type Retention interface {
	// ApplyRetention removes the events each project no longer keeps:
	// those received before now minus its retention
	// (RetentionDays(settings, defaultDays) days). Issues stay, with
	// their counts. Webhook delivery records older than the longest
	// retention go too. It is safe to run on several nodes at once.
	ApplyRetention(ctx context.Context, now time.Time, defaultDays int) (RetentionResult, error)
}

// ProjectUsage is what a project takes in the store. Per-project figures
// are exact for the project's own rows; the space of indexes and free
// pages is shared by every project and reported per table.
type ProjectUsage struct {
	ProjectID string `json:"project_id"`
	// Events and EventBytes: the project's stored events and the bytes
	// of their rows as stored (PostgreSQL: the sum of pg_column_size of
	// each row, after compression; embedded: the sum of the lengths of
	// each row's columns).
	Events     int64 `json:"events"`
	EventBytes int64 `json:"event_bytes"`
	// Issues and IssueBytes: the same for the project's issues.
	Issues     int64      `json:"issues"`
	IssueBytes int64      `json:"issue_bytes"`
	Oldest     *time.Time `json:"oldest_received_at,omitempty"`
	Newest     *time.Time `json:"newest_received_at,omitempty"`
	// Tables are the sizes on disk of the tables every project shares,
	// indexes included.
	Tables []TableUsage `json:"tables"`
	// TotalBytes is the size of the whole database.
	TotalBytes int64 `json:"total_bytes"`
	// Method says how the figures were computed.
	Method string `json:"method"`
}

// TableUsage is one table's size on disk, indexes (and, on PostgreSQL,
// TOAST) included.
type TableUsage struct {
	Name       string `json:"name"`
	Bytes      int64  `json:"bytes"`
	Partitions int    `json:"partitions,omitempty"` // events on PostgreSQL
}

// Usage measures what projects take in the store.
type Usage interface {
	// ProjectUsage measures a project; ErrNotFound if it does not exist.
	// It reads every row of the project: a slow call for a large one.
	ProjectUsage(ctx context.Context, projectID string) (*ProjectUsage, error)
}
