// Package guest is the Go SDK for Mesher processors. A processor is one
// function registered with Handle from an init function:
//
//	package main
//
//	import "github.com/mesher-dev/mesher/abi/guest"
//
//	func init() { guest.Handle(process) }
//
//	func process(e *guest.Event) error {
//		e.SetTag("seen_by", "my-processor")
//		return nil
//	}
//
//	func main() {}
//
// built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o my.wasm
//
// The SDK implements ABI v1 (see abi/ABI.md): it imports the version
// marker, exports mesher_process, reads each batch into one reused buffer,
// calls the handler once per event, writes every result into one reused
// output buffer handed to the host in as few emit calls as possible, and
// yields to the Go scheduler before returning to the host.
//
// Only the file that talks to the host is built for wasip1; the rest,
// including Run, works natively so processors can be tested with go test.
package guest

import (
	"fmt"
	"time"

	"github.com/mesher-dev/mesher/abi"
)

// Handler processes one event. Returning an error (or panicking) marks the
// event as failed in this processor: the host passes the event on
// unprocessed and flags it. To drop an event, call Drop and return nil.
type Handler func(e *Event) error

var handler Handler

// Handle registers the processor's handler. Call it from init.
func Handle(h Handler) { handler = h }

// hostAPI is what the SDK needs from its host: the wasip1 build talks to
// Mesher through imports; Run provides a native one.
type hostAPI interface {
	config(key string) ([]byte, bool)
	log(level int32, msg string)
	now() int64
}

var host hostAPI

// batch state, reset for every call.
var (
	events      []Event
	configCache = map[string]*Value{}
)

// flushSize is the output size past which records are handed to the host
// before the batch ends.
const flushSize = 1 << 20

// processBatch decodes the input records, runs h on each event and appends
// the output records to out. flush, if not nil, is called with completed
// output whenever it grows past flushSize; it returns the buffer to reuse.
func processBatch(in []byte, h Handler, out []byte, flush func([]byte) []byte) ([]byte, error) {
	clear(configCache)
	events = events[:0]
	for len(in) > 0 {
		r, rest, err := abi.DecodeRecord(in)
		if err != nil {
			return out, fmt.Errorf("decode input: %w", err)
		}
		in = rest
		events = append(events, Event{index: r.Index, raw: r.Event, fingerprint: r.Fingerprint, title: r.Title})
	}
	for i := range events {
		e := &events[i]
		out = e.appendOutput(out, callHandler(h, e))
		if flush != nil && len(out) >= flushSize {
			out = flush(out)
		}
		*e = Event{} // release references to the input buffer
	}
	return out, nil
}

func callHandler(h Handler, e *Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h(e)
}

// Config returns the value of a configuration key for this batch, or nil if
// the key is not set. The host fills in defaults declared in the manifest.
func Config(key string) *Value {
	if v, ok := configCache[key]; ok {
		return v
	}
	var v *Value
	if raw, ok := host.config(key); ok {
		if parsed, err := Parse(raw); err == nil {
			v = parsed
		}
	}
	configCache[key] = v
	return v
}

// ConfigRaw returns the whole configuration as JSON text ("{}" if none).
// Processors that derive expensive state from their configuration can keep
// it until this text changes.
func ConfigRaw() []byte {
	if raw, ok := host.config(""); ok {
		return raw
	}
	return []byte("{}")
}

// ConfigString returns a string key, or def.
func ConfigString(key, def string) string {
	if s, ok := Config(key).Str(); ok {
		return s
	}
	return def
}

// ConfigFloat returns a number key, or def.
func ConfigFloat(key string, def float64) float64 {
	if f, ok := Config(key).Float(); ok {
		return f
	}
	return def
}

// ConfigBool returns a boolean key, or def.
func ConfigBool(key string, def bool) bool {
	if b, ok := Config(key).Bool(); ok {
		return b
	}
	return def
}

// ConfigStrings returns a list-of-strings key, or def. Elements that are
// not strings are skipped.
func ConfigStrings(key string, def []string) []string {
	v := Config(key)
	if v.Kind() != Array {
		return def
	}
	out := make([]string, 0, v.Len())
	for _, e := range v.Elems() {
		if s, ok := e.Str(); ok {
			out = append(out, s)
		}
	}
	return out
}

// Log levels.
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Log writes a message to the host's log under the processor's name.
func Log(level int32, msg string) { host.log(level, msg) }

// Logf formats and writes a message to the host's log.
func Logf(level int32, format string, args ...any) { host.log(level, fmt.Sprintf(format, args...)) }

// Now returns the host's clock.
func Now() time.Time { return time.Unix(0, host.now()).UTC() }
