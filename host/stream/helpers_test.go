package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host/store"
)

// testTimeout bounds every wait in the tests; nothing should come close.
const testTimeout = 10 * time.Second

// startHub returns a hub behind an httptest server that routes
// /projects/{project}/stream to ServeWS. Both are shut down when the test
// ends.
func startHub(t testing.TB, cfg Config) (*Hub, *httptest.Server) {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, serveHub(t, h)
}

// serveHub puts h behind an httptest server, like startHub.
func serveHub(t testing.TB, h *Hub) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /projects/{project}/stream", func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, r.PathValue("project"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close hub: %v", err)
		}
		srv.Close()
	})
	return srv
}

func streamURL(srv *httptest.Server, project, query string) string {
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/projects/" + project + "/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

// client is a test subscriber.
type client struct {
	t    testing.TB
	conn *websocket.Conn
}

// dial connects a subscriber of project. Once it returns, the hub has
// registered the subscriber (ServeWS registers before answering the
// handshake).
func dial(t testing.TB, srv *httptest.Server, project, query string) *client {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, project, query), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", project, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn}
}

// received is any server message, decoded loosely.
type received struct {
	Type    string   `json:"type"`
	ID      any      `json:"id"`
	Action  string   `json:"action"`
	Dropped int      `json:"dropped"`
	Error   string   `json:"error"`
	Filters *Filters `json:"filters"`
	raw     []byte
}

// label names a message for comparisons: an event's id, "issue:<id>", or
// the type of anything else.
func (m received) label() string {
	switch m.Type {
	case TypeEvent:
		return fmt.Sprint(m.ID)
	case TypeIssue:
		return fmt.Sprintf("issue:%v", m.ID)
	}
	return m.Type
}

// next reads one message, failing the test after testTimeout.
func (c *client) next() received {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) read() (received, error) {
	c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		return received{}, err
	}
	var m received
	if err := json.Unmarshal(data, &m); err != nil {
		return received{}, fmt.Errorf("decode %s: %w", data, err)
	}
	m.raw = data
	return m, nil
}

// until reads messages up to and including one of type typ and returns the
// labels of those before it.
func (c *client) until(typ string) []string {
	c.t.Helper()
	var labels []string
	for {
		m := c.next()
		if m.Type == typ {
			return labels
		}
		labels = append(labels, m.label())
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// setFilters sends a filters message and returns the acknowledgement.
func (c *client) setFilters(filters string) received {
	c.t.Helper()
	c.send(`{"filters":` + filters + `}`)
	m := c.next()
	if m.Type != TypeFiltersUpdated {
		c.t.Fatalf("after filters %s got %s, want %s", filters, m.raw, TypeFiltersUpdated)
	}
	return m
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func event(project, id, level, env string, tags map[string]string) Message {
	m, err := EventMessage(&store.Event{
		ID: id, ProjectID: project, Level: level, Environment: env, Tags: tags,
		Title: "boom " + id, Body: json.RawMessage(`{"message":"boom"}`),
	})
	if err != nil {
		panic(err)
	}
	return m
}

func issue(project string, id int64, action, level string) Message {
	m, err := IssueMessage(action, &store.Issue{ID: id, ProjectID: project, Level: level, Status: store.StatusUnresolved})
	if err != nil {
		panic(err)
	}
	return m
}

// marker returns a message of type typ that passes every filter, to mark
// the end of a sequence.
func marker(project, typ string) Message {
	m, err := NewMessage(project, typ, struct{}{})
	if err != nil {
		panic(err)
	}
	return m
}
