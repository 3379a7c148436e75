package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
)

// runStream prints a project's live stream, one JSON message per line:
//
//	mesher stream -project my-app -key msk_… [-url http://127.0.0.1:8080] [-level error,fatal]
func runStream(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://"+envOr(getenv, "MESHER_HTTP_ADDR", "127.0.0.1:8080"), "node URL")
	project := fs.String("project", "", "project id or slug (required)")
	key := fs.String("key", getenv("MESHER_KEY"), "project key or admin token ($MESHER_KEY)")
	levels := fs.String("level", "", "comma-separated levels to receive (default all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *project == "" || *key == "" {
		return errors.New("stream: -project and -key are required")
	}
	u, err := url.Parse(*base)
	if err != nil {
		return fmt.Errorf("stream: -url: %w", err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/api/v1/projects/" + url.PathEscape(*project) + "/stream"
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u.String(), http.Header{"Authorization": {"Bearer " + *key}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("stream: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return fmt.Errorf("stream: %w", err)
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		conn.Close()
	}()
	if *levels != "" {
		f := map[string]any{"filters": map[string]any{"level": strings.Split(*levels, ",")}}
		if err := conn.WriteJSON(f); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				return nil
			}
			return fmt.Errorf("stream: %w", err)
		}
		var compact json.RawMessage = msg
		fmt.Fprintf(stdout, "%s\n", compact)
	}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
