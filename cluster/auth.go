package cluster

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Node-to-node HTTP authentication. A request from a node carries its name,
// a timestamp and an HMAC-SHA256 over
//
//	"mesher-node-auth-v1", method, host, path, sorted query, node, timestamp, SHA-256(body)
//
// keyed with a key derived from the cookie. Only holders of the cookie can
// sign; a captured request is refused once its timestamp is AuthWindow
// away from the receiver's clock, or if sent to another node (the host is
// signed). Within the window it can be replayed to the same node by
// someone who can capture traffic, so node-to-node requests should be
// idempotent (event ids make them so) or run on a trusted network.
const (
	// HeaderNode names the calling node.
	HeaderNode = "X-Mesher-Node"
	// HeaderTime is the signing time, milliseconds since 1970.
	HeaderTime = "X-Mesher-Time"
	// HeaderSignature is the hex HMAC-SHA256 of the request.
	HeaderSignature = "X-Mesher-Signature"

	// AuthWindow is how far a signed request's timestamp may be from the
	// receiving node's clock.
	AuthWindow = 30 * time.Second

	// MaxSignedBody is the largest request body RequireNode accepts
	// (413 beyond); the body is read whole to check its hash.
	MaxSignedBody = 32 << 20
)

// Key derivation labels: the gossip key and the HMAC key are independent
// keys derived from the cookie with HKDF-SHA256.
const (
	gossipKeyLabel = "mesher gossip encryption v1"
	authKeyLabel   = "mesher node-to-node auth v1"
	authVersion    = "mesher-node-auth-v1"
)

// deriveKey derives a 32-byte key for one purpose from the cookie.
func deriveKey(cookie, label string) []byte {
	key, err := hkdf.Key(sha256.New, []byte(cookie), nil, label, 32)
	if err != nil {
		panic(err) // only for key lengths beyond 255 hashes
	}
	return key
}

// signer signs and verifies node-to-node requests.
type signer struct {
	name string
	key  []byte
	now  func() time.Time
}

func newSigner(name, cookie string, now func() time.Time) signer {
	return signer{name: name, key: deriveKey(cookie, authKeyLabel), now: now}
}

func (s *signer) mac(r *http.Request, host, node, ts string, body []byte) []byte {
	query := r.URL.RawQuery
	if v, err := url.ParseQuery(query); err == nil {
		query = v.Encode()
	}
	sum := sha256.Sum256(body)
	h := hmac.New(sha256.New, s.key)
	for _, part := range []string{authVersion, r.Method, strings.ToLower(host), r.URL.EscapedPath(), query, node, ts, hex.EncodeToString(sum[:])} {
		io.WriteString(h, part)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

func (s *signer) sign(req *http.Request, body []byte) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	ts := strconv.FormatInt(s.now().UnixMilli(), 10)
	req.Header.Set(HeaderNode, s.name)
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderSignature, hex.EncodeToString(s.mac(req, host, s.name, ts, body)))
}

// credentials checks the headers and the timestamp, before the body is
// read.
func (s *signer) credentials(r *http.Request) (node, ts string, err error) {
	node, ts = r.Header.Get(HeaderNode), r.Header.Get(HeaderTime)
	if node == "" || ts == "" || r.Header.Get(HeaderSignature) == "" {
		return "", "", errors.New("node auth: missing " + HeaderNode + ", " + HeaderTime + " or " + HeaderSignature)
	}
	if err := validNodeName(node); err != nil {
		return "", "", fmt.Errorf("node auth: node name %q: %w", node, err)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", "", fmt.Errorf("node auth: timestamp %q is not a number", ts)
	}
	if skew := s.now().Sub(time.UnixMilli(ms)); skew > AuthWindow || skew < -AuthWindow {
		return "", "", fmt.Errorf("node auth: timestamp is %v off, beyond %v", skew.Round(time.Second), AuthWindow)
	}
	return node, ts, nil
}

func (s *signer) verify(r *http.Request, body []byte) (string, error) {
	node, ts, err := s.credentials(r)
	if err != nil {
		return "", err
	}
	got, err := hex.DecodeString(r.Header.Get(HeaderSignature))
	if err != nil || !hmac.Equal(got, s.mac(r, r.Host, node, ts, body)) {
		return "", errors.New("node auth: bad signature")
	}
	return node, nil
}

// Sign adds this node's signature headers to req, whose body is body (nil
// for none). Client signs for you; Sign is for requests sent otherwise,
// such as a WebSocket dial (sign a GET request for the URL, then send its
// headers).
func (c *Cluster) Sign(req *http.Request, body []byte) { c.auth.sign(req, body) }

// Verify checks that r, whose body is body, was signed by a node holding
// the cluster's cookie within AuthWindow, and returns that node's name.
func (c *Cluster) Verify(r *http.Request, body []byte) (peer string, err error) {
	return c.auth.verify(r, body)
}

type peerKey struct{}

// PeerFromContext returns the calling node's name in a handler wrapped by
// RequireNode.
func PeerFromContext(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(peerKey{}).(string)
	return p, ok
}

// RequireNode wraps the node-to-node handlers (/internal/v1/…): it answers
// 401 to any request not signed by a cluster node, 413 to a body over
// MaxSignedBody, and otherwise calls next with the body buffered (r.Body
// can be read again) and the peer's name in the context (PeerFromContext).
func (c *Cluster) RequireNode(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refuse unsigned and stale requests before reading the body.
		if _, _, err := c.auth.credentials(r); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSignedBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxSignedBody))
				return
			}
			writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
			return
		}
		peer, err := c.auth.verify(r, body)
		if err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), peerKey{}, peer))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Client returns the HTTP client for calls to other nodes: it signs every
// request (buffering its body to hash it), keeps connections alive (up to
// 32 idle per peer), and bounds dialing (2 s) and the wait for response
// headers (30 s). It has no overall timeout: give each request a context
// deadline. Use Member.URL to build URLs.
func (c *Cluster) Client() *http.Client { return c.client }

func newClient(s *signer) *http.Client {
	return &http.Client{Transport: &signingTransport{s: s, base: &http.Transport{
		Proxy:                 nil, // node-to-node traffic never goes through a proxy
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}}
}

// signingTransport signs each request before sending it.
type signingTransport struct {
	s    *signer
	base *http.Transport
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body to sign: %w", err)
		}
		body = b
	}
	r := req.Clone(req.Context())
	if hasBody {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	t.s.sign(r, body)
	return t.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// base transport.
func (t *signingTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }
