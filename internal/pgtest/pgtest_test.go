package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// fakeTB records how URL ends a test instead of ending it.
type fakeTB struct {
	testing.TB
	fatal   string
	skipped bool
}

type stop struct{}

func (f *fakeTB) Helper()        {}
func (f *fakeTB) Cleanup(func()) {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (f *fakeTB) Skip(...any)          { f.skipped = true; panic(stop{}) }
func (f *fakeTB) Skipf(string, ...any) { f.skipped = true; panic(stop{}) }
func (f *fakeTB) SkipNow()             { f.skipped = true; panic(stop{}) }

func TestUnreachableFails(t *testing.T) {
	t.Setenv(EnvURL, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (stop{}) {
				panic(r)
			}
		}()
		URL(f)
	}()
	if f.skipped {
		t.Errorf("URL skipped the test, want it to fail")
	}
	if !strings.Contains(f.fatal, "pg_ctlcluster --skip-systemctl-redirect 15 main start") {
		t.Errorf("URL: got failure %q, want one saying how to start PostgreSQL", f.fatal)
	}
}

func TestURL(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("fresh database", func(t *testing.T) {
		url := URL(t)
		conn, err := connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "mesher_test_") {
			t.Errorf("database: got %q, want mesher_test_<random>", name)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
			t.Errorf("tables in a fresh database: got %d (%v), want 0", tables, err)
		}
	})
	admin, err := connect(ctx, ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s: still there after its test ended, want it dropped", name)
	}
}
