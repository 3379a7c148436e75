package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// committer is a Committer whose behaviour a test sets.
type committer struct {
	mu      sync.Mutex
	batches [][]*store.Event
	commit  func(events []*store.Event) error
}

func (c *committer) Commit(_ context.Context, events []*store.Event) ([]store.Committed, error) {
	if c.commit != nil {
		if err := c.commit(events); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.batches = append(c.batches, events)
	c.mu.Unlock()
	return make([]store.Committed, len(events)), nil
}

func (c *committer) stored() (events, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.batches {
		events += len(b)
	}
	return events, len(c.batches)
}

func normalized(t testing.TB, n int) []*Normalized {
	out := make([]*Normalized, n)
	for i := range out {
		ev, err := Normalize(json.RawMessage(fmt.Sprintf(`{"message":"m %d"}`, i)), -1, now)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

func TestSubmitWaitsForCommitAndGroupsCommits(t *testing.T) {
	release := make(chan struct{})
	var first atomic.Bool
	c := &committer{commit: func([]*store.Event) error {
		if first.CompareAndSwap(false, true) {
			<-release // hold the first commit so that others queue up
		}
		return nil
	}}
	in := New(Config{Store: c, Workers: 1, Committers: 1})
	in.Start()
	defer in.Close(context.Background())

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- in.Submit(context.Background(), "p", normalized(t, 2))
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for in.Queued() < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n, _ := c.stored(); n != 0 {
		t.Fatalf("%d events stored while the first commit is held", n)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	events, batches := c.stored()
	if events != 100 {
		t.Fatalf("got %d events stored, want 100", events)
	}
	if batches >= 50 {
		t.Errorf("got %d commits for 50 concurrent requests: commits were not grouped", batches)
	}
	if in.Queued() != 0 {
		t.Errorf("queue holds %d events after every commit", in.Queued())
	}
}

func TestCommitFailureFailsItsRequests(t *testing.T) {
	c := &committer{commit: func([]*store.Event) error { return fmt.Errorf("conn reset: %w", store.ErrUnavailable) }}
	in := New(Config{Store: c})
	in.Start()
	defer in.Close(context.Background())
	err := in.Submit(context.Background(), "p", normalized(t, 3))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("got %v, want the store's error", err)
	}
}

func TestQueueBound(t *testing.T) {
	block := make(chan struct{})
	c := &committer{commit: func([]*store.Event) error { <-block; return nil }}
	in := New(Config{Store: c, MaxQueued: 10, Workers: 1, Committers: 1})
	in.Start()
	go in.Submit(context.Background(), "p", normalized(t, 8))
	deadline := time.Now().Add(5 * time.Second)
	for in.Queued() < 8 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := in.Submit(context.Background(), "p", normalized(t, 3)); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy past the bound", err)
	}
	close(block)
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.stored(); n != 8 {
		t.Fatalf("got %d stored, want the 8 queued before Close", n)
	}
	if err := in.Submit(context.Background(), "p", normalized(t, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v after Close, want ErrClosed", err)
	}
}

type dropAll struct{}

func (dropAll) Keep(*store.Event) bool { return false }

func TestFilter(t *testing.T) {
	c := &committer{}
	in := New(Config{Store: c, Filter: dropAll{}})
	in.Start()
	defer in.Close(context.Background())
	if err := in.Submit(context.Background(), "p", normalized(t, 2)); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.stored(); n != 0 {
		t.Fatalf("got %d stored, want the filter to drop both", n)
	}
}
