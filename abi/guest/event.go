package guest

import (
	"errors"

	"github.com/mesher-dev/mesher/abi"
)

// Event is one event handed to a Handler. Field access parses the event's
// JSON on first use; a handler that only passes events on never parses them.
//
// Changes made through Set, SetString, Delete, SetLevel and SetTag are
// tracked. A handler that changes a *Value reached through Get or Root in
// place must call Changed, or the change is not sent back to the host.
type Event struct {
	index    uint32
	raw      []byte // the JSON received; aliases the input buffer
	root     *Value
	parseErr error
	dirty    bool

	fingerprint string
	title       string
	set         abi.FieldSet // attributes this processor set

	dropped  bool
	children []*Event
}

// NewEvent returns an event to hand to Emit. The value must be an object.
func NewEvent(v *Value) *Event {
	if v.Kind() != Object {
		v = NewObject()
	}
	return &Event{root: v, dirty: true}
}

// Root returns the event as a parsed JSON object. If the event is not valid
// JSON, Root returns an empty object and the handler's result is reported
// to the host as an error for this event.
func (e *Event) Root() *Value {
	if e.root == nil {
		v, err := Parse(e.raw)
		if err == nil && v.Kind() != Object {
			err = errors.New("event is not a JSON object")
		}
		if err != nil {
			e.parseErr = err
			v = NewObject()
		}
		e.root = v
	}
	return e.root
}

// Raw returns the event's JSON: the bytes received if nothing changed, or
// the current encoding.
func (e *Event) Raw() []byte {
	if e.dirty {
		return e.root.JSON()
	}
	return e.raw
}

// Get returns the value at a dot-separated path such as
// "exception.values.0.type", or nil.
func (e *Event) Get(path string) *Value { return e.Root().Get(path) }

// GetString returns the string (or number text) at path, or "".
func (e *Event) GetString(path string) string { return e.Root().Get(path).String() }

// Set stores v at path, creating objects on the way.
func (e *Event) Set(path string, v *Value) error {
	if err := e.Root().Set(path, v); err != nil {
		return err
	}
	e.dirty = true
	return nil
}

// SetString stores a string at path.
func (e *Event) SetString(path, s string) error { return e.Set(path, NewString(s)) }

// Delete removes the value at path and reports whether it existed.
func (e *Event) Delete(path string) bool {
	if e.Root().Delete(path) {
		e.dirty = true
		return true
	}
	return false
}

// Changed records that the handler changed values of the event in place.
func (e *Event) Changed() {
	e.Root()
	e.dirty = true
}

// ID returns the event's id ("event_id"), assigned by the host before the
// pipeline runs.
func (e *Event) ID() string { return e.GetString("event_id") }

// Level returns the event's level; the host defaults it to "error".
func (e *Event) Level() string {
	if l := e.GetString("level"); l != "" {
		return l
	}
	return "error"
}

// SetLevel sets the event's level.
func (e *Event) SetLevel(level string) { _ = e.Set("level", NewString(level)) }

// Tag returns the value of a tag, or "".
func (e *Event) Tag(key string) string { return e.Root().Key("tags").Key(key).String() }

// Tags returns the event's tags object, or nil.
func (e *Event) Tags() *Value {
	if t := e.Root().Key("tags"); t.Kind() == Object {
		return t
	}
	return nil
}

// SetTag sets one tag. Tag keys may contain dots.
func (e *Event) SetTag(key, value string) {
	root := e.Root()
	tags := root.Key("tags")
	if tags.Kind() != Object {
		tags = NewObject()
		root.SetKey("tags", tags)
	}
	tags.SetKey(key, NewString(value))
	e.dirty = true
}

// Fingerprint returns the fingerprint a processor earlier in the pipeline
// (or this one) set, or "" if the host's default grouping applies.
func (e *Event) Fingerprint() string { return e.fingerprint }

// SetFingerprint sets the key events are grouped into issues by. It
// overrides the default fingerprint the host would compute.
func (e *Event) SetFingerprint(fp string) {
	e.fingerprint = fp
	e.set |= 1 << abi.FieldFingerprint
}

// Title returns the issue title set earlier in the pipeline, or "".
func (e *Event) Title() string { return e.title }

// SetTitle sets the title of the issue the event is grouped into.
func (e *Event) SetTitle(title string) {
	e.title = title
	e.set |= 1 << abi.FieldTitle
}

// Drop drops the event: it is not passed on and not stored. Events added
// with Emit are still passed on.
func (e *Event) Drop() { e.dropped = true }

// Dropped reports whether Drop was called.
func (e *Event) Dropped() bool { return e.dropped }

// Emit passes another event on after this one (fan-out). The host gives it
// an id derived from this event's id.
func (e *Event) Emit(child *Event) { e.children = append(e.children, child) }

// appendOutput appends the output records of e after its handler returned.
func (e *Event) appendOutput(out []byte, herr error) []byte {
	if herr == nil && e.parseErr != nil {
		herr = e.parseErr
	}
	if herr != nil {
		return abi.AppendRecord(out, &abi.Record{Index: e.index, Error: herr.Error(), Has: 1 << abi.FieldError})
	}
	if !e.dropped {
		out = e.appendRecord(out, e.index)
	}
	for _, c := range e.children {
		c.dirty = true
		out = c.appendRecord(out, e.index)
	}
	return out
}

func (e *Event) appendRecord(out []byte, index uint32) []byte {
	start := len(out)
	out = abi.AppendRecordHeader(out, index, 0)
	if e.dirty {
		out = append(out, byte(abi.FieldEvent), 0, 0, 0, 0)
		bodyStart := len(out)
		out = e.root.appendJSON(out)
		putU32(out[bodyStart-4:], uint32(len(out)-bodyStart))
	}
	if e.set.Contains(abi.FieldFingerprint) {
		out = abi.AppendField(out, abi.FieldFingerprint, []byte(e.fingerprint))
	}
	if e.set.Contains(abi.FieldTitle) {
		out = abi.AppendField(out, abi.FieldTitle, []byte(e.title))
	}
	putU32(out[start+4:], uint32(len(out)-start-abi.RecordHeaderSize))
	return out
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
