package embedded_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/storetest"
)

func open(t testing.TB, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(context.Background(), embedded.Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	events := storetest.Events(p.ID, 10, 3, time.Now())
	if _, err := s.Commit(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, dir)
	if _, err := s.Project(ctx, "p"); err != nil {
		t.Errorf("Project after reopening: %v", err)
	}
	for _, e := range events {
		got, err := s.Event(ctx, p.ID, e.ID)
		if err != nil {
			t.Fatalf("Event after reopening: %v", err)
		}
		if got.IssueID != e.IssueID {
			t.Errorf("event %s: got issue %d, want %d", e.ID, got.IssueID, e.IssueID)
		}
	}
	res, err := s.Commit(ctx, events[:1])
	if err != nil || !res[0].Duplicate {
		t.Errorf("resend after reopening: got %v, %v; want a duplicate", res, err)
	}
}

func TestDurableSettings(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
	} {
		t.Run(c.pragma, func(t *testing.T) {
			w, r, err := s.Pragma(ctx, c.pragma)
			if err != nil {
				t.Fatal(err)
			}
			if w != c.want || r != c.want {
				t.Errorf("PRAGMA %s: got %q on the writer and %q on a reader, want %q", c.pragma, w, r, c.want)
			}
		})
	}
}

// TestKillAfterCommit kills -9 a process right after its Commit returned,
// and finds the events in the file.
func TestKillAfterCommit(t *testing.T) {
	if dir := os.Getenv("MESHER_EMBEDDED_CHILD_DIR"); dir != "" {
		child(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillAfterCommit$")
	cmd.Env = append(os.Environ(), "MESHER_EMBEDDED_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	lines := bufio.NewScanner(out)
	project := ""
	for lines.Scan() {
		line := lines.Text()
		if line == "committed" {
			break
		}
		if project == "" {
			project = line
			continue
		}
		ids = append(ids, line)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(ids) == 0 {
		t.Fatalf("the child process committed nothing")
	}
	if _, err := os.Stat(filepath.Join(dir, embedded.FileName+"-wal")); err != nil {
		t.Logf("no WAL file left: %v", err)
	}
	s := open(t, dir)
	for _, id := range ids {
		if _, err := s.Event(context.Background(), project, id); err != nil {
			t.Errorf("event %s acked before kill -9: %v", id, err)
		}
	}
}

// child commits a batch, prints the project, the event ids and
// "committed", then waits to be killed.
func child(dir string) {
	ctx := context.Background()
	s, err := embedded.Open(ctx, embedded.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		panic(err)
	}
	events := storetest.Events(p.ID, 50, 5, time.Now())
	if _, err := s.Commit(ctx, events); err != nil {
		panic(err)
	}
	w := bufio.NewWriter(os.Stdout)
	w.WriteString(p.ID + "\n")
	for _, e := range events {
		w.WriteString(e.ID + "\n")
	}
	w.WriteString("committed\n")
	w.Flush()
	time.Sleep(time.Minute)
	os.Exit(1)
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	p := &store.Project{ID: storetest.NewID(), Slug: "p", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	mk := func(title, message, body string) *store.Event {
		return &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: title, Title: title, Level: "error",
			Message: message, Timestamp: time.Now(), Body: []byte(body)}
	}
	wrapped := mk("KeyError", "", `{"exception": {"values": [{"type": "KeyError", "value": "missing quokka"}]}}`)
	bare := mk("ValueError", "", `{"exception": [{"type": "ValueError", "value": "bad wombat"}]}`)
	msg := mk("Timeout", "upstream numbat timed out", `{"message": "upstream numbat timed out"}`)
	broken := mk("Broken", "", `not json`)
	if _, err := s.Commit(ctx, []*store.Event{wrapped, bare, msg, broken}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"quokka", []string{wrapped.ID}},
		{"wombat", []string{bare.ID}},
		{"numbat", []string{msg.ID}},
		{"keyerror", []string{wrapped.ID}},
		{"broken", []string{broken.ID}},
		{"platypus", nil},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			got, err := s.Search(ctx, c.query)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("search %q: got %v, want %v", c.query, got, c.want)
			}
		})
	}
}
