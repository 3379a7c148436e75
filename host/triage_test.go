package host

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// fakeTriageStore is a triageStore of function fields.
type fakeTriageStore struct {
	discarded func(ctx context.Context) ([]store.DiscardedIssue, error)
	addDrops  func(ctx context.Context, drops map[int64]int64) error
	reopen    func(ctx context.Context, now time.Time) ([]*store.Issue, error)
}

func (f *fakeTriageStore) DiscardedIssues(ctx context.Context) ([]store.DiscardedIssue, error) {
	return f.discarded(ctx)
}
func (f *fakeTriageStore) AddDropped(ctx context.Context, d map[int64]int64) error {
	return f.addDrops(ctx, d)
}
func (f *fakeTriageStore) ReopenSpiking(ctx context.Context, now time.Time) ([]*store.Issue, error) {
	return f.reopen(ctx, now)
}

// published records what a triage announces.
type published struct {
	mu      sync.Mutex
	actions []string
}

func (p *published) PublishIssue(action string, is *store.Issue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.actions = append(p.actions, action+":"+is.Fingerprint)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestTriageDropsDiscarded(t *testing.T) {
	ctx := context.Background()
	var list []store.DiscardedIssue
	var stored []map[int64]int64
	failDrops := false
	st := &fakeTriageStore{
		discarded: func(context.Context) ([]store.DiscardedIssue, error) { return list, nil },
		addDrops: func(_ context.Context, d map[int64]int64) error {
			if failDrops {
				return errors.New("store down")
			}
			if len(d) > 0 {
				stored = append(stored, d)
			}
			return nil
		},
	}
	pub := &published{}
	tr := newTriage(st, pub, quietLog, time.Now)
	ev := func(project, fp string) *store.Event { return &store.Event{ProjectID: project, Fingerprint: fp} }

	if !tr.Keep(ev("p", "a")) {
		t.Fatalf("Keep before any discard: got false, want true")
	}
	// Discarded through another node: applies at the next refresh.
	list = []store.DiscardedIssue{{ID: 7, ProjectID: "p", Fingerprint: "a"}}
	if err := tr.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Discarded through this node's API: applies at once.
	tr.IssueChanged(stream.ActionDiscarded, &store.Issue{ID: 8, ProjectID: "p", Fingerprint: "b"})
	cases := []struct {
		project, fp string
		want        bool
	}{
		{"p", "a", false},
		{"p", "a", false},
		{"p", "b", false},
		{"p", "c", true},
		{"q", "a", true}, // same fingerprint, other project
	}
	for _, c := range cases {
		if got := tr.Keep(ev(c.project, c.fp)); got != c.want {
			t.Errorf("Keep(%s, %s): got %v, want %v", c.project, c.fp, got, c.want)
		}
	}

	// Drops are stored at the next refresh; a failed store keeps them for
	// the one after.
	failDrops = true
	if err := tr.refresh(ctx); err == nil {
		t.Errorf("refresh with a failing store: got no error, want one")
	}
	failDrops = false
	list = append(list, store.DiscardedIssue{ID: 8, ProjectID: "p", Fingerprint: "b"})
	if err := tr.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []map[int64]int64{{7: 2, 8: 1}}; !reflect.DeepEqual(stored, want) {
		t.Errorf("stored drops: got %v, want %v", stored, want)
	}

	// Deleting a discarded issue stops the drops: its fingerprint starts a
	// new issue.
	tr.IssueChanged(stream.ActionDeleted, &store.Issue{ID: 8, ProjectID: "p", Fingerprint: "b"})
	if !tr.Keep(ev("p", "b")) {
		t.Errorf("Keep of a deleted discarded issue's fingerprint: got false, want true")
	}
	if want := []string{"discarded:b", "deleted:b"}; !reflect.DeepEqual(pub.actions, want) {
		t.Errorf("announced: got %v, want %v", pub.actions, want)
	}
}

func TestTriageLocalChangeWinsOverAStaleRefresh(t *testing.T) {
	// A refresh that read the store before a discard was stored must not
	// undo it.
	var tr *triage
	st := &fakeTriageStore{
		discarded: func(context.Context) ([]store.DiscardedIssue, error) {
			tr.IssueChanged(stream.ActionDiscarded, &store.Issue{ID: 1, ProjectID: "p", Fingerprint: "a"})
			return nil, nil // read before the discard
		},
		addDrops: func(context.Context, map[int64]int64) error { return nil },
	}
	tr = newTriage(st, nil, quietLog, time.Now)
	if err := tr.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr.Keep(&store.Event{ProjectID: "p", Fingerprint: "a"}) {
		t.Errorf("Keep after a discard raced with a refresh: got true, want false")
	}
}

func TestTriageReopensSpikes(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var asked []time.Time
	st := &fakeTriageStore{
		reopen: func(_ context.Context, at time.Time) ([]*store.Issue, error) {
			asked = append(asked, at)
			if len(asked) == 1 {
				return []*store.Issue{{ID: 3, Fingerprint: "x"}, {ID: 4, Fingerprint: "y"}}, nil
			}
			return nil, nil
		},
	}
	pub := &published{}
	tr := newTriage(st, pub, quietLog, func() time.Time { return now })
	for range 2 {
		if err := tr.reopenSpiking(context.Background(), tr.now()); err != nil {
			t.Fatal(err)
		}
	}
	if want := []time.Time{now, now}; !reflect.DeepEqual(asked, want) {
		t.Errorf("ReopenSpiking asked at %v, want the injected clock's %v", asked, want)
	}
	if want := []string{"reopened:x", "reopened:y"}; !reflect.DeepEqual(pub.actions, want) {
		t.Errorf("announced: got %v, want %v", pub.actions, want)
	}
}

func TestTriageRunStoresDropsOnStop(t *testing.T) {
	var mu sync.Mutex
	var stored map[int64]int64
	st := &fakeTriageStore{
		discarded: func(context.Context) ([]store.DiscardedIssue, error) {
			return []store.DiscardedIssue{{ID: 5, ProjectID: "p", Fingerprint: "a"}}, nil
		},
		addDrops: func(_ context.Context, d map[int64]int64) error {
			mu.Lock()
			defer mu.Unlock()
			if len(d) > 0 {
				stored = d
			}
			return nil
		},
		reopen: func(context.Context, time.Time) ([]*store.Issue, error) { return nil, nil },
	}
	tr := newTriage(st, nil, quietLog, time.Now)
	if err := tr.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		tr.run(ctx, time.Hour, time.Hour)
		close(done)
	}()
	tr.Keep(&store.Event{ProjectID: "p", Fingerprint: "a"})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := map[int64]int64{5: 1}; !reflect.DeepEqual(stored, want) {
		t.Errorf("drops stored on stop: got %v, want %v", stored, want)
	}
}
