package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// Events returns n new events of project projectID, each about 1 KB of
// JSON like an SDK sends (an exception with a stack trace, tags, contexts),
// spread over the given number of fingerprints and received at received.
// Benchmarks of both backends commit them.
func Events(projectID string, n, fingerprints int, received time.Time) []*store.Event {
	out := make([]*store.Event, n)
	for i := range out {
		g := i % fingerprints
		id := NewID()
		fp := sha256.Sum256(fmt.Appendf(nil, "fingerprint-%d", g))
		msg := fmt.Sprintf("Cannot read properties of undefined (reading 'field%d')", g)
		ts := received.Add(-time.Duration(i) * time.Millisecond)
		body := map[string]any{
			"event_id":  id,
			"timestamp": ts.Format(time.RFC3339Nano),
			"level":     "error",
			"platform":  "javascript",
			"logger":    "console",
			"message":   msg,
			"exception": map[string]any{"values": []any{map[string]any{
				"type":  "TypeError",
				"value": msg,
				"stacktrace": map[string]any{"frames": []any{
					map[string]any{"filename": "app:///static/js/main.4f2a1c.js", "function": "renderCheckout", "lineno": 1042, "colno": 17, "in_app": true},
					map[string]any{"filename": "app:///static/js/vendor.9b81e0.js", "function": "commitRoot", "lineno": 20931, "colno": 5},
					map[string]any{"filename": "app:///static/js/vendor.9b81e0.js", "function": "performSyncWorkOnRoot", "lineno": 20514, "colno": 9},
				}},
			}}},
			"tags": map[string]string{"browser": "Chrome 126", "os": "Windows 11", "url": "/checkout", "shard": fmt.Sprint(i % 8)},
			"contexts": map[string]any{
				"browser": map[string]any{"name": "Chrome", "version": "126.0.6478.127"},
				"os":      map[string]any{"name": "Windows", "version": "11"},
			},
			"user":    map[string]any{"id": fmt.Sprint(1000 + i%97), "ip_address": "203.0.113.7"},
			"request": map[string]any{"url": "https://shop.example.com/checkout?step=2", "method": "GET"},
			"release": "web@2.14.1",
		}
		raw, _ := json.Marshal(body)
		out[i] = &store.Event{
			ID: id, ProjectID: projectID, Fingerprint: hex.EncodeToString(fp[:]),
			Title: "TypeError: " + msg, Level: "error", Message: msg,
			Environment: "production", Release: "web@2.14.1",
			Tags:      map[string]string{"browser": "Chrome 126", "os": "Windows 11", "url": "/checkout", "shard": fmt.Sprint(i % 8)},
			Timestamp: ts, ReceivedAt: received, Body: raw,
		}
	}
	return out
}
