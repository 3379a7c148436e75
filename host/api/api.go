// Package api is a node's HTTP API: ingestion, the management API, live
// streams, health and metrics. Routes are in routes.go; every error is JSON
// {"error": "…"} with the status that fits.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/metrics"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/processors"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/wasm"
)

// Defaults of Limits.
const (
	DefaultMaxBody       = 1 << 20
	DefaultMaxBulkBody   = 5 << 20
	DefaultMaxBulkEvents = 1000
	DefaultRateLimit     = 5000
	DefaultRateBurst     = 10000
	DefaultKeyCacheTTL   = 5 * time.Second
)

// Limits bound ingestion. Zero fields mean the defaults.
type Limits struct {
	MaxBody       int64   // bytes of a single-event request (default 1 MiB)
	MaxBulkBody   int64   // bytes of a bulk request (default 5 MiB)
	MaxBulkEvents int     // events of a bulk request (default 1,000)
	RateLimit     float64 // events per second per project, unless the project sets its own (default 5,000)
	RateBurst     int     // token bucket size (default 10,000)
}

// Streams serves live streams; the stream hub implements it.
type Streams interface {
	// ServeWS upgrades an authenticated request and serves the project's
	// stream until the client leaves.
	ServeWS(w http.ResponseWriter, r *http.Request, projectID string)
}

// Processors validates modules and builds pipelines; *processors.Registry
// implements it.
type Processors interface {
	Validate(ctx context.Context, bin []byte) (*wasm.Module, error)
	Build(ctx context.Context, p *store.Pipeline) (*pipeline.Pipeline, []string, error)
	Install(projectID string, revision int64, p *pipeline.Pipeline, shas []string)
	Statuses() []processors.ProcessorStatus
	Forget(ctx context.Context, name string)
}

// Cluster describes the cluster for GET /api/v1/cluster; nil on a
// standalone node.
type Cluster interface {
	Describe(ctx context.Context) any
}

// Config configures the API.
type Config struct {
	Store      store.Store      // required
	Ingester   *ingest.Ingester // required
	Processors Processors       // required
	Streams    Streams          // nil: streams answer 503
	Cluster    Cluster          // nil: standalone
	// AdminTokenHash is the hex SHA-256 of the admin token.
	AdminTokenHash string
	Limits         Limits
	Metrics        *metrics.Registry // nil: a private registry
	Logger         *slog.Logger      // nil: slog.Default()
	Now            func() time.Time  // nil: time.Now
	// NodeName is reported by /healthz.
	NodeName string
	// Issues learns of changes to issues made through the API; nil: they
	// are not announced.
	Issues IssueListener
	// RetentionDays is the retention of projects that set none; 0 means
	// store.DefaultRetentionDays.
	RetentionDays int
}

// API is the HTTP handler of a node.
type API struct {
	cfg    Config
	log    *slog.Logger
	router *routeTable
	rate   *ingest.RateLimiter
	keys   *keyCache
	ready  func() bool

	mRejected func(reason string) *metrics.Counter
	mAccepted *metrics.Counter
	mSampled  *metrics.Counter
}

// New returns the API handler.
func New(cfg Config) *API {
	l := &cfg.Limits
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	if l.MaxBulkBody <= 0 {
		l.MaxBulkBody = DefaultMaxBulkBody
	}
	if l.MaxBulkEvents <= 0 {
		l.MaxBulkEvents = DefaultMaxBulkEvents
	}
	if l.RateLimit <= 0 {
		l.RateLimit = DefaultRateLimit
	}
	if l.RateBurst <= 0 {
		l.RateBurst = DefaultRateBurst
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, log: cfg.Logger, rate: ingest.NewRateLimiter(cfg.Now), ready: func() bool { return true }}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.keys = newKeyCache(cfg.Store, DefaultKeyCacheTTL, cfg.Now)
	m := cfg.Metrics
	a.mRejected = func(reason string) *metrics.Counter {
		return m.Counter("mesher_ingest_requests_rejected_total", "Ingestion requests refused, by reason.", "reason", reason)
	}
	for _, reason := range []string{"invalid", "unauthorized", "too_large", "rate_limited", "queue_full", "shutting_down", "unavailable", "error"} {
		a.mRejected(reason) // every series exists from the start, at 0
	}
	a.mAccepted = m.Counter("mesher_events_accepted_total", "Events acknowledged with 202 (committed).")
	a.mSampled = m.Counter("mesher_events_dropped_total", "Events dropped on purpose after acceptance.", "reason", "sampled")
	a.router = a.routes()
	return a
}

// SetReady installs the readiness check /healthz reports.
func (a *API) SetReady(ready func() bool) { a.ready = ready }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.router.ServeHTTP(w, r)
}

// httpError is an error with the status to answer.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// handler is an httprouter handle that returns an error to answer with.
type handler func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

func (a *API) wrap(h handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := h(w, r, ps); err != nil {
			a.fail(w, r, err)
		}
	}
}

// fail answers with err: an *httpError as it says, a store error mapped to
// its status, anything else as a 500 that is logged.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, store.ErrNotFound):
		he = errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, store.ErrConflict):
		he = errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, ingest.ErrBusy), errors.Is(err, ingest.ErrClosed):
		he = &httpError{status: http.StatusServiceUnavailable, msg: err.Error(), retryAfter: time.Second}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		he = &httpError{status: http.StatusServiceUnavailable, msg: "request canceled or timed out: " + err.Error(), retryAfter: time.Second}
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = errorf(http.StatusInternalServerError, "internal error: %v", err)
	}
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((he.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, he.status, map[string]string{"error": he.msg})
}

// nonNil returns s, or an empty slice if s is nil, so that a list in a
// response is [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
