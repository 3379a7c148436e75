package stream

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host/store"
)

// fanout is what BenchmarkFanout compares: this package's hub and a bare
// one.
type fanout interface {
	http.Handler
	publish(e *store.Event)
	subscribers() int
}

// BenchmarkFanout measures delivery to 1,000 subscribers, real loopback
// WebSocket clients in a child process reading as fast as they can, from
// this package's hub and from a minimal gorilla/websocket hub, in the same
// run. Each op publishes fanoutMessages events (encoded once each) and
// waits until every client has read them. It reports messages delivered
// per second, the server memory (heap + stack) per idle subscriber, and,
// on the bare line, the hub's rate divided by the bare one's.
func BenchmarkFanout(b *testing.B) {
	const subs = 1000
	results := map[string]float64{}
	for _, impl := range []struct {
		name string
		new  func(testing.TB) fanout
	}{
		{"hub", newHubFanout},
		{"bare", newBareFanout},
	} {
		b.Run(impl.name, func(b *testing.B) {
			f := impl.new(b)
			srv := httptest.NewServer(f)
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")
			fl, heap, stack := perSubscriber(b, url, subs, f.subscribers)
			defer fl.stop()

			events := make([]*store.Event, fanoutMessages)
			for i := range events {
				events[i] = benchEvent(i)
			}
			end := &store.Event{ID: "end"}
			b.ResetTimer()
			delivered := 0
			for range b.N {
				for _, e := range events {
					f.publish(e)
				}
				f.publish(end)
				delivered += fl.waitDone(b)
			}
			b.StopTimer()
			if want := b.N * fanoutMessages * subs; delivered != want {
				b.Errorf("delivered %d messages, want %d", delivered, want)
			}
			rate := float64(delivered) / b.Elapsed().Seconds()
			results[impl.name] = rate
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(heap+stack, "B/sub")
			if hub := results["hub"]; impl.name == "bare" && hub > 0 {
				b.ReportMetric(hub/rate, "hub/bare")
			}
		})
	}
}

// fanoutMessages per op: fewer than either hub's per-subscriber buffer,
// so that neither drops anything.
const fanoutMessages = 200

func benchEvent(i int) *store.Event {
	return &store.Event{
		ID: "evt-" + strconv.Itoa(i), ProjectID: "p", IssueID: int64(i % 10),
		Fingerprint: strings.Repeat("f", 64), Title: "TypeError: x is undefined", Level: "error",
		Environment: "production", Release: "1.2.3", Tags: map[string]string{"region": "eu", "browser": "firefox"},
		Body: json.RawMessage(`{"message":"TypeError: x is undefined","stacktrace":[{"file":"app.js","line":42},{"file":"lib.js","line":7}]}`),
	}
}

type hubFanout struct{ *Hub }

func newHubFanout(tb testing.TB) fanout {
	h, err := New(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(tb.Context()) })
	return hubFanout{h}
}

func (h hubFanout) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.ServeWS(w, r, "p") }

func (h hubFanout) publish(e *store.Event) {
	if e.ID == "end" {
		h.Publish(marker("p", "end"))
		return
	}
	m, err := EventMessage(e)
	if err != nil {
		panic(err)
	}
	h.Publish(m)
}

func (h hubFanout) subscribers() int { return h.Subscribers() }

// bareFanout is the minimal gorilla/websocket hub of the examples: a map
// of connections, a goroutine per connection with a buffered channel, and
// WriteMessage.
type bareFanout struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	conns    map[*websocket.Conn]chan []byte
}

func newBareFanout(testing.TB) fanout {
	return &bareFanout{conns: map[*websocket.Conn]chan []byte{}}
}

func (h *bareFanout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	send := make(chan []byte, DefaultBufferSize)
	h.mu.Lock()
	h.conns[conn] = send
	h.mu.Unlock()
	go func() {
		for b := range send {
			if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
				conn.Close()
				return
			}
		}
	}()
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	h.mu.Lock()
	delete(h.conns, conn)
	close(send)
	h.mu.Unlock()
	conn.Close()
}

func (h *bareFanout) publish(e *store.Event) {
	var b []byte
	if e.ID == "end" {
		b = []byte(`{"type":"end"}`)
	} else {
		var err error
		if b, err = json.Marshal(e); err != nil {
			panic(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, send := range h.conns {
		select {
		case send <- b:
		default: // full: drop
		}
	}
}

func (h *bareFanout) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// BenchmarkPublish measures what Publish costs ingestion with 1,000
// subscribers of the project whose writers do not run (so queues stay
// full and every offer also drops one).
func BenchmarkPublish(b *testing.B) {
	h, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		h.add(newSubscriber(h, "p", nil))
	}
	m, err := EventMessage(benchEvent(1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(m)
	}
}
