package processors

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/pipeline"
	"github.com/mesher-dev/mesher/host/wasm"
)

// Forwarder sends a share of a processor version's batches to instances on
// other nodes; the cluster layer implements it. ok is false when the batch
// should run here; when ok is true and err is not nil the forward failed
// and the batch runs here instead. Batches travel as ABI records.
type Forwarder interface {
	Forward(ctx context.Context, name, sha string, settings, input []byte, count int) (out []byte, ok bool, err error)
}

// Singletons routes processors declared singleton, which run in one place
// in the cluster. local reports that this node owns the processor and runs
// the batch itself; otherwise out is the owner's result, or err says why
// the batch could not run (then it is failed, never run here).
type Singletons interface {
	Route(ctx context.Context, name, sha string, settings, input []byte, count int) (out []byte, local bool, err error)
}

// routed is the processor a pipeline step calls: the node's shared local
// processor, with batches routed elsewhere when the cluster says so.
type routed struct {
	reg   *Registry
	local *wasm.Processor
	name  string
	sha   string
	// singleton processors never run here unless this node owns them.
	singleton bool
}

var _ pipeline.Processor = (*routed)(nil)

func (r *routed) Name() string { return r.name }

func (r *routed) Process(ctx context.Context, input []byte, count int, settings *wasm.Settings) ([]abi.Record, error) {
	if settings == nil {
		settings = r.local.Module().DefaultSettings()
	}
	if r.singleton {
		if s := r.reg.singletons.Load(); s != nil {
			out, local, err := (*s).Route(ctx, r.name, r.sha, settings.Raw(), input, count)
			switch {
			case local:
			case err != nil:
				return nil, &wasm.ProcessError{Processor: r.name, Reason: wasm.ReasonUnavailable, Err: fmt.Errorf("singleton owner: %w", err)}
			default:
				recs, err := decodeOutput(out, count)
				if err != nil {
					return nil, &wasm.ProcessError{Processor: r.name, Reason: wasm.ReasonInvalidOutput, Err: fmt.Errorf("from the owner: %w", err)}
				}
				return recs, nil
			}
		}
	} else if f := r.reg.forwarder.Load(); f != nil {
		out, ok, err := (*f).Forward(ctx, r.name, r.sha, settings.Raw(), input, count)
		if ok && err == nil {
			recs, derr := decodeOutput(out, count)
			if derr == nil {
				return recs, nil
			}
			err = derr
		}
		if ok {
			r.reg.log.Log(ctx, slog.LevelWarn, "forwarded batch failed; running it here", "processor", r.name, "err", err)
		}
	}
	return r.local.Process(ctx, input, count, settings)
}

// decodeOutput decodes output records received from another node and checks
// them as the local runtime does.
func decodeOutput(out []byte, count int) ([]abi.Record, error) {
	var recs []abi.Record
	for len(out) > 0 {
		r, rest, err := abi.DecodeRecord(out)
		if err != nil {
			return nil, err
		}
		if r.Index >= uint32(count) {
			return nil, fmt.Errorf("record for event %d, but the batch has %d events", r.Index, count)
		}
		recs = append(recs, r)
		out = rest
	}
	return recs, nil
}

// EncodeOutput encodes output records for another node.
func EncodeOutput(recs []abi.Record) []byte {
	var out []byte
	for i := range recs {
		out = abi.AppendRecord(out, &recs[i])
	}
	return out
}

// SetForwarder installs the cluster's forwarder (nil removes it).
func (r *Registry) SetForwarder(f Forwarder) {
	if f == nil {
		r.forwarder.Store(nil)
		return
	}
	r.forwarder.Store(&f)
}

// SetSingletons installs the cluster's singleton routing (nil: singletons
// run locally, as on a standalone node).
func (r *Registry) SetSingletons(s Singletons) {
	if s == nil {
		r.singletons.Store(nil)
		return
	}
	r.singletons.Store(&s)
}
