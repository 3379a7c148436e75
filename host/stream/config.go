package stream

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for a zero [Config].
const (
	// DefaultBufferSize is how many messages may wait for one subscriber.
	// One commit publishes all of its events at once, and a bulk request
	// alone holds up to 1,000 of them: the queue must take a few such
	// bursts while the writer catches up, or a subscriber that keeps up on
	// average still loses events. Slots are 8 bytes, allocated only as a
	// queue grows, and messages are shared between subscribers, so an
	// idle subscriber costs nothing for it.
	DefaultBufferSize = 4096
	// DefaultWriteTimeout bounds one write to a subscriber. A client that
	// has taken nothing for this long is gone or hopeless.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPingInterval keeps connections alive through proxies and NATs
	// that drop connections idle for a minute or more.
	DefaultPingInterval = 30 * time.Second
	// DefaultPongWait tolerates one lost ping before a silent peer is
	// disconnected.
	DefaultPongWait = 2 * DefaultPingInterval
	// DefaultMaxMessageSize bounds a client message; filter messages are a
	// few hundred bytes.
	DefaultMaxMessageSize = 4 << 10
)

// Config configures a [Hub]. The zero value is usable: every zero field
// takes its default.
type Config struct {
	// BufferSize is how many messages may wait for one subscriber; when it
	// is full the oldest is dropped and the subscriber is told (see the
	// package doc). Default DefaultBufferSize.
	BufferSize int
	// WriteTimeout bounds each write (message, ping or close frame) to a
	// subscriber; one that takes longer disconnects it. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// PingInterval is how often a subscriber is pinged. Default
	// DefaultPingInterval.
	PingInterval time.Duration
	// PongWait is how long the hub waits to hear from a subscriber (a pong
	// or any message) before disconnecting it. It must be longer than
	// PingInterval, so a dead peer is reaped within PongWait of its last
	// answer and never later than PingInterval + PongWait after it went
	// silent. Default DefaultPongWait, or 2 × PingInterval if only
	// PingInterval is set.
	PongWait time.Duration
	// MaxMessageSize is the largest client message accepted, in bytes; a
	// larger one closes the connection (status 1009). Default
	// DefaultMaxMessageSize.
	MaxMessageSize int64
	// CheckOrigin decides whether a browser's cross-origin upgrade is
	// allowed. Nil allows every origin: subscribers authenticate with an
	// explicit project key (header or ?key=), never with cookies, so a
	// foreign page cannot ride on a user's credentials.
	CheckOrigin func(r *http.Request) bool
	// Logger receives connection-level diagnostics at debug level. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults, or an
// error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongWait == 0 {
		c.PongWait = 2 * c.PingInterval
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.CheckOrigin == nil {
		c.CheckOrigin = func(*http.Request) bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.BufferSize < 0:
		return c, errors.New("buffer size must not be negative")
	case c.WriteTimeout < 0:
		return c, errors.New("write timeout must not be negative")
	case c.PingInterval < 0:
		return c, errors.New("ping interval must not be negative")
	case c.PongWait <= c.PingInterval:
		return c, errors.New("pong wait must be longer than the ping interval")
	case c.MaxMessageSize < 0:
		return c, errors.New("max message size must not be negative")
	}
	return c, nil
}
