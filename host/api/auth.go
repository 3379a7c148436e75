package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// KeyPrefix starts every project key, so that leaked keys are easy to spot.
const KeyPrefix = "msk_"

// NewKey returns a new random key and the hex SHA-256 that is stored.
func NewKey() (key, hash string) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	key = KeyPrefix + hex.EncodeToString(b[:])
	return key, HashToken(key)
}

// HashToken returns the hex SHA-256 of a token or key.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// sentryKey returns sentry_key from an X-Sentry-Auth header.
func sentryKey(r *http.Request) string {
	h := r.Header.Get("X-Sentry-Auth")
	if h == "" {
		return ""
	}
	h = strings.TrimSpace(h)
	if len(h) >= 7 && strings.EqualFold(h[:7], "sentry ") {
		h = h[7:]
	}
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.TrimSpace(k) == "sentry_key" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// credential returns the key or token a request carries, and whether it
// came in the query string (allowed only where query is true).
func credential(r *http.Request, query bool) string {
	if t := bearer(r); t != "" {
		return t
	}
	if k := r.Header.Get("X-Mesher-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if k := sentryKey(r); k != "" {
		return k
	}
	if query {
		if k := r.URL.Query().Get("key"); k != "" {
			return k
		}
	}
	return ""
}

// isAdmin compares a token with the admin token's hash in constant time.
func (a *API) isAdmin(token string) bool {
	if token == "" || a.cfg.AdminTokenHash == "" {
		return false
	}
	got := HashToken(token)
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.AdminTokenHash)) == 1
}

// projectForKey authenticates a project key.
func (a *API) projectForKey(ctx context.Context, key string) (*store.Project, error) {
	if key == "" {
		return nil, errorf(http.StatusUnauthorized, "missing project key: send Authorization: Bearer <key>, X-Mesher-Key or X-Sentry-Auth")
	}
	k, p, err := a.keys.lookup(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errorf(http.StatusUnauthorized, "unknown project key")
	case err != nil:
		return nil, err
	case k.RevokedAt != nil:
		return nil, errorf(http.StatusUnauthorized, "project key was revoked")
	}
	return p, nil
}

// keyCache remembers key lookups for a few seconds, so that ingestion does
// not query the store for every request. Revocations through this node
// clear it at once; through another node they apply within the TTL.
type keyCache struct {
	store store.Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]keyEntry
}

type keyEntry struct {
	key     *store.APIKey
	project *store.Project
	expires time.Time
}

func newKeyCache(s store.Store, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{store: s, ttl: ttl, now: now, entries: map[string]keyEntry{}}
}

func (c *keyCache) lookup(ctx context.Context, key string) (*store.APIKey, *store.Project, error) {
	hash := HashToken(key)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, e.project, nil
	}
	k, err := c.store.APIKeyByHash(ctx, hash)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.store.Project(ctx, k.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if len(c.entries) > 10000 {
		clear(c.entries)
	}
	c.entries[hash] = keyEntry{key: k, project: p, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return k, p, nil
}

// forget drops every cached lookup (after a revocation or settings change).
func (c *keyCache) forget() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
