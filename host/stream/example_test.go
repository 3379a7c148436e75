package stream_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

func Example() {
	hub, err := stream.New(stream.Config{})
	if err != nil {
		panic(err)
	}
	defer hub.Close(context.Background())
	// The HTTP layer authenticates, then hands the request to the hub.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.ServeWS(w, r, "p1")
	}))
	defer srv.Close()

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"?level=error", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	// Ingestion, for every stored event:
	for _, level := range []string{"info", "error"} {
		m, err := stream.EventMessage(&store.Event{ID: level + "-1", ProjectID: "p1", IssueID: 7, Level: level, Title: "boom"})
		if err != nil {
			panic(err)
		}
		hub.Publish(m)
	}

	_, msg, err := conn.ReadMessage()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.62s…\n", msg)
	fmt.Println(hub.Subscribers(), "subscriber")
	// Output:
	// {"type":"event","id":"error-1","project_id":"p1","issue_id":7,…
	// 1 subscriber
}
