package ingest

import (
	"math"
	"sync"
	"time"
)

// RateLimiter is a token bucket per key (a project): each holds up to Burst
// tokens and refills at Rate tokens per second, so a client that stops
// sending gets its full burst back after Burst/Rate seconds.
type RateLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter reading time from now (nil: time.Now).
func NewRateLimiter(now func() time.Time) *RateLimiter {
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{now: now, buckets: map[string]*bucket{}}
}

// Allow takes n tokens from key's bucket if it has them. Otherwise it takes
// nothing and returns how long until n tokens will be there (at least one
// second, since Retry-After counts whole seconds). rate <= 0 means no limit.
// A request for more than burst tokens can never pass, so it is judged
// against a full bucket: it passes only when the bucket is full.
func (l *RateLimiter) Allow(key string, n int, rate float64, burst int) (bool, time.Duration) {
	if rate <= 0 {
		return true, 0
	}
	if burst < 1 {
		burst = int(math.Ceil(rate))
	}
	need := math.Min(float64(n), float64(burst))
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(burst), last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+elapsed*rate)
		b.last = now
	}
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	wait := time.Duration((need - b.tokens) / rate * float64(time.Second))
	return false, max(wait, time.Second)
}
