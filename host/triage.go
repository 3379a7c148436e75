package host

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// DefaultSpikeInterval is how often a node looks for archived issues whose
// volume spikes: each check is one query over the hourly counts of the
// archived issues.
const DefaultSpikeInterval = time.Minute

// triageStore is what triage needs of the store.
type triageStore interface {
	DiscardedIssues(ctx context.Context) ([]store.DiscardedIssue, error)
	AddDropped(ctx context.Context, drops map[int64]int64) error
	ReopenSpiking(ctx context.Context, now time.Time) ([]*store.Issue, error)
}

// issuePublisher announces issue changes on live streams; *Streams
// implements it.
type issuePublisher interface {
	PublishIssue(action string, is *store.Issue)
}

// triage is a node's part in issue triage. It drops, at ingestion, the
// events of discarded issues — checking a map of them kept in memory and
// refreshed from the store every sync interval, so that discards made
// through other nodes apply within it — and counts what it dropped into
// the issues' Dropped. It announces the API's changes to issues on live
// streams, and reopens archived issues whose volume spikes.
type triage struct {
	store   triageStore
	publish issuePublisher // nil: nothing is announced
	log     *slog.Logger
	now     func() time.Time

	discarded atomic.Pointer[map[discardKey]int64] // project and fingerprint → issue id

	mu      sync.Mutex
	version uint64          // bumped by every local change to discarded
	dropped map[int64]int64 // issue id → events dropped, not yet stored
}

type discardKey struct{ project, fingerprint string }

var (
	_ ingest.Filter     = (*triage)(nil)
	_ api.IssueListener = (*triage)(nil)
)

func newTriage(st triageStore, publish issuePublisher, log *slog.Logger, now func() time.Time) *triage {
	t := &triage{store: st, publish: publish, log: log, now: now, dropped: map[int64]int64{}}
	t.discarded.Store(&map[discardKey]int64{})
	return t
}

// Keep reports whether an event is not of a discarded issue, and counts
// it if it is. It takes no lock unless it drops.
func (t *triage) Keep(e *store.Event) bool {
	m := *t.discarded.Load()
	if len(m) == 0 {
		return true
	}
	id, ok := m[discardKey{e.ProjectID, e.Fingerprint}]
	if !ok {
		return true
	}
	t.mu.Lock()
	t.dropped[id]++
	t.mu.Unlock()
	return false
}

// IssueChanged applies a change made through the API: a discard or a
// deletion at once to ingestion, every change to live streams.
func (t *triage) IssueChanged(action string, is *store.Issue) {
	switch action {
	case stream.ActionDiscarded, stream.ActionDeleted:
		t.mu.Lock()
		next := maps.Clone(*t.discarded.Load())
		k := discardKey{is.ProjectID, is.Fingerprint}
		if action == stream.ActionDiscarded {
			next[k] = is.ID
		} else if next[k] == is.ID {
			delete(next, k)
		}
		t.discarded.Store(&next)
		t.version++
		t.mu.Unlock()
	}
	if t.publish != nil {
		t.publish.PublishIssue(action, is)
	}
}

// refresh reloads the discarded issues from the store and stores the drop
// counts. A local change made while the store was read wins until the next
// refresh.
func (t *triage) refresh(ctx context.Context) error {
	t.mu.Lock()
	version := t.version
	drops := t.dropped
	t.dropped = map[int64]int64{}
	t.mu.Unlock()
	if err := t.store.AddDropped(ctx, drops); err != nil {
		t.mu.Lock()
		for id, n := range drops {
			t.dropped[id] += n
		}
		t.mu.Unlock()
		return err
	}
	list, err := t.store.DiscardedIssues(ctx)
	if err != nil {
		return err
	}
	next := make(map[discardKey]int64, len(list))
	for _, d := range list {
		next[discardKey{d.ProjectID, d.Fingerprint}] = d.ID
	}
	t.mu.Lock()
	if t.version == version {
		t.discarded.Store(&next)
	}
	t.mu.Unlock()
	return nil
}

// reopenSpiking reopens the archived issues whose volume spikes at now,
// and announces each.
func (t *triage) reopenSpiking(ctx context.Context, now time.Time) error {
	issues, err := t.store.ReopenSpiking(ctx, now)
	if err != nil {
		return err
	}
	for _, is := range issues {
		t.log.Info("reopened an archived issue whose volume spiked", "project", is.ProjectID, "issue", is.ID)
		if t.publish != nil {
			t.publish.PublishIssue(stream.ActionReopened, is)
		}
	}
	return nil
}

// run refreshes every refreshEvery and looks for spikes every spikeEvery
// (never if negative) until ctx ends; then it stores the last drop counts.
func (t *triage) run(ctx context.Context, refreshEvery, spikeEvery time.Duration) {
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	var spikes <-chan time.Time
	if spikeEvery > 0 {
		tk := time.NewTicker(spikeEvery)
		defer tk.Stop()
		spikes = tk.C
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.mu.Lock()
			drops := t.dropped
			t.dropped = map[int64]int64{}
			t.mu.Unlock()
			if err := t.store.AddDropped(fctx, drops); err != nil {
				t.log.Warn("could not store the counts of dropped events of discarded issues", "err", err)
			}
			cancel()
			return
		case <-refresh.C:
			if err := t.refresh(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("refresh discarded issues", "err", err)
			}
		case <-spikes:
			if err := t.reopenSpiking(ctx, t.now()); err != nil && ctx.Err() == nil {
				t.log.Warn("reopen spiking issues", "err", err)
			}
		}
	}
}

// PublishIssue announces a change to an issue on its project's stream,
// here and, through Remote, on other nodes.
func (s *Streams) PublishIssue(action string, is *store.Issue) {
	m, err := stream.IssueMessage(action, is)
	if err != nil {
		s.log.Error("cannot publish issue", "issue", is.ID, "err", err)
		return
	}
	s.publish(m)
}
