package stream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// subscriber is one WebSocket connection. Its reader runs in ServeWS's
// goroutine, its writer in a goroutine of its own; only the writer writes
// messages (gorilla allows one writer; pings and close frames go through
// WriteControl, which may run concurrently).
type subscriber struct {
	hub     *Hub
	project string
	filters atomic.Pointer[Filters] // nil: everything passes
	conn    atomic.Pointer[websocket.Conn]

	wake       chan struct{} // capacity 1: the queue has messages
	replies    chan []byte   // reader to writer: answers to client messages
	done       chan struct{} // closed when the reader has stopped
	writerDone chan struct{} // closed when the writer has stopped
	writeErr   error         // why the writer stopped; read after writerDone

	mu sync.Mutex
	q  queue
}

func newSubscriber(h *Hub, project string, f *Filters) *subscriber {
	s := &subscriber{
		hub:        h,
		project:    project,
		wake:       make(chan struct{}, 1),
		replies:    make(chan []byte),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.filters.Store(f)
	return s
}

// push queues m, dropping the oldest queued message if the queue is full,
// and wakes the writer. It never blocks on the connection.
func (s *subscriber) push(m *Message) {
	s.mu.Lock()
	dropped := s.q.push(m, s.hub.cfg.BufferSize)
	s.mu.Unlock()
	if dropped {
		s.hub.dropped.Add(1)
	}
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run serves the connection until either side ends it and returns why.
func (s *subscriber) run(conn *websocket.Conn) error {
	s.conn.Store(conn)
	go s.write(conn)
	err := s.read(conn)
	close(s.done)
	<-s.writerDone
	conn.Close()
	if s.writeErr != nil {
		return s.writeErr
	}
	return err
}

// read handles client messages until the connection fails. Every message,
// and every pong, extends the read deadline by PongWait.
func (s *subscriber) read(conn *websocket.Conn) error {
	cfg := &s.hub.cfg
	conn.SetReadLimit(cfg.MaxMessageSize)
	alive := func() error { return conn.SetReadDeadline(time.Now().Add(cfg.PongWait)) }
	alive()
	conn.SetPongHandler(func(string) error { return alive() })
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		alive()
		var reply []byte
		if f, err := parseClientMessage(data); err != nil {
			reply = errorPayload(err)
		} else {
			// Stored before the writer sends the acknowledgement, and the
			// writer checks filters as it writes: every message after the
			// acknowledgement passes the new filters.
			s.filters.Store(f)
			reply = filtersUpdatedPayload(f)
		}
		select {
		case s.replies <- reply:
		case <-s.writerDone:
			return s.writeErr
		}
	}
}

// write sends queued messages, replies and pings until the reader stops,
// a write fails, or the hub closes.
func (s *subscriber) write(conn *websocket.Conn) {
	defer close(s.writerDone)
	fail := func(err error) {
		s.writeErr = err
		conn.Close() // stops the reader
	}
	cfg := &s.hub.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.hub.closing:
			s.goAway(conn)
			return
		case b := <-s.replies:
			if err := s.send(conn, b); err != nil {
				fail(err)
				return
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				fail(err)
				return
			}
		case <-s.wake:
			if err := s.flush(conn); err != nil {
				fail(err)
				return
			}
		}
	}
}

// flush writes the messages queued when it starts, each preceded by a
// lagged notice if messages were dropped before it. Stopping there lets
// pings and replies through under a constant stream; messages queued
// meanwhile have signalled wake again.
func (s *subscriber) flush(conn *websocket.Conn) error {
	if hook := s.hub.testHookFlush; hook != nil {
		hook()
	}
	s.mu.Lock()
	n := s.q.n
	s.mu.Unlock()
	for range n { // only the writer pops: n messages are there
		s.mu.Lock()
		m := s.q.pop()
		lagged := s.q.dropped
		s.q.dropped = 0
		s.mu.Unlock()
		if lagged > 0 {
			if err := s.send(conn, laggedPayload(lagged)); err != nil {
				return err
			}
		}
		if s.filters.Load().match(m) {
			if err := s.send(conn, m.Payload); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *subscriber) send(conn *websocket.Conn, b []byte) error {
	conn.SetWriteDeadline(time.Now().Add(s.hub.cfg.WriteTimeout))
	return conn.WriteMessage(websocket.TextMessage, b)
}

// goAway sends a close frame (1001, going away) and waits, at most
// WriteTimeout, for the client to answer it so that the connection ends
// cleanly on both sides.
func (s *subscriber) goAway(conn *websocket.Conn) {
	timeout := s.hub.cfg.WriteTimeout
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout)); err != nil {
		conn.Close()
		return
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.replies: // too late to answer
		case <-timer.C:
			conn.Close()
			return
		}
	}
}

// queue is a subscriber's bounded FIFO: a ring that grows up to its limit
// as needed, so that an idle subscriber holds no slots.
type queue struct {
	buf     []*Message
	head, n int
	dropped int // since the last lagged notice
}

const minQueueSlots = 8

// push appends m; if the queue holds limit messages it first drops the
// oldest and reports so.
func (q *queue) push(m *Message, limit int) (dropped bool) {
	if q.n == len(q.buf) {
		if len(q.buf) < limit {
			q.grow(limit)
		} else {
			q.buf[q.head] = nil
			q.head = (q.head + 1) % len(q.buf)
			q.n--
			q.dropped++
			dropped = true
		}
	}
	q.buf[(q.head+q.n)%len(q.buf)] = m
	q.n++
	return dropped
}

func (q *queue) grow(limit int) {
	size := min(limit, max(minQueueSlots, 2*len(q.buf)))
	buf := make([]*Message, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

// pop removes and returns the oldest message, or nil.
func (q *queue) pop() *Message {
	if q.n == 0 {
		return nil
	}
	m := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return m
}
