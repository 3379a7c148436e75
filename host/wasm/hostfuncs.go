package wasm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero/api"

	"github.com/mesher-dev/mesher/abi"
)

// call is the state of one guest invocation, found by host functions in
// the context of the call.
type call struct {
	p        *Processor
	settings *Settings
	input    []byte
	count    uint32
	process  bool // inside mesher_process, not _initialize

	records  []abi.Record
	buf      []byte
	logLines int

	// failure recorded by a host function before it aborts the guest.
	reason Reason
	err    error
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// abort records why the guest must stop and unwinds it: wazero turns the
// panic into the error of the guest call.
func (c *call) abort(reason Reason, format string, args ...any) {
	if c.err == nil {
		c.reason, c.err = reason, fmt.Errorf(format, args...)
	}
	panic(c.err)
}

func (r *Runtime) instantiateHost(ctx context.Context) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b := r.engine.NewHostModuleBuilder(abi.ImportModule)
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).WithName(name).Export(name)
	}
	fn(abi.FuncVersion, hostYield, nil, nil)
	fn(abi.FuncInput, hostInput, []api.ValueType{i32, i32}, []api.ValueType{i32})
	fn(abi.FuncEmit, hostEmit, []api.ValueType{i32, i32}, []api.ValueType{i32})
	fn(abi.FuncLog, hostLog, []api.ValueType{i32, i32, i32}, nil)
	fn(abi.FuncConfig, hostConfig, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32})
	fn(abi.FuncNow, func(_ context.Context, _ api.Module, stack []uint64) {
		stack[0] = api.EncodeI64(r.now().UnixNano())
	}, nil, []api.ValueType{i64})
	_, err := b.Instantiate(ctx)
	return err
}

// abi_v1() is the version marker, and the function instrumented code calls
// every few thousand loop iterations and function entries (see
// wasmbin.Instrument). Reaching Go lets the scheduler and the garbage
// collector run; once the call's deadline has passed it ends the call.
func hostYield(ctx context.Context, _ api.Module, _ []uint64) {
	select {
	case <-ctx.Done():
	default:
		return
	}
	c := callFrom(ctx)
	if c == nil {
		panic(ctx.Err())
	}
	if context.Cause(ctx) == errDeadline {
		c.abort(ReasonTimeout, "exceeded its %s deadline", c.p.limits.Timeout)
	}
	c.abort(ReasonCanceled, "canceled: %w", ctx.Err())
}

// input(ptr, len) -> i32
func hostInput(ctx context.Context, m api.Module, stack []uint64) {
	c := callFrom(ctx)
	if c == nil || !c.process {
		stack[0] = api.EncodeI32(abi.ErrNotInCall)
		return
	}
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if int(n) < len(c.input) {
		stack[0] = api.EncodeI32(abi.ErrShortBuffer)
		return
	}
	if !m.Memory().Write(ptr, c.input) {
		c.abort(ReasonTrap, "input: buffer [%d, %d) is outside guest memory", ptr, uint64(ptr)+uint64(len(c.input)))
	}
	stack[0] = api.EncodeI32(int32(len(c.input)))
}

// emit(ptr, len) -> i32
func hostEmit(ctx context.Context, m api.Module, stack []uint64) {
	c := callFrom(ctx)
	if c == nil || !c.process {
		stack[0] = api.EncodeI32(abi.ErrNotInCall)
		return
	}
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if len(c.buf)+int(n) > c.p.limits.MaxOutput {
		c.abort(ReasonOutputLimit, "output exceeds the limit of %d bytes per batch", c.p.limits.MaxOutput)
	}
	view, ok := m.Memory().Read(ptr, n)
	if !ok {
		c.abort(ReasonTrap, "emit: buffer [%d, %d) is outside guest memory", ptr, uint64(ptr)+uint64(n))
	}
	start := len(c.buf)
	c.buf = append(c.buf, view...)
	out := c.buf[start:]
	for len(out) > 0 {
		rec, rest, err := abi.DecodeRecord(out)
		if err != nil {
			c.abort(ReasonInvalidOutput, "emit: %v", err)
		}
		if rec.Index >= c.count {
			c.abort(ReasonInvalidOutput, "emit: record for event %d, but the batch has %d events", rec.Index, c.count)
		}
		if max := int(c.count) * c.p.limits.MaxFanOut; len(c.records) >= max {
			c.abort(ReasonOutputLimit, "emit: more than %d records for %d events (at most %d per event)", max, c.count, c.p.limits.MaxFanOut)
		}
		c.records = append(c.records, rec)
		out = rest
	}
	stack[0] = 0
}

// log(level, ptr, len)
func hostLog(ctx context.Context, m api.Module, stack []uint64) {
	c := callFrom(ctx)
	if c == nil {
		return
	}
	c.logLines++
	if c.logLines > maxLogLinesPerCall {
		if c.logLines == maxLogLinesPerCall+1 {
			c.p.log.Warn("guest log limit reached; dropping its further lines in this call", "limit", maxLogLinesPerCall)
		}
		return
	}
	level, ptr, n := api.DecodeI32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	if n > maxLogLine {
		n = maxLogLine
	}
	msg, ok := m.Memory().Read(ptr, n)
	if !ok {
		c.abort(ReasonTrap, "log: buffer [%d, %d) is outside guest memory", ptr, uint64(ptr)+uint64(n))
	}
	c.p.log.Log(ctx, slogLevel(level), string(bytes.ToValidUTF8(msg, []byte("\uFFFD"))), "source", "guest")
}

func slogLevel(l int32) slog.Level {
	switch {
	case l <= abi.LogDebug:
		return slog.LevelDebug
	case l == abi.LogInfo:
		return slog.LevelInfo
	case l == abi.LogWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// config(keyPtr, keyLen, bufPtr, bufLen) -> i32
func hostConfig(ctx context.Context, m api.Module, stack []uint64) {
	c := callFrom(ctx)
	if c == nil {
		stack[0] = api.EncodeI32(abi.ErrNotInCall)
		return
	}
	kp, kl := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	bp, bl := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	key, ok := m.Memory().Read(kp, kl)
	if !ok {
		c.abort(ReasonTrap, "config: key [%d, %d) is outside guest memory", kp, uint64(kp)+uint64(kl))
	}
	val, found := c.settings.lookup(string(key))
	if !found {
		stack[0] = api.EncodeI32(abi.ConfigMissing)
		return
	}
	if int(bl) >= len(val) && len(val) > 0 && !m.Memory().Write(bp, val) {
		c.abort(ReasonTrap, "config: buffer [%d, %d) is outside guest memory", bp, uint64(bp)+uint64(len(val)))
	}
	stack[0] = api.EncodeI32(int32(len(val)))
}

// logWriter turns a guest's stdout or stderr into log lines.
type logWriter struct {
	log   *slog.Logger
	level slog.Level
	line  []byte
	last  string // last complete line, kept to explain a failure
}

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(w.line) < maxLogLine {
				w.line = append(w.line, p[:min(len(p), maxLogLine-len(w.line))]...)
			}
			break
		}
		if len(w.line) < maxLogLine {
			w.line = append(w.line, p[:min(i, maxLogLine-len(w.line))]...)
		}
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	if len(w.line) == 0 {
		return
	}
	w.last = string(bytes.ToValidUTF8(w.line, []byte("\uFFFD")))
	w.log.Log(context.Background(), w.level, w.last, "source", "guest")
	w.line = w.line[:0]
}
