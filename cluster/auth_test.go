package cluster

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	alice := newSigner("alice", testCookie, clock)
	server := newSigner("server", testCookie, clock)
	body := []byte(`{"events":[1,2,3]}`)

	newReq := func() *http.Request {
		r, _ := http.NewRequest("POST", "http://10.0.0.2:8080/internal/v1/forward?b=2&a=1", bytes.NewReader(body))
		return r
	}
	signed := func(s signer, at time.Time) *http.Request {
		r := newReq()
		s.now = func() time.Time { return at }
		s.sign(r, body)
		return r
	}
	tests := []struct {
		name    string
		req     func() *http.Request
		body    []byte
		wantErr string
	}{
		{"valid", func() *http.Request { return signed(alice, now) }, body, ""},
		{"clock skew within window", func() *http.Request { return signed(alice, now.Add(-AuthWindow+time.Second)) }, body, ""},
		{"query reordered", func() *http.Request {
			r := signed(alice, now)
			r.URL.RawQuery = "a=1&b=2"
			return r
		}, body, ""},
		{"other cookie", func() *http.Request {
			return signed(newSigner("alice", "another-cookie-0123456789", clock), now)
		}, body, "bad signature"},
		{"body changed", func() *http.Request { return signed(alice, now) }, []byte(`{"events":[1,2,4]}`), "bad signature"},
		{"path changed", func() *http.Request {
			r := signed(alice, now)
			r.URL.Path = "/internal/v1/spawn"
			return r
		}, body, "bad signature"},
		{"query changed", func() *http.Request {
			r := signed(alice, now)
			r.URL.RawQuery = "a=1&b=3"
			return r
		}, body, "bad signature"},
		{"method changed", func() *http.Request {
			r := signed(alice, now)
			r.Method = "PUT"
			return r
		}, body, "bad signature"},
		{"other host", func() *http.Request {
			r := signed(alice, now)
			r.Host = "10.0.0.3:8080"
			return r
		}, body, "bad signature"},
		{"node renamed", func() *http.Request {
			r := signed(alice, now)
			r.Header.Set(HeaderNode, "mallory")
			return r
		}, body, "bad signature"},
		{"too old", func() *http.Request { return signed(alice, now.Add(-AuthWindow-time.Second)) }, body, "timestamp"},
		{"from the future", func() *http.Request { return signed(alice, now.Add(AuthWindow+time.Second)) }, body, "timestamp"},
		{"unsigned", newReq, body, "missing"},
		{"garbage signature", func() *http.Request {
			r := signed(alice, now)
			r.Header.Set(HeaderSignature, "zz")
			return r
		}, body, "bad signature"},
		{"bad node name", func() *http.Request {
			r := signed(alice, now)
			r.Header.Set(HeaderNode, "a b")
			return r
		}, body, "node name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			if r.Host == "" {
				r.Host = r.URL.Host // as a server sees it
			}
			peer, err := server.verify(r, tt.body)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr == "" && peer != "alice":
				t.Errorf("peer %q, want alice", peer)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKeysDiffer(t *testing.T) {
	if bytes.Equal(deriveKey(testCookie, gossipKeyLabel), deriveKey(testCookie, authKeyLabel)) {
		t.Error("gossip and auth keys are equal")
	}
	if bytes.Equal(deriveKey(testCookie, gossipKeyLabel), deriveKey(testCookie+"x", gossipKeyLabel)) {
		t.Error("two cookies give the same key")
	}
	if n := len(deriveKey(testCookie, gossipKeyLabel)); n != 32 {
		t.Errorf("key is %d bytes, want 32", n)
	}
}

// TestClientAndRequireNode sends requests through Client to a server
// wrapped by RequireNode.
func TestClientAndRequireNode(t *testing.T) {
	a := startNode(t, testConfig("node-a", 1))
	b := startNode(t, testConfig("node-b", 2))
	var mu sync.Mutex
	var gotBody string
	srv := httptest.NewServer(b.RequireNode(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := PeerFromContext(r.Context())
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		gotBody = string(data)
		mu.Unlock()
		if !ok {
			http.Error(w, "no peer", 500)
			return
		}
		io.WriteString(w, peer)
	})))
	defer srv.Close()

	tests := []struct {
		name       string
		do         func() (*http.Response, error)
		wantStatus int
		wantBody   string
	}{
		{"signed GET", func() (*http.Response, error) { return a.Client().Get(srv.URL + "/internal/v1/x?q=1") }, 200, "node-a"},
		{"signed POST", func() (*http.Response, error) {
			return a.Client().Post(srv.URL+"/internal/v1/x", "application/json", strings.NewReader(`{"a":1}`))
		}, 200, "node-a"},
		{"unsigned", func() (*http.Response, error) { return http.Get(srv.URL + "/internal/v1/x") }, 401, `{"error":"node auth: missing`},
		{"too large", func() (*http.Response, error) {
			return a.Client().Post(srv.URL+"/internal/v1/x", "application/octet-stream", bytes.NewReader(make([]byte, MaxSignedBody+1)))
		}, 413, `{"error":"request body over`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(string(body), tt.wantBody) {
				t.Errorf("got %d %q, want %d %q…", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if gotBody != `{"a":1}` {
		t.Errorf("handler read body %q, want the posted one", gotBody)
	}
}
