package guest

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/mesher-dev/mesher/abi"
)

// Run runs h natively over an encoded batch of input records, the way the
// host runs the processor in Wasm, and returns the output records. config is
// the processor's configuration as a JSON object (nil for none); logs, if
// not nil, receives what the processor logs. Run is for tests and
// benchmarks of processors outside Wasm; calls are serialized.
func Run(h Handler, input, config []byte, logs func(level int32, msg string)) ([]byte, error) {
	runMu.Lock()
	defer runMu.Unlock()
	nh := &nativeHost{logs: logs, cfg: map[string]json.RawMessage{}}
	if len(config) > 0 {
		if err := json.Unmarshal(config, &nh.cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		nh.raw = config
	}
	prev := host
	host = nh
	defer func() { host = prev }()
	return processBatch(input, h, nil, nil)
}

// RunEvents is Run for events given as JSON objects: it encodes them as
// records 0..n-1 and decodes the output.
func RunEvents(h Handler, config []byte, events ...string) ([]abi.Record, error) {
	var in []byte
	for i, e := range events {
		in = abi.AppendRecord(in, &abi.Record{Index: uint32(i), Event: []byte(e)})
	}
	out, err := Run(h, in, config, nil)
	if err != nil {
		return nil, err
	}
	var recs []abi.Record
	for len(out) > 0 {
		r, rest, err := abi.DecodeRecord(out)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
		out = rest
	}
	return recs, nil
}

var runMu sync.Mutex

type nativeHost struct {
	cfg  map[string]json.RawMessage
	raw  []byte
	logs func(int32, string)
}

func (h *nativeHost) config(key string) ([]byte, bool) {
	if key == "" {
		if h.raw == nil {
			return nil, false
		}
		return h.raw, true
	}
	v, ok := h.cfg[key]
	return v, ok
}

func (h *nativeHost) log(level int32, msg string) {
	if h.logs != nil {
		h.logs(level, msg)
	}
}

func (h *nativeHost) now() int64 { return time.Now().UnixNano() }
