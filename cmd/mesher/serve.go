package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/mesher-dev/mesher/cluster"
	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/host/wasm"
)

// adminTokenKey is the meta key holding the admin token's hash.
const adminTokenKey = "admin_token_sha256"

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 30 * time.Second

// serve runs a node until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	st, storeDesc, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	token, fresh, tokenHash, err := adminToken(ctx, st, cfg.AdminToken)
	if err != nil {
		return err
	}

	cacheDir := cfg.WasmCacheDir
	if cacheDir == "" {
		cacheDir = wasm.CacheDir(cfg.DataDir)
	}
	rt, err := wasm.New(ctx, wasm.Config{
		CacheDir: cacheDir,
		Limits:   wasm.Limits{MemoryBytes: cfg.ProcessorMemory, Timeout: cfg.ProcessorTimeout},
		Logger:   log.With("component", "wasm"),
	})
	if err != nil {
		return fmt.Errorf("wasm runtime: %w", err)
	}
	defer rt.Close(context.Background())

	nodeName := cfg.NodeName
	if nodeName == "" {
		nodeName = "standalone"
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("MESHER_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()

	var cl *clustered
	var describe api.Cluster
	if cfg.Cluster() {
		if cl, err = startCluster(ctx, cfg, ln.Addr().String(), log); err != nil {
			return err
		}
		d := describer{c: cl.c}
		d.work = func() *cluster.Work { return cl.work }
		describe = d
	}

	hub, err := stream.New(stream.Config{Logger: log.With("component", "stream")})
	if err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	streams := host.NewStreams(hub, log)
	node := host.New(host.Config{
		NodeName:       nodeName,
		Store:          st,
		Runtime:        rt,
		Streams:        streams,
		Cluster:        describe,
		AdminTokenHash: tokenHash,
		Limits:         cfg.Limits,
		Ingest:         ingest.Config{MaxQueued: cfg.QueueEvents},
		Alerts:         alert.Config{Interval: cfg.AlertInterval},
		RetentionDays:  cfg.RetentionDays,
		Logger:         log,
	})
	if err := node.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	handler := node.Handler()
	if cl != nil {
		mux := http.NewServeMux()
		mux.Handle("/internal/v1/", cl.attach(node, st, streams, hub, cfg.Placement))
		mux.Handle("/", node.Handler())
		handler = mux
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	printBanner(stdout, ln.Addr().String(), storeDesc, token, fresh, cfg.AdminToken != "")
	log.Info("serving", "addr", ln.Addr().String(), "store", storeDesc, "node", nodeName, "cluster", cfg.Cluster())

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new requests; committing what is in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := node.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if cl != nil {
		if err := cl.leave(sctx); err != nil {
			errs = append(errs, fmt.Errorf("leave the cluster: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func openStore(ctx context.Context, cfg *serveConfig, log *slog.Logger) (store.Store, string, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, postgres.Config{URL: cfg.DatabaseURL, Logger: log.With("component", "postgres")})
		if err != nil {
			return nil, "", fmt.Errorf("MESHER_DATABASE_URL: %w", err)
		}
		return st, "postgres (" + redactURL(cfg.DatabaseURL) + ")", nil
	}
	st, err := embedded.Open(ctx, embedded.Config{Dir: cfg.DataDir})
	if err != nil {
		return nil, "", fmt.Errorf("MESHER_DATA_DIR %s: %w", cfg.DataDir, err)
	}
	abs, _ := filepath.Abs(cfg.DataDir)
	return st, "embedded (" + abs + ")", nil
}

// adminToken returns the admin token to print (only when generated now),
// whether it is fresh, and the hash the API checks. A configured token is
// used as it is; otherwise the first start generates one and stores its
// hash, and later starts find the hash.
func adminToken(ctx context.Context, st store.Store, configured string) (token string, fresh bool, hash string, err error) {
	if configured != "" {
		return "", false, api.HashToken(configured), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, "", err
	}
	candidate := "mst_" + hex.EncodeToString(b[:])
	want := api.HashToken(candidate)
	got, err := st.SetMetaIfAbsent(ctx, adminTokenKey, want)
	if err != nil {
		return "", false, "", fmt.Errorf("admin token: %w", err)
	}
	if got == want {
		return candidate, true, got, nil
	}
	return "", false, got, nil
}

func printBanner(w io.Writer, addr, storeDesc, token string, fresh, configured bool) {
	fmt.Fprintf(w, "\nMesher is listening on http://%s\n", addr)
	fmt.Fprintf(w, "  store        %s\n", storeDesc)
	switch {
	case fresh:
		fmt.Fprintf(w, "  admin token  %s\n", token)
		fmt.Fprintf(w, "               shown once: keep it (or set MESHER_ADMIN_TOKEN to choose one)\n")
	case configured:
		fmt.Fprintf(w, "  admin token  from MESHER_ADMIN_TOKEN\n")
	default:
		fmt.Fprintf(w, "  admin token  created on first start (printed then); set MESHER_ADMIN_TOKEN to replace it\n")
	}
	fmt.Fprintln(w)
}

// redactURL hides a password in a database URL.
func redactURL(u string) string {
	at := -1
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] == '@' {
			at = i
			break
		}
	}
	scheme := len("postgres://")
	if len(u) > len("postgresql://") && u[:len("postgresql://")] == "postgresql://" {
		scheme = len("postgresql://")
	}
	if at < 0 {
		return u
	}
	creds := u[scheme:at]
	for i := 0; i < len(creds); i++ {
		if creds[i] == ':' {
			return u[:scheme] + creds[:i] + ":***" + u[at:]
		}
	}
	return u
}
