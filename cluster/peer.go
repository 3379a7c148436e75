package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The node-to-node API, served by every node under /internal/v1/ and
// signed (see auth.go):
//
//	GET  /internal/v1/modules/{sha}          the module's bytes
//	POST /internal/v1/spawn                  {"processor","sha256"} → {"id"}
//	POST /internal/v1/retire                 {"id"}
//	POST /internal/v1/process?id=&count=     settingsLen:u32 settings input → output records
//	POST /internal/v1/stream                 [StreamMessage…]
//
// Batches travel as ABI records in both directions, so forwarding adds no
// encoding of its own.

// PeerHandler returns the handler of the node-to-node API for host,
// already wrapped in RequireNode. Mount it at /internal/v1/ on the node's
// HTTP server.
func (c *Cluster) PeerHandler(h Host) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/v1/modules/{sha}", func(w http.ResponseWriter, r *http.Request) {
		b, err := h.Module(r.Context(), r.PathValue("sha"))
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, ErrUnknownModule) {
				status = http.StatusNotFound
			}
			writeError(w, status, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/wasm")
		w.Write(b)
	})
	mux.HandleFunc("POST /internal/v1/spawn", func(w http.ResponseWriter, r *http.Request) {
		var req spawnRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Processor == "" || len(req.SHA256) != 64 {
			writeError(w, http.StatusBadRequest, "spawn: want {\"processor\", \"sha256\"}")
			return
		}
		from, _ := PeerFromContext(r.Context())
		fetch := func(ctx context.Context) ([]byte, error) { return c.fetchModule(ctx, from, req.SHA256) }
		start := time.Now()
		id, err := h.Spawn(r.Context(), req.Processor, req.SHA256, fetch)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		c.log.Info("spawned an instance for a peer", "processor", req.Processor, "for", from, "id", id, "took", time.Since(start))
		writeJSON(w, spawnResponse{ID: id})
	})
	mux.HandleFunc("POST /internal/v1/retire", func(w http.ResponseWriter, r *http.Request) {
		var req retireRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID == "" {
			writeError(w, http.StatusBadRequest, "retire: want {\"id\"}")
			return
		}
		if err := h.Retire(r.Context(), req.ID); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /internal/v1/process", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		count, err := strconv.Atoi(q.Get("count"))
		body, rerr := io.ReadAll(r.Body)
		if err != nil || rerr != nil || len(body) < 4 || q.Get("id") == "" {
			writeError(w, http.StatusBadRequest, "process: want ?id=&count= and a settings-prefixed batch")
			return
		}
		n := binary.LittleEndian.Uint32(body)
		if uint64(n) > uint64(len(body)-4) {
			writeError(w, http.StatusBadRequest, "process: settings length exceeds the body")
			return
		}
		out, err := h.Process(r.Context(), q.Get("id"), body[4:4+n], body[4+n:], count)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, ErrUnknownInstance) {
				status = http.StatusGone
			}
			writeError(w, status, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(out)
	})
	mux.HandleFunc("POST /internal/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		var msgs []StreamMessage
		if err := json.NewDecoder(r.Body).Decode(&msgs); err != nil {
			writeError(w, http.StatusBadRequest, "stream: want a JSON array of messages")
			return
		}
		h.Publish(msgs)
		w.WriteHeader(http.StatusNoContent)
	})
	return c.RequireNode(mux)
}

type spawnRequest struct {
	Processor string `json:"processor"`
	SHA256    string `json:"sha256"`
}

type spawnResponse struct {
	ID string `json:"id"`
}

type retireRequest struct {
	ID string `json:"id"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// call sends a signed request to a member and returns the response body,
// or an error with the member's message for any status but 2xx.
func (c *Cluster) call(ctx context.Context, to, method, path string, body []byte) ([]byte, int, error) {
	m, ok := c.Member(to)
	if !ok || !m.State.Up() {
		return nil, 0, fmt.Errorf("node %s is not an alive member", to)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.URL(path), bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s on %s: %w", method, path, to, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s on %s: read answer: %w", method, path, to, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		return nil, resp.StatusCode, fmt.Errorf("%s %s on %s: %d %s", method, path, to, resp.StatusCode, e.Error)
	}
	return b, resp.StatusCode, nil
}

// fetchModule gets a module's bytes from a node and checks their hash.
func (c *Cluster) fetchModule(ctx context.Context, from, sha string) ([]byte, error) {
	b, _, err := c.call(ctx, from, http.MethodGet, "/internal/v1/modules/"+url.PathEscape(sha), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch module %.12s: %w", sha, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return nil, fmt.Errorf("fetch module %.12s from %s: bytes hash to %.12s", sha, from, got)
	}
	return b, nil
}

// Spawn asks a peer to start an instance of a processor version for this
// node and returns the instance's id. The peer fetches the module from
// this node if it lacks it.
func (c *Cluster) Spawn(ctx context.Context, peer, name, sha string) (string, error) {
	body, _ := json.Marshal(spawnRequest{Processor: name, SHA256: sha})
	b, _, err := c.call(ctx, peer, http.MethodPost, "/internal/v1/spawn", body)
	if err != nil {
		return "", fmt.Errorf("spawn %s: %w", name, err)
	}
	var resp spawnResponse
	if err := json.Unmarshal(b, &resp); err != nil || resp.ID == "" {
		return "", fmt.Errorf("spawn %s on %s: bad answer %q", name, peer, b)
	}
	return resp.ID, nil
}

// Retire asks a peer to stop an instance it runs for this node.
func (c *Cluster) Retire(ctx context.Context, peer, id string) error {
	body, _ := json.Marshal(retireRequest{ID: id})
	_, _, err := c.call(ctx, peer, http.MethodPost, "/internal/v1/retire", body)
	return err
}

// errGone reports that a peer no longer has the instance a batch named.
var errGone = errors.New("instance gone")

// ProcessOn runs a batch on an instance another node runs and returns the
// output records.
func (c *Cluster) ProcessOn(ctx context.Context, peer, id string, settings, input []byte, count int) ([]byte, error) {
	body := make([]byte, 4, 4+len(settings)+len(input))
	binary.LittleEndian.PutUint32(body, uint32(len(settings)))
	body = append(append(body, settings...), input...)
	path := "/internal/v1/process?id=" + url.QueryEscape(id) + "&count=" + strconv.Itoa(count)
	out, status, err := c.call(ctx, peer, http.MethodPost, path, body)
	if status == http.StatusGone {
		return nil, fmt.Errorf("%w: %w", errGone, err)
	}
	return out, err
}
