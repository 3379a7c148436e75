package stream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestDelivery(t *testing.T) {
	h, srv := startHub(t, Config{})
	c := dial(t, srv, "p1", "")
	if got := h.ProjectSubscribers("p1"); got != 1 {
		t.Fatalf("ProjectSubscribers(p1) = %d, want 1", got)
	}
	var want []Message
	for _, id := range []string{"e1", "e2", "e3"} {
		m := event("p1", id, "error", "production", map[string]string{"region": "eu"})
		want = append(want, m)
		h.Publish(m)
	}
	for _, w := range want {
		got := c.next()
		if string(got.raw) != string(w.Payload) {
			t.Errorf("got %s, want %s", got.raw, w.Payload)
		}
	}
}

func TestProjectIsolation(t *testing.T) {
	h, srv := startHub(t, Config{})
	a1 := dial(t, srv, "a", "")
	a2 := dial(t, srv, "a", "")
	b := dial(t, srv, "b", "")
	if got := h.Subscribers(); got != 3 {
		t.Fatalf("Subscribers() = %d, want 3", got)
	}
	if got := h.ProjectSubscribers("a"); got != 2 {
		t.Fatalf("ProjectSubscribers(a) = %d, want 2", got)
	}
	if got := h.SubscribersByProject(); len(got) != 2 || got["a"] != 2 || got["b"] != 1 {
		t.Fatalf("SubscribersByProject() = %v, want map[a:2 b:1]", got)
	}
	h.Publish(event("a", "a1", "error", "", nil))
	h.Publish(event("b", "b1", "error", "", nil))
	h.Publish(event("c", "c1", "error", "", nil)) // nobody listens
	h.Publish(event("a", "a2", "error", "", nil))
	h.Publish(marker("a", "end"))
	h.Publish(marker("b", "end"))
	for name, tc := range map[string]struct {
		c    *client
		want []string
	}{"a1": {a1, []string{"a1", "a2"}}, "a2": {a2, []string{"a1", "a2"}}, "b": {b, []string{"b1"}}} {
		if got := tc.c.until("end"); !slices.Equal(got, tc.want) {
			t.Errorf("client %s got %v, want %v", name, got, tc.want)
		}
	}
}

// publishFilterSet publishes one message of each kind the filter cases
// tell apart, then an "end" marker.
func publishFilterSet(h *Hub, project string) {
	h.Publish(event(project, "e1", "error", "production", map[string]string{"region": "eu", "os": "linux"}))
	h.Publish(event(project, "e2", "fatal", "production", map[string]string{"region": "us"}))
	h.Publish(event(project, "e3", "warning", "staging", map[string]string{"region": "eu"}))
	h.Publish(event(project, "e4", "info", "", nil))
	h.Publish(event(project, "e5", "ERROR", "production", map[string]string{"region": "eu"}))
	h.Publish(issue(project, 1, ActionNew, "error"))
	h.Publish(issue(project, 2, ActionRegressed, "warning"))
	h.Publish(marker(project, TypeAlert))
	h.Publish(marker(project, "end"))
}

func TestFilters(t *testing.T) {
	tests := []struct {
		name    string
		filters string
		want    []string
	}{
		{"none", `{}`, []string{"e1", "e2", "e3", "e4", "e5", "issue:1", "issue:2", "alert"}},
		{"empty lists", `{"level":[],"environment":[],"tags":{}}`, []string{"e1", "e2", "e3", "e4", "e5", "issue:1", "issue:2", "alert"}},
		{"levels", `{"level":["error","fatal"]}`, []string{"e1", "e2", "e5", "issue:1", "alert"}},
		{"level ignores case", `{"level":["Error"]}`, []string{"e1", "e5", "issue:1", "alert"}},
		{"environment", `{"environment":["production"]}`, []string{"e1", "e2", "e5", "issue:1", "issue:2", "alert"}},
		{"environments", `{"environment":["staging","production"]}`, []string{"e1", "e2", "e3", "e5", "issue:1", "issue:2", "alert"}},
		{"no such environment", `{"environment":["nowhere"]}`, []string{"issue:1", "issue:2", "alert"}},
		{"tag", `{"tags":{"region":"eu"}}`, []string{"e1", "e3", "e5", "issue:1", "issue:2", "alert"}},
		{"all tags must match", `{"tags":{"region":"eu","os":"linux"}}`, []string{"e1", "issue:1", "issue:2", "alert"}},
		{"combined", `{"level":["error"],"environment":["production"],"tags":{"region":"eu"}}`, []string{"e1", "e5", "issue:1", "alert"}},
		{"combined, none match", `{"level":["fatal"],"environment":["staging"]}`, []string{"alert"}},
	}
	h, srv := startHub(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv, "p", "")
			ack := c.setFilters(tt.filters)
			var want Filters
			if err := json.Unmarshal([]byte(tt.filters), &want); err != nil {
				t.Fatal(err)
			}
			if got, want := mustJSON(t, ack.Filters), mustJSON(t, want.orEmpty()); got != want {
				t.Errorf("acknowledged filters %s, want %s", got, want)
			}
			publishFilterSet(h, "p")
			if got := c.until("end"); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			c.conn.Close()
			waitFor(t, "subscriber to leave", func() bool { return h.Subscribers() == 0 })
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFiltersUpdateMidStream(t *testing.T) {
	h, srv := startHub(t, Config{})
	c := dial(t, srv, "p", "")
	h.Publish(event("p", "w1", "warning", "", nil))
	if got := c.next().label(); got != "w1" {
		t.Fatalf("got %s, want w1", got)
	}

	c.setFilters(`{"level":["error"]}`)
	h.Publish(event("p", "w2", "warning", "", nil))
	h.Publish(event("p", "e2", "error", "", nil))
	h.Publish(marker("p", "end"))
	if got, want := c.until("end"), []string{"e2"}; !slices.Equal(got, want) {
		t.Errorf("with level filter got %v, want %v", got, want)
	}

	c.setFilters(`{}`)
	h.Publish(event("p", "w3", "warning", "", nil))
	h.Publish(marker("p", "end"))
	if got, want := c.until("end"), []string{"w3"}; !slices.Equal(got, want) {
		t.Errorf("after clearing filters got %v, want %v", got, want)
	}
}

// TestFiltersApplyToQueuedMessages checks that nothing published before a
// filter change but still queued slips past the acknowledgement.
func TestFiltersApplyToQueuedMessages(t *testing.T) {
	release := make(chan struct{})
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	paused := make(chan struct{}, 1)
	h.testHookFlush = func() {
		select {
		case paused <- struct{}{}:
		default:
		}
		<-release
	}
	srv := serveHub(t, h)
	c := dial(t, srv, "p", "")
	h.Publish(event("p", "w1", "warning", "", nil))
	<-paused // the writer holds w1 queued
	h.Publish(event("p", "w2", "warning", "", nil))
	c.send(`{"filters":{"level":["error"]}}`)
	// The reader stores the filters, then hands the writer the
	// acknowledgement, which it picks up after the flush it is paused in.
	waitFor(t, "filters to be stored", func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.projects["p"][0].filters.Load() != nil
	})
	close(release)
	// w1 and w2 were queued under the old filters; the writer checks the
	// new ones as it writes, so the acknowledgement comes first.
	if m := c.next(); m.Type != TypeFiltersUpdated {
		t.Fatalf("got %s, want the acknowledgement", m.raw)
	}
	h.Publish(event("p", "e1", "error", "", nil))
	h.Publish(marker("p", "end"))
	if got, want := c.until("end"), []string{"e1"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestQueryFilters(t *testing.T) {
	h, srv := startHub(t, Config{})
	c := dial(t, srv, "p", "level=error,fatal&tag=region:eu&key=ignored")
	publishFilterSet(h, "p")
	if got, want := c.until("end"), []string{"e1", "e5", "issue:1", "alert"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	for _, tt := range []struct{ query, wantErr string }{
		{"tag=region", `query parameter tag: want key:value, got \"region\"`},
		{"level=", `filters.level[0]: must not be empty`},
		{"tag=region:", `filters.tags.region: value must not be empty`},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, "p", tt.query), nil)
		if err == nil {
			t.Fatalf("query %q: dial succeeded, want 400", tt.query)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("query %q: status %d, want 400", tt.query, resp.StatusCode)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), tt.wantErr) {
			t.Errorf("query %q: body %s, want it to contain %s", tt.query, body, tt.wantErr)
		}
	}
}

func TestInvalidClientMessages(t *testing.T) {
	tests := []struct{ msg, wantErr string }{
		{``, "invalid message: empty"},
		{`not json`, "invalid message: not JSON"},
		{`[1]`, `invalid message: want a JSON object {"filters":{…}}, got array`},
		{`"x"`, `invalid message: want a JSON object {"filters":{…}}, got string`},
		{`{}`, `"filters" is missing`},
		{`{"filters":null}`, `"filters" is missing`},
		{`{"filter":{}}`, `unknown field "filter"`},
		{`{"filters":{"colour":["red"]}}`, `unknown field "colour"`},
		{`{"filters":[]}`, "filters: want an object, got array"},
		{`{"filters":{"level":"error"}}`, "filters.level: want an array of strings, got string"},
		{`{"filters":{"level":[1]}}`, "filters.level: want a string, got number"},
		{`{"filters":{"tags":["a"]}}`, "filters.tags: want an object of strings, got array"},
		{`{"filters":{"tags":{"region":1}}}`, "want a string, got number"},
		{`{"filters":{"level":[""]}}`, "filters.level[0]: must not be empty"},
		{`{"filters":{"environment":["prod",""]}}`, "filters.environment[1]: must not be empty"},
		{`{"filters":{"tags":{"":"x"}}}`, "filters.tags: a tag key must not be empty"},
		{`{"filters":{"tags":{"region":""}}}`, "filters.tags.region: value must not be empty"},
		{`{"filters":{"level":["` + strings.Repeat("x", maxFilterLen+1) + `"]}}`, "filters.level[0]: longer than 200 bytes"},
		{`{"filters":{}} {}`, "data after the JSON object"},
	}
	h, srv := startHub(t, Config{})
	c := dial(t, srv, "p", "")
	for _, tt := range tests {
		c.send(tt.msg)
		m := c.next()
		if m.Type != TypeError || !strings.Contains(m.Error, tt.wantErr) {
			t.Errorf("message %q: got %s, want an error containing %q", tt.msg, m.raw, tt.wantErr)
		}
	}
	// Still connected, filters untouched, and a valid message still works.
	h.Publish(event("p", "w1", "warning", "", nil))
	if got := c.next().label(); got != "w1" {
		t.Errorf("after invalid messages got %s, want w1", got)
	}
	c.setFilters(`{"level":["error"]}`)
}

func TestClientMessageTooBig(t *testing.T) {
	h, srv := startHub(t, Config{MaxMessageSize: 64})
	c := dial(t, srv, "p", "")
	c.send(`{"filters":{"level":["` + strings.Repeat("x", 64) + `"]}}`)
	if _, err := c.read(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("got %v, want close 1009", err)
	}
	waitFor(t, "the subscriber to be removed", func() bool { return h.Subscribers() == 0 })
}

// TestLagged stalls a subscriber's writer, overflows its queue and checks
// that it is told exactly how many messages it lost, then gets the newest.
func TestLagged(t *testing.T) {
	const buffer, published = 4, 10
	h, err := New(Config{BufferSize: buffer})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	paused := make(chan struct{}, 1)
	h.testHookFlush = func() {
		select {
		case paused <- struct{}{}:
		default:
		}
		<-release
	}
	srv := serveHub(t, h)
	c := dial(t, srv, "p", "")

	ids := make([]string, published)
	for i := range ids {
		ids[i] = string(rune('a' + i))
	}
	h.Publish(event("p", ids[0], "error", "", nil))
	<-paused // the writer is stalled before taking anything
	for _, id := range ids[1:] {
		h.Publish(event("p", id, "error", "", nil))
	}
	if got, want := h.Dropped(), uint64(published-buffer); got != want {
		t.Fatalf("Dropped() = %d, want %d", got, want)
	}
	close(release)

	m := c.next()
	if m.Type != TypeLagged || m.Dropped != published-buffer {
		t.Fatalf("got %s, want a lagged notice with dropped %d", m.raw, published-buffer)
	}
	for _, want := range ids[published-buffer:] {
		if got := c.next().label(); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	// No drops since: no notice before the next message.
	h.Publish(event("p", "z", "error", "", nil))
	if got := c.next().label(); got != "z" {
		t.Errorf("got %s, want z with no lagged notice", got)
	}
}

// TestLag announces messages lost before the hub (on the way from another
// node) to the project's subscribers, and to no one else.
func TestLag(t *testing.T) {
	h, srv := startHub(t, Config{})
	c := dial(t, srv, "p", "")
	other := dial(t, srv, "q", "")
	h.Lag("p", 7)
	h.Lag("p", 3)
	h.Lag("q", 0)
	h.Publish(event("p", "e1", "error", "", nil))
	h.Publish(event("q", "e2", "error", "", nil))
	if m := c.next(); m.Type != TypeLagged || m.Dropped != 10 {
		t.Fatalf("got %s, want a lagged notice with dropped 10", m.raw)
	}
	if got := c.next().label(); got != "e1" {
		t.Errorf("got %s, want e1", got)
	}
	if got := other.next().label(); got != "e2" {
		t.Errorf("subscriber of another project got %s, want e2 and no notice", got)
	}
}

// TestStalledSubscriber checks that a subscriber that stops reading costs
// neither Publish nor the other subscribers anything, and is disconnected
// once a write has blocked for WriteTimeout.
func TestStalledSubscriber(t *testing.T) {
	// WriteTimeout is long enough for the drops to pile up first, even on
	// a loaded machine.
	const writeTimeout = 10 * time.Second
	h, srv := startHub(t, Config{BufferSize: 8, WriteTimeout: writeTimeout})
	dial(t, srv, "p", "") // never reads
	live := dial(t, srv, "p", "")
	body := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	// In lock step with the live client, until the stalled one's socket
	// buffers are full and its queue has overflowed a few times over.
	for i := 0; h.Dropped() < 20; i++ {
		if i == 2000 {
			t.Fatalf("after %d messages of 64 KiB only %d dropped", i, h.Dropped())
		}
		m, err := NewMessage("p", TypeEvent, struct {
			ID   int             `json:"id"`
			Body json.RawMessage `json:"body"`
		}{i, body})
		if err != nil {
			t.Fatal(err)
		}
		h.Publish(m)
		live.conn.SetReadDeadline(time.Now().Add(testTimeout))
		_, got, err := live.conn.ReadMessage()
		if err != nil {
			t.Fatalf("live client, message %d: %v", i, err)
		}
		if want := `{"type":"event","id":` + strconv.Itoa(i) + `,`; !strings.HasPrefix(string(got), want) {
			t.Fatalf("live client got %.40s, want %s…", got, want)
		}
	}
	// Its blocked write started before the drops: it times out within
	// writeTimeout from now.
	for deadline := time.Now().Add(writeTimeout + 10*time.Second); h.Subscribers() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers %v after the drops, want the stalled one disconnected", h.Subscribers(), writeTimeout+10*time.Second)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPingKeepsLiveClient(t *testing.T) {
	// Long enough that a pause of the test process (race detector,
	// garbage collector, a loaded machine) does not miss PongWait.
	const interval, wait = 200 * time.Millisecond, 2 * time.Second
	h, srv := startHub(t, Config{PingInterval: interval, PongWait: wait})
	c := dial(t, srv, "p", "")
	pings := make(chan struct{}, 100)
	c.conn.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.conn.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	// 25 pings span at least 25 × 200 ms = 2.5 × PongWait.
	for i := range 25 {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("connection ended after %d pings: %v", i, err)
		case <-time.After(testTimeout):
			t.Fatalf("timed out after %d pings", i)
		}
	}
	if got := h.Subscribers(); got != 1 {
		t.Errorf("Subscribers() = %d, want 1", got)
	}
}

func TestReapsUnresponsiveClient(t *testing.T) {
	const interval, wait = 20 * time.Millisecond, 100 * time.Millisecond
	h, srv := startHub(t, Config{PingInterval: interval, PongWait: wait})
	start := time.Now()
	c := dial(t, srv, "p", "")
	pings := 0
	c.conn.SetPingHandler(func(string) error { pings++; return nil }) // never answers
	var err error
	for err == nil {
		_, err = c.read()
	}
	elapsed := time.Since(start)
	if pings == 0 {
		t.Errorf("got no pings before the connection ended (%v)", err)
	}
	if elapsed < wait {
		t.Errorf("disconnected after %v, before PongWait %v", elapsed, wait)
	}
	waitFor(t, "the subscriber to be removed", func() bool { return h.Subscribers() == 0 })
}

func TestClose(t *testing.T) {
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHub(t, h)
	clients := []*client{dial(t, srv, "a", ""), dial(t, srv, "a", ""), dial(t, srv, "b", "")}

	// Clients answer the close frame while reading.
	errs := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			for {
				if _, _, err := c.conn.ReadMessage(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range clients {
		err := <-errs
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("client got %v, want close 1001", err)
		}
	}
	if got := h.Subscribers(); got != 0 {
		t.Errorf("Subscribers() after Close = %d, want 0", got)
	}

	_, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, "a", ""), nil)
	if err == nil {
		t.Fatal("dial after Close succeeded")
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("dial after Close: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	h.Publish(event("a", "late", "error", "", nil)) // harmless
}

// TestCloseDeadline checks that Close gives up on a client that never
// answers the close frame once ctx is done, and cuts it off.
func TestCloseDeadline(t *testing.T) {
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHub(t, h)
	dial(t, srv, "p", "") // never reads, so never answers
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	waitFor(t, "the subscriber to be cut off", func() bool { return h.Subscribers() == 0 })
}

func TestConfig(t *testing.T) {
	h, err := New(Config{PingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if h.cfg.PongWait != 2*time.Second || h.cfg.BufferSize != DefaultBufferSize || h.cfg.WriteTimeout != DefaultWriteTimeout || h.cfg.MaxMessageSize != DefaultMaxMessageSize {
		t.Errorf("defaults not applied: %+v", h.cfg)
	}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative buffer", Config{BufferSize: -1}, "buffer size"},
		{"pong wait too short", Config{PingInterval: time.Second, PongWait: time.Second}, "pong wait"},
		{"negative timeout", Config{WriteTimeout: -1}, "write timeout"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error about %s", tt.name, err, tt.want)
		}
	}
}
