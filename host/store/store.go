// Package store defines what a Mesher node keeps durably — projects, API
// keys, processor modules, pipelines, events and the issues they are
// grouped into — and the Store interface its backends implement:
// PostgreSQL (store/postgres) and an embedded, pure-Go store for a single
// node (store/embedded). The conformance suite in store/storetest runs
// against both.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors callers branch on. Backends wrap them with detail.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value is taken (a project slug), or a record is
	// still referenced (a processor used by a pipeline).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the backend cannot be reached; the caller may retry.
	ErrUnavailable = errors.New("store unavailable")
)

// Store is a node's durable state. Implementations are safe for concurrent
// use. Every method that returns a record returns a copy the caller owns.
// Every method honours its ctx.
//
// Times are kept to the microsecond and returned in UTC. A write whose
// created or updated time is zero gets the store's clock.
type Store interface {
	Projects
	Keys
	Modules
	Pipelines
	Events
	Meta
	App
	Orgs
	Members
	Alerts
	Retention
	Usage
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Project is a tenant: its own events, issues, keys and pipeline.
type Project struct {
	ID        string          `json:"id"`   // UUID
	Slug      string          `json:"slug"` // unique, [a-z0-9-], not shaped like a UUID
	Name      string          `json:"name"`
	OrgID     string          `json:"org_id"` // the owning organisation; empty at creation means DefaultOrgID
	Settings  ProjectSettings `json:"settings"`
	CreatedAt time.Time       `json:"created_at"`
}

// ProjectSettings are per-project knobs. Zero values mean the node's
// defaults.
type ProjectSettings struct {
	RetentionDays int     `json:"retention_days"` // 1–365; 0 = node default
	SampleRate    float64 `json:"sample_rate"`    // 0–1 of events kept at ingestion; 0 = 1 (keep all)
	RateLimit     float64 `json:"rate_limit"`     // events per second refilled; 0 = node default
	RateBurst     int     `json:"rate_burst"`     // bucket size; 0 = node default
}

// Projects stores projects.
type Projects interface {
	// CreateProject stores p; ErrConflict if the slug or the id is taken,
	// ErrNotFound if its organisation does not exist. An empty OrgID is
	// set to DefaultOrgID.
	CreateProject(ctx context.Context, p *Project) error
	// Project returns a project by id or slug.
	Project(ctx context.Context, idOrSlug string) (*Project, error)
	// ListProjects returns every project, oldest first.
	ListProjects(ctx context.Context) ([]*Project, error)
	// UpdateProjectSettings replaces a project's settings; ErrNotFound if
	// there is no such project.
	UpdateProjectSettings(ctx context.Context, id string, s ProjectSettings) error
}

// APIKey is a project key. Only a SHA-256 of the key is stored.
type APIKey struct {
	ID        string     `json:"id"` // UUID
	ProjectID string     `json:"project_id"`
	Name      string     `json:"name,omitempty"`
	Prefix    string     `json:"prefix"` // first characters of the key, to tell keys apart
	Hash      string     `json:"-"`      // hex SHA-256 of the key
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Keys stores API keys.
type Keys interface {
	// CreateAPIKey stores k: ErrNotFound if its project does not exist,
	// ErrConflict if its id or hash is taken.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with that hash, revoked or not.
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// APIKey returns a key by id, revoked or not.
	APIKey(ctx context.Context, id string) (*APIKey, error)
	// ListAPIKeys returns a project's keys, oldest first.
	ListAPIKeys(ctx context.Context, projectID string) ([]*APIKey, error)
	// RevokeAPIKey marks a key revoked; revoking twice is not an error and
	// keeps the first time. ErrNotFound if there is no such key.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
}

// Module is one uploaded version of a processor: a Wasm module identified by
// the SHA-256 of its bytes.
type Module struct {
	Name      string          `json:"name"`
	SHA256    string          `json:"sha256"`
	Size      int             `json:"size"`
	Manifest  json.RawMessage `json:"manifest"`
	CreatedAt time.Time       `json:"created_at"` // when these bytes were first stored under this name
	Wasm      []byte          `json:"-"`          // filled only by ModuleVersion and ModuleBySHA
}

// Modules stores processor modules. A processor's current version is the
// one uploaded last.
type Modules interface {
	// PutModule stores a version of processor m.Name and makes it current;
	// storing the same bytes again makes that version current again. It
	// sets m.CreatedAt to when these bytes were first stored.
	PutModule(ctx context.Context, m *Module) error
	// Module returns the current version of a processor, without its bytes.
	Module(ctx context.Context, name string) (*Module, error)
	// ModuleVersion returns one version with its bytes.
	ModuleVersion(ctx context.Context, name, sha256 string) (*Module, error)
	// ModuleBySHA returns any module with these bytes, with its bytes.
	ModuleBySHA(ctx context.Context, sha256 string) (*Module, error)
	// ListModules returns the current version of every processor, by name.
	ListModules(ctx context.Context) ([]*Module, error)
	// DeleteModule deletes a processor and all its versions: ErrConflict
	// if a pipeline uses it, ErrNotFound if there is no such processor.
	DeleteModule(ctx context.Context, name string) error
}

// Step is one processor of a pipeline.
type Step struct {
	Processor string                     `json:"name"`
	Version   string                     `json:"version,omitempty"` // SHA-256 to pin; empty follows the current version
	Config    map[string]json.RawMessage `json:"config,omitempty"`
}

// Pipeline is a project's ordered list of processors.
type Pipeline struct {
	ProjectID string    `json:"project_id"`
	Steps     []Step    `json:"processors"`
	Revision  int64     `json:"revision"` // increases with every change
	UpdatedAt time.Time `json:"updated_at"`
}

// Pipelines stores pipelines.
type Pipelines interface {
	// PutPipeline replaces a project's pipeline and sets p.Revision.
	// ErrNotFound if the project does not exist or a step names a processor,
	// or pins a version, that is not stored: a stored pipeline only uses
	// stored processors (DeleteModule keeps it so).
	PutPipeline(ctx context.Context, p *Pipeline) error
	// Pipeline returns a project's pipeline; a project that never had one
	// has an empty pipeline at revision 0. ErrNotFound if the project does
	// not exist.
	Pipeline(ctx context.Context, projectID string) (*Pipeline, error)
	// ListPipelines returns every stored pipeline.
	ListPipelines(ctx context.Context) ([]*Pipeline, error)
}

// Event is a processed event, ready to be stored. Body and Flags must be
// JSON. Text a database cannot hold (NUL characters, invalid UTF-8) is
// stored as U+FFFD rather than failing the batch.
type Event struct {
	ID          string            `json:"id"` // UUID
	ProjectID   string            `json:"project_id"`
	IssueID     int64             `json:"issue_id,omitempty"` // set by Commit
	Fingerprint string            `json:"fingerprint"`        // grouping key (hex SHA-256)
	Title       string            `json:"title"`
	Level       string            `json:"level"`
	Message     string            `json:"message,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Release     string            `json:"release,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Timestamp   time.Time         `json:"timestamp"`   // when it happened (UTC)
	ReceivedAt  time.Time         `json:"received_at"` // when the node accepted it (UTC); zero means now
	Body        json.RawMessage   `json:"event"`       // the whole processed event
	Flags       json.RawMessage   `json:"flags,omitempty"`
}

// Issue groups a project's events with one fingerprint.
type Issue struct {
	ID          int64     `json:"id"`
	ProjectID   string    `json:"project_id"`
	Fingerprint string    `json:"fingerprint"`
	Title       string    `json:"title"`
	Level       string    `json:"level"`
	Status      string    `json:"status"`     // unresolved, resolved, archived
	Count       int64     `json:"count"`      // events stored
	FirstSeen   time.Time `json:"first_seen"` // earliest event timestamp
	LastSeen    time.Time `json:"last_seen"`  // latest event timestamp
	// Triage (see App).
	AssignedTo  string     `json:"assigned_to,omitempty"`  // a member id; empty when unassigned
	DiscardedAt *time.Time `json:"discarded_at,omitempty"` // set once discarded: its new events are dropped at ingestion
	Dropped     int64      `json:"dropped,omitempty"`      // events dropped at ingestion since it was discarded
}

// Issue statuses.
const (
	StatusUnresolved = "unresolved"
	StatusResolved   = "resolved"
	StatusArchived   = "archived"
)

// Committed is the outcome of storing one event. When a batch brings
// several events to one issue, NewIssue and Regressed are reported on the
// first of them.
type Committed struct {
	Duplicate bool  // an event with this id was already stored, by this batch or before; nothing changed
	IssueID   int64 // the issue the event (or, for a duplicate, the stored event) was grouped into
	NewIssue  bool  // the issue was created by this event
	Regressed bool  // the issue was resolved and is unresolved again
}

// Events stores events and groups them into issues.
type Events interface {
	// Commit stores a batch atomically: all or nothing. An event whose id
	// is already stored for its project, or appears earlier in the batch,
	// is a duplicate and changes nothing (resends are idempotent). Every
	// other event is grouped into the issue of its project and fingerprint,
	// which is created if new (with the first event's title), counted,
	// given the earliest event time as first seen, the latest as last seen
	// and the more severe level (debug < info < warning < error < fatal;
	// unknown ranks as error), and made unresolved again if it was resolved
	// (an archived issue stays archived). It returns one result per event,
	// in order, and sets each event's IssueID, and a zero ReceivedAt to
	// now. An event of a project that does not exist fails the batch with
	// ErrNotFound.
	Commit(ctx context.Context, events []*Event) ([]Committed, error)
	// Event returns one stored event of a project.
	Event(ctx context.Context, projectID, id string) (*Event, error)
	// Issue returns one issue of a project.
	Issue(ctx context.Context, projectID string, id int64) (*Issue, error)
	// SetIssueStatus changes an issue's status; ErrNotFound if the project
	// has no such issue.
	SetIssueStatus(ctx context.Context, projectID string, id int64, status string) error
}

// Meta stores small node-wide values, such as the admin token's hash.
type Meta interface {
	// GetMeta returns ErrNotFound for a missing key.
	GetMeta(ctx context.Context, key string) (string, error)
	// SetMetaIfAbsent stores value unless key exists, and returns the value
	// stored under key afterwards.
	SetMetaIfAbsent(ctx context.Context, key, value string) (string, error)
}
