// Package pipeline runs a project's ordered list of processors over a batch
// of events and applies what each processor returns: kept, rewritten,
// dropped, fanned out, or failed. A processor that fails a batch, or is
// quarantined, never loses events: they pass on unprocessed, flagged with
// the processor and the reason.
package pipeline

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/wasm"
)

// Event is an event in flight.
type Event struct {
	// ID is the event's id; the body's "event_id" always equals it.
	ID string
	// Body is the event as a JSON object.
	Body json.RawMessage
	// Fingerprint and Title are set by processors; empty means the host's
	// default grouping applies.
	Fingerprint string
	Title       string
	// Flags record processors that did not process the event.
	Flags []Flag
}

// Flag records that a processor did not process an event, and why.
type Flag struct {
	Processor string `json:"processor"`
	Reason    string `json:"reason"`
	Error     string `json:"error,omitempty"`
}

// Processor is what a step runs; *wasm.Processor implements it.
type Processor interface {
	Name() string
	Process(ctx context.Context, input []byte, count int, settings *wasm.Settings) ([]abi.Record, error)
}

var _ Processor = (*wasm.Processor)(nil)

// Step is one processor of a pipeline with its configuration.
type Step struct {
	Processor Processor
	Settings  *wasm.Settings
}

// Pipeline is an ordered list of steps. It is immutable and safe for
// concurrent use; a project's pipeline is changed by replacing it.
type Pipeline struct {
	Steps []Step
}

// ReasonEventError flags an event a processor reported an error for.
const ReasonEventError = "event_error"

// ReasonInvalidEvent flags an event a processor replaced with something
// that is not a JSON object.
const ReasonInvalidEvent = "invalid_event"

// Run passes events through every step in order and returns what comes
// out. It fails only if ctx ends; processor failures are recorded on the
// events as flags.
func (p *Pipeline) Run(ctx context.Context, events []Event) ([]Event, error) {
	var buf []byte
	for _, s := range p.Steps {
		if len(events) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		buf = encode(buf[:0], events)
		recs, err := s.Processor.Process(ctx, buf, len(events), s.Settings)
		if err != nil {
			if wasm.ReasonOf(err) == wasm.ReasonCanceled && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			flag := Flag{Processor: s.Processor.Name(), Reason: string(wasm.ReasonOf(err)), Error: err.Error()}
			if flag.Reason == "" {
				flag.Reason = "error"
			}
			for i := range events {
				events[i].Flags = append(events[i].Flags, flag)
			}
			continue
		}
		events = apply(s.Processor.Name(), events, recs)
	}
	return events, nil
}

func encode(buf []byte, events []Event) []byte {
	for i := range events {
		e := &events[i]
		r := abi.Record{Index: uint32(i), Event: e.Body, Fingerprint: e.Fingerprint, Title: e.Title}
		buf = abi.AppendRecord(buf, &r)
	}
	return buf
}

// apply turns one processor's output records into the next list of events.
// Records are grouped by input index; outputs keep the order of inputs.
func apply(processor string, in []Event, recs []abi.Record) []Event {
	byIndex := make([][]int, len(in))
	for i, r := range recs {
		byIndex[r.Index] = append(byIndex[r.Index], i)
	}
	out := make([]Event, 0, len(recs))
	for i, idx := range byIndex {
		src := in[i]
		for n, ri := range idx {
			r := &recs[ri]
			if r.Has.Contains(abi.FieldError) {
				e := src
				e.Flags = append(e.Flags[:len(e.Flags):len(e.Flags)], Flag{Processor: processor, Reason: ReasonEventError, Error: r.Error})
				out = append(out, e)
				break
			}
			e, err := derive(src, n, r)
			if err != nil {
				e = src
				e.Flags = append(e.Flags[:len(e.Flags):len(e.Flags)], Flag{Processor: processor, Reason: ReasonInvalidEvent, Error: err.Error()})
				out = append(out, e)
				break
			}
			out = append(out, e)
		}
	}
	return out
}

// derive builds the n-th output of src from record r.
func derive(src Event, n int, r *abi.Record) (Event, error) {
	e := src
	e.Flags = src.Flags[:len(src.Flags):len(src.Flags)]
	if r.Has.Contains(abi.FieldFingerprint) {
		e.Fingerprint = r.Fingerprint
	}
	if r.Has.Contains(abi.FieldTitle) {
		e.Title = r.Title
	}
	replaced := r.Has.Contains(abi.FieldEvent)
	if n > 0 {
		e.ID = DerivedID(src.ID, n)
	}
	if !replaced && n == 0 && !r.Has.Contains(abi.FieldLevel) && len(r.Tags) == 0 {
		return e, nil // kept as it was
	}
	body := src.Body
	if replaced {
		body = r.Event
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return e, fmt.Errorf("output for event %s is not a JSON object", src.ID)
	}
	if r.Has.Contains(abi.FieldLevel) {
		obj["level"] = mustJSON(r.Level)
	}
	if len(r.Tags) > 0 {
		tags := map[string]json.RawMessage{}
		if raw, ok := obj["tags"]; ok {
			_ = json.Unmarshal(raw, &tags) // tags that are not an object are replaced
		}
		for _, t := range r.Tags {
			tags[t.Key] = mustJSON(t.Value)
		}
		obj["tags"] = mustJSON(tags)
	}
	obj["event_id"] = mustJSON(e.ID)
	e.Body = mustJSON(obj)
	return e, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and maps of raw JSON always marshal
	}
	return b
}

// DerivedID returns the id of the n-th event fanned out of the event with
// the given id: a name-based (version 5 style) UUID, so that resending the
// original event derives the same ids and stays idempotent.
func DerivedID(parent string, n int) string {
	h := sha1.Sum([]byte(parent + "/" + strconv.Itoa(n)))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[h[i]>>4], hex[h[i]&0xf]
		j += 2
	}
	return string(b[:])
}
