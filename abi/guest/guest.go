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
	configRaw   []byte // ConfigRaw's result, if configRawOK
	configRawOK bool
)

// flushSize is the output size past which records are handed to the host
// before the batch ends.
const flushSize = 1 << 20

// processBatch decodes the input records, runs h on each event and appends
// the output records to out. flush, if not nil, is called with completed
// output whenever it grows past flushSize; it returns the buffer to reuse.
func processBatch(in []byte, h Handler, out []byte, flush func([]byte) []byte) ([]byte, error) {
	clear(configCache)
	configRaw, configRawOK = nil, false
	events = events[:0]
	// Clearing the entries used releases what they refer to, and leaves
	// events zero past its length for addEvent.
	defer func() { clear(events) }()
	for len(in) > 0 {
		r, rest, err := abi.DecodeRecord(in)
		if err != nil {
			return out, fmt.Errorf("decode input: %w", err)
		}
		in = rest
		e := addEvent()
		e.index, e.raw, e.fingerprint, e.title = r.Index, r.Event, r.Fingerprint, r.Title
	}
	for i := 0; i < len(events); {
		i, out = handleEvents(h, i, out, flush)
	}
	return out, nil
}

// handleEvents runs h on events[i:] and appends the output records to out.
// If h panics, the event fails, and handleEvents returns the index of the
// next event: one deferred recover serves many events, as a defer for
// each would cost more in Wasm.
func handleEvents(h Handler, i int, out []byte, flush func([]byte) []byte) (next int, result []byte) {
	running := -1 // the event whose handler is running
	defer func() {
		if running < 0 {
			return // not a panic of the handler's: let it go on
		}
		if r := recover(); r != nil {
			next, result = running+1, finishEvent(running, fmt.Errorf("panic: %v", r), out, flush)
		}
	}()
	for ; i < len(events); i++ {
		running = i
		err := h(&events[i])
		running = -1
		out = finishEvent(i, err, out, flush)
	}
	return i, out
}

// finishEvent appends the output records of events[i], whose handler
// returned err, to out.
func finishEvent(i int, err error, out []byte, flush func([]byte) []byte) []byte {
	e := &events[i]
	out = e.appendOutput(out, err)
	if flush != nil && len(out) >= flushSize {
		out = flush(out)
	}
	e.root, e.children = nil, nil // let the collector have what the handler made
	return out
}

// addEvent extends events by one and returns the new, zero, entry. Entries
// past the length of events are zero: processBatch clears those it used.
// Setting the fields of an entry in place, rather than appending an Event,
// saves copying the whole struct, which is slow in Wasm.
func addEvent() *Event {
	if len(events) == cap(events) {
		events = append(events, Event{})
	} else {
		events = events[:len(events)+1]
	}
	return &events[len(events)-1]
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
// it until this text changes. The text is asked of the host once per batch
// and shared by the calls in the batch: it must not be modified.
func ConfigRaw() []byte {
	if !configRawOK {
		raw, ok := host.config("")
		if !ok {
			raw = []byte("{}")
		}
		configRaw, configRawOK = raw, true
	}
	return configRaw
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
