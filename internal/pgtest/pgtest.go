// Package pgtest gives each test its own PostgreSQL database on the test
// server, so that test runs and packages in parallel never see each other's
// rows.
//
// The server is the one at DefaultURL unless MESHER_TEST_DATABASE_URL names
// another (a postgres:// URL of a role allowed to create databases). Tests
// that need PostgreSQL fail, never skip, when it cannot be reached: a skipped
// test would pass a build that was never tested.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test server: local, trust authentication.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// EnvURL names the environment variable that overrides DefaultURL.
const EnvURL = "MESHER_TEST_DATABASE_URL"

// StartHint says how to start the test server on a development machine.
const StartHint = "start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start"

// ServerURL returns the test server's URL: MESHER_TEST_DATABASE_URL, or
// DefaultURL.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// URL creates a fresh, empty database named mesher_test_<random> and
// returns its URL. The database is dropped, with any connections left open
// to it, when tb and its subtests end. If the server cannot be reached, tb
// fails at once with a message saying how to start it.
func URL(tb testing.TB) string {
	tb.Helper()
	server := ServerURL()
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("pgtest: %s=%q must be a postgres:// URL", EnvURL, server)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "mesher_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := connect(ctx, server)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL at %s is unreachable (%v); %s, or set %s", redact(u), err, StartHint, EnvURL)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := connect(ctx, server)
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func connect(ctx context.Context, server string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// redact hides a password in u for messages.
func redact(u *url.URL) string {
	return u.Redacted()
}
