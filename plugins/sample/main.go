// Command sample is a processor that drops a configured fraction of events
// per level, deterministically by event id.
//
// An event is dropped when the FNV-1a 64-bit hash of its id ("event_id"),
// mapped to [0, 1), is below the fraction configured for its level. The
// same id therefore always gets the same decision, on every node and after
// every restart; a fraction of 0 keeps every event and 1 drops every event.
// Levels are compared ignoring case; an event without a level is an
// "error" event, as the host treats it.
//
// Configuration:
//
//	drop          object  level -> fraction of its events to drop, from 0
//	                      to 1 (default {}), such as {"debug": 0.9}
//	default_drop  number  fraction dropped of levels not in drop (default 0)
//
// Fractions outside 0..1 are clamped, and values that are not numbers are
// ignored; each such problem is logged as a warning once per configuration
// change. With nothing to drop, events are passed on without being parsed.
package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mesher-dev/mesher/abi/guest"
)

func init() { guest.Handle(process) }

func main() {}

// defaultDrop is the default of default_drop, as declared in manifest.json;
// drop defaults to {}.
const defaultDrop = 0.0

func process(e *guest.Event) error {
	s := current()
	if !s.drops {
		return nil
	}
	if f := s.fraction(e.Level()); unit(e.ID()) < f {
		e.Drop()
	}
	return nil
}

// sampler is the state derived from the configuration.
type sampler struct {
	byLevel map[string]float64 // keys lower-cased
	def     float64
	drops   bool // some fraction is above 0
}

func (s *sampler) fraction(level string) float64 {
	if f, ok := s.byLevel[strings.ToLower(level)]; ok {
		return f
	}
	return s.def
}

// cache keeps the sampler until the configuration changes.
var cache struct {
	raw []byte
	s   *sampler
}

func current() *sampler {
	raw := guest.ConfigRaw()
	if cache.s == nil || !bytes.Equal(raw, cache.raw) {
		var warnings []string
		cache.raw = bytes.Clone(raw)
		cache.s, warnings = newSampler()
		for _, w := range warnings {
			guest.Log(guest.LevelWarn, w)
		}
	}
	return cache.s
}

// newSampler reads the configuration and returns the sampler with what is
// wrong with the configuration.
func newSampler() (*sampler, []string) {
	s := &sampler{byLevel: map[string]float64{}, def: defaultDrop}
	var warnings []string
	if v := guest.Config("default_drop"); v != nil {
		f, warning := fraction("default_drop", v)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		if f >= 0 {
			s.def = f
		}
	}
	switch drop := guest.Config("drop"); drop.Kind() {
	case guest.Null:
	case guest.Object:
		for _, m := range drop.Members() {
			f, warning := fraction("drop."+m.Key, m.Value)
			if warning != "" {
				warnings = append(warnings, warning)
			}
			if f >= 0 {
				s.byLevel[strings.ToLower(m.Key)] = f
			}
		}
	default:
		warnings = append(warnings, fmt.Sprintf("drop: want an object mapping levels to fractions, got %s; ignored", drop.JSON()))
	}
	s.drops = s.def > 0
	for _, f := range s.byLevel {
		s.drops = s.drops || f > 0
	}
	return s, warnings
}

// fraction reads a fraction, clamped to 0..1, and what is wrong with it.
// It returns -1 for a value that is not a number.
func fraction(name string, v *guest.Value) (float64, string) {
	if v.Kind() != guest.Number {
		return -1, fmt.Sprintf("%s: want a number from 0 to 1, got %s; ignored", name, v.JSON())
	}
	f, _ := v.Float()
	switch {
	case f < 0:
		return 0, fmt.Sprintf("%s is %s, below 0; using 0", name, v.String())
	case f > 1:
		return 1, fmt.Sprintf("%s is %s, above 1; using 1", name, v.String())
	}
	return f, ""
}

// unit maps an id to [0, 1) by its FNV-1a 64-bit hash.
func unit(id string) float64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return float64(h>>11) / (1 << 53)
}
