package stream

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHammer publishes from many goroutines while subscribers come and go
// and change filters. Run it with -race. Subscribers present from start to
// end must account for every message of their project, delivered or
// reported dropped, each publisher's messages in order.
func TestHammer(t *testing.T) {
	const (
		projects   = 3
		publishers = 6
		stayers    = 2 // per project, for the whole run
		churners   = 4
		minChurn   = 100 // connections opened and closed while publishing
		maxSeq     = 100_000
	)
	h, srv := startHub(t, Config{BufferSize: 16})
	project := func(i int) string { return fmt.Sprintf("p%d", i) }
	churned.Store(0)

	// Stayers read until the end marker, then check their count against
	// the total, known once the publishers are done.
	published := make([]int, projects)
	done := make(chan struct{})
	var stayerWG sync.WaitGroup
	for p := range projects {
		for range stayers {
			c := dial(t, srv, project(p), "")
			stayerWG.Add(1)
			go func() {
				defer stayerWG.Done()
				got, err := account(c, publishers)
				<-done
				if err == nil && got != published[p] {
					err = fmt.Errorf("project %s: accounted for %d messages, want %d", project(p), got, published[p])
				}
				if err != nil {
					t.Error(err)
				}
			}()
		}
	}

	stop := make(chan struct{})
	var churnWG sync.WaitGroup
	for i := range churners {
		churnWG.Add(1)
		go func() {
			defer churnWG.Done()
			churn(t, srv, project(i%projects), i, stop)
		}()
	}

	// Publisher w sends message j to project j % projects, until the
	// churners have done enough.
	counts := make([][]int, publishers)
	var pubWG sync.WaitGroup
	for w := range publishers {
		counts[w] = make([]int, projects)
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			for j := 0; j < maxSeq && churned.Load() < minChurn; j++ {
				level := []string{"info", "error"}[j%2]
				m, err := NewMessage(project(j%projects), TypeEvent, map[string]any{"w": w, "seq": j, "level": level})
				if err != nil {
					panic(err)
				}
				m.Level = level
				h.Publish(m)
				counts[w][j%projects]++
				if j%50 == 0 {
					h.Subscribers()
					h.ProjectSubscribers(project(j % projects))
					runtime.Gosched()
				}
			}
		}()
	}
	pubWG.Wait()
	for w := range publishers {
		for p := range projects {
			published[p] += counts[w][p]
		}
	}
	close(done)
	for p := range projects {
		h.Publish(marker(project(p), "end"))
	}
	stayerWG.Wait()
	close(stop)
	churnWG.Wait()
	t.Logf("published %v, dropped %d, churned %d connections", published, h.Dropped(), churned.Load())
	waitFor(t, "churners to leave", func() bool { return h.Subscribers() == projects*stayers })
}

// account reads until the end marker and returns how many messages were
// delivered or reported dropped, checking each publisher's order.
func account(c *client, publishers int) (int, error) {
	last := make([]int, publishers)
	for i := range last {
		last[i] = -1
	}
	got := 0
	for {
		c.conn.SetReadDeadline(time.Now().Add(testTimeout))
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return got, fmt.Errorf("after %d messages: %w", got, err)
		}
		var m struct {
			Type    string `json:"type"`
			Dropped int    `json:"dropped"`
			W, Seq  int
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return got, err
		}
		switch m.Type {
		case "end":
			return got, nil
		case TypeLagged:
			got += m.Dropped
		case TypeEvent:
			if m.Seq <= last[m.W] {
				return got, fmt.Errorf("publisher %d: message %d after %d", m.W, m.Seq, last[m.W])
			}
			last[m.W] = m.Seq
			got++
		default:
			return got, fmt.Errorf("unexpected message %s", data)
		}
	}
}

var churned atomic.Int64

// churn connects and disconnects subscribers until stop: some set a level
// filter and check that nothing else follows the acknowledgement, some read
// a little, some leave abruptly, some politely.
func churn(t *testing.T, srv *httptest.Server, project string, seed int, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(uint64(seed), 0))
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, _, err := websocket.DefaultDialer.Dial(streamURL(srv, project, ""), nil)
		if err != nil {
			t.Errorf("churn dial: %v", err)
			return
		}
		churned.Add(1)
		switch r.IntN(4) {
		case 0:
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"filters":{"level":["error"]}}`)); err != nil {
				t.Errorf("churn send filters: %v", err)
			}
			acked := false
			for i := 0; i < 20; i++ {
				conn.SetReadDeadline(time.Now().Add(testTimeout))
				if acked {
					conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				}
				_, data, err := conn.ReadMessage()
				if err != nil {
					if !acked {
						t.Errorf("churn: no acknowledgement: %v", err)
					}
					break
				}
				var m struct{ Type, Level string }
				json.Unmarshal(data, &m)
				switch {
				case m.Type == TypeFiltersUpdated:
					acked = true
				case acked && m.Type == TypeEvent && m.Level != "error":
					t.Errorf("churn: got %s after the level filter was acknowledged", data)
				}
			}
		case 1:
			for range r.IntN(10) {
				conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, _, err := conn.ReadMessage(); err != nil {
					break
				}
			}
		case 2:
			// leave abruptly
		case 3:
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			conn.SetReadDeadline(time.Now().Add(testTimeout))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					break
				}
			}
		}
		conn.Close()
	}
}
