package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// Hub fans messages out to the WebSocket subscribers of each project. Its
// methods are safe for concurrent use.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	closing   chan struct{} // closed by Close: writers say goodbye
	closeOnce sync.Once

	mu       sync.RWMutex
	closed   bool
	projects map[string][]*subscriber // copy on write: Publish reads a snapshot
	count    int
	active   sync.WaitGroup // one per registered subscriber

	dropped atomic.Uint64

	// testHookFlush, if set before the first subscriber, runs in every
	// writer before it takes queued messages. Tests block in it to stall a
	// writer deterministically.
	testHookFlush func()
}

// New returns a hub, or an error naming an invalid Config field.
func New(cfg Config) (*Hub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("stream config: %w", err)
	}
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger,
		closing:  make(chan struct{}),
		projects: map[string][]*subscriber{},
	}
	h.upgrader = websocket.Upgrader{
		// Buffer sizes stay zero on purpose: gorilla then reuses the 4 KiB
		// read and write buffers net/http allocated for the connection,
		// which the handler goroutine keeps alive for as long as ServeWS
		// runs anyway. Smaller buffers or a write buffer pool would add
		// memory here, not save it (measured in TestMemoryPerSubscriber).
		CheckOrigin: cfg.CheckOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeError(w, status, reason.Error())
		},
	}
	return h, nil
}

// Publish offers m to every subscriber of m.ProjectID whose filters it
// passes. It never waits for a subscriber: a subscriber whose queue is full
// loses its oldest queued message instead. m and what it refers to must not
// be modified afterwards.
func (h *Hub) Publish(m Message) {
	h.mu.RLock()
	subs := h.projects[m.ProjectID]
	h.mu.RUnlock()
	if len(subs) == 0 {
		return
	}
	msg := new(Message) // shared by every queue
	*msg = m
	for _, s := range subs {
		if s.filters.Load().match(msg) {
			s.push(msg)
		}
	}
}

// Lag tells every subscriber of projectID that n messages meant for it
// were lost before reaching this hub, such as on the way from another
// node: each gets a lagged notice, counting them, before its next message.
func (h *Hub) Lag(projectID string, n int) {
	if n <= 0 {
		return
	}
	h.mu.RLock()
	subs := h.projects[projectID]
	h.mu.RUnlock()
	for _, s := range subs {
		s.mu.Lock()
		s.q.dropped += n
		s.mu.Unlock()
	}
}

// ServeWS upgrades r, which the caller has already authenticated for
// projectID, to a WebSocket and serves it until the subscriber disconnects
// or the hub closes. Initial filters may be given as query parameters:
// level=error,fatal, environment=production, tag=key:value (each may
// repeat). Before the upgrade it answers 400 for bad filters and 503 once
// the hub is closed, with a JSON {"error":"…"} body.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, projectID string) {
	f, err := filtersFromQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s := newSubscriber(h, projectID, f)
	if !h.add(s) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "live stream is shutting down")
		return
	}
	defer h.remove(s)
	// Registered before the upgrade: once a client sees the handshake
	// answer it receives everything published after.
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Debug("stream upgrade failed", "project", projectID, "err", err)
		return
	}
	err = s.run(conn)
	h.log.Debug("stream subscriber disconnected", "project", projectID, "reason", err)
}

// Close shuts the hub down: later ServeWS calls answer 503, and every
// subscriber is sent a close frame (1001, going away). It waits until every
// subscriber has disconnected or ctx is done; then it cuts the remaining
// connections and returns ctx's error.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.closeOnce.Do(func() { close(h.closing) })

	done := make(chan struct{})
	go func() {
		h.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.RLock()
	for _, subs := range h.projects {
		for _, s := range subs {
			if c := s.conn.Load(); c != nil {
				c.Close()
			}
		}
	}
	h.mu.RUnlock()
	return fmt.Errorf("close stream hub: %w", ctx.Err())
}

// Subscribers returns how many subscribers are connected.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.count
}

// ProjectSubscribers returns how many subscribers a project has.
func (h *Hub) ProjectSubscribers(projectID string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.projects[projectID])
}

// SubscribersByProject returns the number of subscribers of each project
// that has any.
func (h *Hub) SubscribersByProject() map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	counts := make(map[string]int, len(h.projects))
	for p, subs := range h.projects {
		counts[p] = len(subs)
	}
	return counts
}

// Dropped returns how many messages have been dropped, over all
// subscribers, because a subscriber's queue was full.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// add registers s unless the hub is closed.
func (h *Hub) add(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	old := h.projects[s.project]
	subs := make([]*subscriber, len(old), len(old)+1)
	copy(subs, old)
	h.projects[s.project] = append(subs, s)
	h.count++
	h.active.Add(1)
	return true
}

// remove unregisters s.
func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.projects[s.project]
	subs := make([]*subscriber, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	if len(subs) == 0 {
		delete(h.projects, s.project)
	} else {
		h.projects[s.project] = subs
	}
	h.count--
	h.active.Done()
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
