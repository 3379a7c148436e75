package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mesher-dev/mesher/cluster"
	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/wasm"
)

// serveConfig is the configuration of `mesher serve`. Every setting comes
// from a flag, else its environment variable, else its default.
type serveConfig struct {
	HTTPAddr     string
	DataDir      string
	WasmCacheDir string
	DatabaseURL  string
	AdminToken   string
	NodeName     string
	Cookie       string
	Peers        []string
	GossipAddr   string

	LogLevel  slog.Level
	LogFormat string

	Placement        cluster.PlacementConfig
	Limits           api.Limits
	QueueEvents      int
	ProcessorMemory  uint64
	ProcessorTimeout time.Duration
	AlertInterval    time.Duration
	RetentionDays    int
}

// Cluster reports whether cluster mode is on.
func (c *serveConfig) Cluster() bool { return c.NodeName != "" || c.Cookie != "" }

// setting is one configuration value: its variable, flag, default and help.
type setting struct {
	env, flag, def, help string
	set                  func(c *serveConfig, v string) error
}

var settings = []setting{
	{"MESHER_HTTP_ADDR", "http-addr", "127.0.0.1:8080", "HTTP and WebSocket listen address", func(c *serveConfig, v string) error {
		if err := checkHostPort(v); err != nil {
			return err
		}
		c.HTTPAddr = v
		return nil
	}},
	{"MESHER_DATA_DIR", "data-dir", "./data", "directory of the embedded store and the compiled-module cache", func(c *serveConfig, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"MESHER_WASM_CACHE_DIR", "wasm-cache-dir", "", "compiled-module cache; default <data dir>/wasm-cache", func(c *serveConfig, v string) error {
		c.WasmCacheDir = v
		return nil
	}},
	{"MESHER_DATABASE_URL", "database-url", "", "postgres:// URL; empty selects the embedded store", func(c *serveConfig, v string) error {
		if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			return errors.New("must be empty (embedded store) or a postgres:// URL")
		}
		c.DatabaseURL = v
		return nil
	}},
	{"MESHER_ADMIN_TOKEN", "admin-token", "", "admin bearer token; generated and printed once on first start if unset", func(c *serveConfig, v string) error {
		if v != "" && len(v) < 16 {
			return errors.New("must be at least 16 characters")
		}
		c.AdminToken = v
		return nil
	}},
	{"MESHER_NODE_NAME", "node-name", "", "unique node name; with MESHER_COOKIE turns cluster mode on", func(c *serveConfig, v string) error {
		c.NodeName = v
		return nil
	}},
	{"MESHER_COOKIE", "cookie", "", "shared cluster secret (gossip encryption and node-to-node auth)", func(c *serveConfig, v string) error {
		c.Cookie = v
		return nil
	}},
	{"MESHER_PEERS", "peers", "", "comma-separated host:port gossip addresses of seed peers", func(c *serveConfig, v string) error {
		c.Peers = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if err := checkHostPort(p); err != nil {
				return fmt.Errorf("peer %q: %w", p, err)
			}
			c.Peers = append(c.Peers, p)
		}
		return nil
	}},
	{"MESHER_GOSSIP_ADDR", "gossip-addr", "127.0.0.1:7946", "gossip bind address", func(c *serveConfig, v string) error {
		if err := checkHostPort(v); err != nil {
			return err
		}
		c.GossipAddr = v
		return nil
	}},
	{"MESHER_LOAD_INTERVAL", "load-interval", cluster.DefaultSampleInterval.String(), "how often a node samples its load and decides placements", func(c *serveConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			return errors.New("must be a duration of at least 100ms")
		}
		c.Placement.SampleInterval = d
		return nil
	}},
	{"MESHER_PLACE_HIGH", "place-high", strconv.FormatFloat(cluster.DefaultHigh, 'f', -1, 64), "busy fraction above which a node ships work to peers", func(c *serveConfig, v string) error {
		f, err := fraction(v)
		c.Placement.High = f
		return err
	}},
	{"MESHER_PLACE_LOW", "place-low", strconv.FormatFloat(cluster.DefaultLow, 'f', -1, 64), "busy fraction below which a node takes work back or accepts it", func(c *serveConfig, v string) error {
		f, err := fraction(v)
		c.Placement.Low = f
		return err
	}},
	{"MESHER_PLACE_MARGIN", "place-margin", strconv.FormatFloat(cluster.DefaultMargin, 'f', -1, 64), "how much less busy a peer must be to take work", func(c *serveConfig, v string) error {
		f, err := fraction(v)
		c.Placement.Margin = f
		return err
	}},
	{"MESHER_PLACE_SAMPLES", "place-samples", strconv.Itoa(cluster.DefaultSamples), "consecutive samples past a watermark before a move", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.Placement.Samples = n
		return err
	}},
	{"MESHER_PLACE_MIN_STAY", "place-min-stay", cluster.DefaultMinStay.String(), "shortest life of an instance spawned on a peer", func(c *serveConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a duration")
		}
		c.Placement.MinStay = d
		return nil
	}},
	{"MESHER_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *serveConfig, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
	{"MESHER_LOG_FORMAT", "log-format", "text", "text or json", func(c *serveConfig, v string) error {
		if v != "text" && v != "json" {
			return errors.New(`must be "text" or "json"`)
		}
		c.LogFormat = v
		return nil
	}},
	{"MESHER_MAX_BODY_BYTES", "max-body-bytes", strconv.Itoa(api.DefaultMaxBody), "largest single-event request", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.Limits.MaxBody = int64(n)
		return err
	}},
	{"MESHER_MAX_BULK_BYTES", "max-bulk-bytes", strconv.Itoa(api.DefaultMaxBulkBody), "largest bulk request", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.Limits.MaxBulkBody = int64(n)
		return err
	}},
	{"MESHER_MAX_BULK_EVENTS", "max-bulk-events", strconv.Itoa(api.DefaultMaxBulkEvents), "most events in a bulk request", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.Limits.MaxBulkEvents = n
		return err
	}},
	{"MESHER_RATE_LIMIT", "rate-limit", strconv.Itoa(api.DefaultRateLimit), "events per second per project (projects may set their own)", func(c *serveConfig, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return errors.New("must be a positive number")
		}
		c.Limits.RateLimit = f
		return nil
	}},
	{"MESHER_RATE_BURST", "rate-burst", strconv.Itoa(api.DefaultRateBurst), "token bucket size per project", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.Limits.RateBurst = n
		return err
	}},
	{"MESHER_QUEUE_EVENTS", "queue-events", strconv.Itoa(ingest.DefaultMaxQueued), "events accepted and not yet committed before answering 503", func(c *serveConfig, v string) error {
		n, err := positive(v)
		c.QueueEvents = n
		return err
	}},
	{"MESHER_PROCESSOR_MEMORY_MB", "processor-memory-mb", strconv.Itoa(wasm.DefaultMemoryLimit >> 20), "memory cap of each processor instance, MiB", func(c *serveConfig, v string) error {
		n, err := positive(v)
		if err == nil && (n < 2 || n > 4096) {
			err = errors.New("must be between 2 and 4096")
		}
		c.ProcessorMemory = uint64(n) << 20
		return err
	}},
	{"MESHER_PROCESSOR_TIMEOUT", "processor-timeout", wasm.DefaultTimeout.String(), "deadline of one processor batch", func(c *serveConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration such as 1s or 500ms")
		}
		c.ProcessorTimeout = d
		return nil
	}},
	{"MESHER_ALERT_INTERVAL", "alert-interval", alert.DefaultInterval.String(), "evaluation period of threshold and rate_of_change alert rules (the same on every node)", func(c *serveConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return errors.New("must be a duration from 1s to 1h")
		}
		c.AlertInterval = d
		return nil
	}},
	{"MESHER_RETENTION_DAYS", "retention-days", strconv.Itoa(store.DefaultRetentionDays), "days events are kept for projects that set no retention", func(c *serveConfig, v string) error {
		n, err := positive(v)
		if err == nil && n > 365 {
			err = errors.New("must be from 1 to 365")
		}
		c.RetentionDays = n
		return err
	}},
}

func fraction(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1 {
		return 0, errors.New("must be a number above 0 and at most 1")
	}
	return f, nil
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("must be a positive integer")
	}
	return n, nil
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be host:port: %v", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	_ = host
	return nil
}

// parseServeConfig reads flags, then the environment, then defaults. An
// invalid value is an error naming its variable and flag.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := make([]*string, len(settings))
	for i, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		values[i] = fs.String(s.flag, def, s.help+" ($"+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mesher serve [flags]\n\nEvery flag can also be set by the environment variable named after it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	c := &serveConfig{}
	for i, s := range settings {
		if err := s.set(c, *values[i]); err != nil {
			return nil, fmt.Errorf("%s (-%s) = %q: %w", s.env, s.flag, *values[i], err)
		}
	}
	if c.Placement.Low >= c.Placement.High {
		return nil, fmt.Errorf("MESHER_PLACE_LOW (%v) must be below MESHER_PLACE_HIGH (%v)", c.Placement.Low, c.Placement.High)
	}
	if c.Cluster() {
		switch {
		case c.NodeName == "":
			return nil, errors.New("MESHER_COOKIE is set but MESHER_NODE_NAME is not: cluster mode needs both")
		case c.Cookie == "":
			return nil, errors.New("MESHER_NODE_NAME is set but MESHER_COOKIE is not: cluster mode needs both")
		case len(c.Cookie) < 16:
			return nil, errors.New("MESHER_COOKIE must be at least 16 characters")
		case c.DatabaseURL == "":
			return nil, errors.New("cluster mode (MESHER_NODE_NAME and MESHER_COOKIE) needs a PostgreSQL shared by all nodes: set MESHER_DATABASE_URL; the embedded store serves a single node only")
		}
	}
	return c, nil
}
