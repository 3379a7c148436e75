package wasmbin

import (
	"errors"
	"fmt"
	"sort"
)

// Options configures Instrument.
type Options struct {
	// YieldModule and YieldName name an imported function of type () -> ()
	// that instrumented code calls every Interval loop iterations (and, with
	// CheckCalls, function entries). A call into the host is where the host
	// can stop a runaway guest, and where Go's scheduler and garbage
	// collector, which cannot preempt compiled Wasm, get their chance.
	// Empty leaves code alone.
	YieldModule, YieldName string
	// Interval is the number of loop iterations between yields (default
	// DefaultInterval).
	Interval int32
	// CheckCalls counts function entries too, so that deep recursion without
	// loops also yields.
	CheckCalls bool
	// MaxMemoryPages caps the module's memory, in 64 KiB pages: a larger or
	// missing maximum is lowered to it, and an initial size above it is an
	// error. Zero leaves memory alone.
	MaxMemoryPages uint32
	// MergeGap, when positive, merges active data segments separated by at
	// most this many bytes into one, filling the gap with zeros (the value
	// fresh memory has). Go writes one segment per non-zero run, tens of
	// thousands in all, and the runtime pays for each when an instance
	// starts. Modules with passive segments are left alone.
	MergeGap int
}

// DefaultInterval is the default number of iterations between yields: a
// tight loop yields every few microseconds, which bounds how long a runaway
// guest outlives its deadline, while the yield itself costs a fraction of a
// nanosecond per iteration.
const DefaultInterval = 10000

// Stats describes what Instrument changed.
type Stats struct {
	Functions int // function bodies rewritten
	Checks    int // countdown checks inserted
	Segments  int // data segments after merging
}

// ErrMemoryTooLarge is returned when a module's initial memory exceeds
// Options.MaxMemoryPages.
var ErrMemoryTooLarge = errors.New("initial memory exceeds the cap")

// ErrImportedMemory is returned for modules that import their memory.
var ErrImportedMemory = errors.New("module imports its memory")

// ErrNoYield is returned when the module does not import the yield function.
var ErrNoYield = errors.New("module does not import the yield function")

// Instrument rewrites a module so that the host can interrupt it and cap its
// memory, as described by Options. A countdown global is appended after the
// module's own globals, so no existing index changes. DWARF custom sections,
// whose code offsets would be stale, are dropped.
func Instrument(module []byte, opt Options) ([]byte, Stats, error) {
	var st Stats
	secs, err := Parse(module)
	if err != nil {
		return nil, st, err
	}
	imp, err := scanImports(secs, opt.YieldModule, opt.YieldName)
	if err != nil {
		return nil, st, err
	}
	yield := opt.YieldName != ""
	if yield && imp.yieldIndex < 0 {
		return nil, st, fmt.Errorf("%w %s.%s", ErrNoYield, opt.YieldModule, opt.YieldName)
	}
	interval := opt.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	if yield {
		secs = ensureSection(secs, SecGlobal) // an empty vector is one zero byte
	}
	out := make([]Section, 0, len(secs))
	var check []byte
	for _, s := range secs {
		// Sections come in order, so the global section, which fixes the
		// countdown's index, is handled before the code section.
		switch {
		case s.ID == SecCustom && len(s.Name) > 7 && s.Name[:7] == ".debug_":
			continue
		case s.ID == SecMemory && opt.MaxMemoryPages > 0:
			s.Data, err = capMemory(s.Data, opt.MaxMemoryPages)
		case s.ID == SecGlobal && yield:
			var fuel uint32
			s.Data, fuel, err = appendCountdown(s.Data, imp.globals, interval)
			check = countdownCheck(fuel, uint32(imp.yieldIndex), interval)
		case s.ID == SecCode && yield:
			s.Data, err = instrumentCode(s.Data, check, opt.CheckCalls, &st)
		case s.ID == SecData && opt.MergeGap > 0 && !Has(secs, SecDataCount):
			s.Data, err = mergeData(s.Data, opt.MergeGap, &st)
		}
		if err != nil {
			return nil, st, err
		}
		out = append(out, s)
	}
	return Encode(out), st, nil
}

// countdownCheck is the code inserted at the top of every loop (and
// function, with CheckCalls):
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if
//	  call $yield
//	  i32.const interval  global.set $fuel
//	end
func countdownCheck(fuel, yield uint32, interval int32) []byte {
	b := appendU32([]byte{0x23}, fuel)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	b = appendU32(b, fuel)
	b = append(b, 0x23)
	b = appendU32(b, fuel)
	b = append(b, 0x45, 0x04, 0x40, 0x10)
	b = appendU32(b, yield)
	b = append(b, 0x41)
	b = appendS32(b, interval)
	b = append(b, 0x24)
	b = appendU32(b, fuel)
	return append(b, 0x0b)
}

// sectionOrder gives the position a non-custom section must have; data
// count sits between element and code.
func sectionOrder(id byte) int {
	switch id {
	case SecDataCount:
		return 10
	case SecCode:
		return 11
	case SecData:
		return 12
	}
	return int(id)
}

// ensureSection adds an empty section with the given id, in its place in
// the section order, unless the module has one.
func ensureSection(secs []Section, id byte) []Section {
	at := len(secs)
	for i, s := range secs {
		if s.ID == id {
			return secs
		}
		if s.ID != SecCustom && sectionOrder(s.ID) > sectionOrder(id) && at == len(secs) {
			at = i
		}
	}
	out := make([]Section, 0, len(secs)+1)
	out = append(out, secs[:at]...)
	out = append(out, Section{ID: id, Data: []byte{0}})
	return append(out, secs[at:]...)
}

type importInfo struct {
	globals    uint32 // imported globals, which come before defined ones
	yieldIndex int    // function index of the yield import, or -1
}

func scanImports(secs []Section, yieldModule, yieldName string) (importInfo, error) {
	info := importInfo{yieldIndex: -1}
	funcs := 0
	for _, s := range secs {
		if s.ID != SecImport {
			continue
		}
		r := reader{b: s.Data}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			mod, name := r.name(), r.name()
			switch kind := r.byte(); kind {
			case KindFunc:
				r.u32()
				if mod == yieldModule && name == yieldName && info.yieldIndex < 0 {
					info.yieldIndex = funcs
				}
				funcs++
			case KindTable:
				r.byte()
				readLimits(&r)
			case KindMemory:
				return info, ErrImportedMemory
			case KindGlobal:
				r.byte()
				r.byte()
				info.globals++
			default:
				r.fail(fmt.Errorf("unknown import kind 0x%02x", kind))
			}
		}
		if r.err != nil {
			return info, fmt.Errorf("import section: %w", r.err)
		}
	}
	return info, nil
}

func readLimits(r *reader) (min, max uint32, hasMax bool) {
	flag := r.byte()
	if flag > 1 {
		r.fail(fmt.Errorf("unsupported limits flag 0x%02x (shared or 64-bit memory)", flag))
		return
	}
	min = r.u32()
	if flag == 1 {
		max, hasMax = r.u32(), true
	}
	return
}

func capMemory(data []byte, maxPages uint32) ([]byte, error) {
	r := reader{b: data}
	n := r.u32()
	out := appendU32(nil, n)
	for i := uint32(0); i < n; i++ {
		min, max, hasMax := readLimits(&r)
		if r.err != nil {
			return nil, fmt.Errorf("memory section: %w", r.err)
		}
		if min > maxPages {
			return nil, fmt.Errorf("%w: %d pages (%d MiB) requested, cap %d pages (%d MiB)",
				ErrMemoryTooLarge, min, min/16, maxPages, maxPages/16)
		}
		if !hasMax || max > maxPages {
			max = maxPages
		}
		out = append(out, 0x01)
		out = appendU32(out, min)
		out = appendU32(out, max)
	}
	return append(out, data[r.pos:]...), nil
}

// appendCountdown adds (global (mut i32) (i32.const interval)) and returns
// its index.
func appendCountdown(data []byte, imported uint32, interval int32) ([]byte, uint32, error) {
	r := reader{b: data}
	n := r.u32()
	if r.err != nil {
		return nil, 0, fmt.Errorf("global section: %w", r.err)
	}
	out := appendU32(nil, n+1)
	out = append(out, data[r.pos:]...)
	out = append(out, 0x7f, 0x01, 0x41)
	out = appendS32(out, interval)
	out = append(out, 0x0b)
	return out, imported + n, nil
}

func instrumentCode(data, check []byte, calls bool, st *Stats) ([]byte, error) {
	r := reader{b: data}
	n := r.u32()
	out := make([]byte, 0, len(data)+len(data)/8)
	out = appendU32(out, n)
	var body []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("code section, function %d: %w", i, r.err)
		}
		var err error
		body, err = instrumentBody(body[:0], code, check, calls, st)
		if err != nil {
			return nil, fmt.Errorf("code section, function %d: %w", i, err)
		}
		st.Functions++
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if !r.done() {
		return nil, errors.New("code section: data after the last function")
	}
	return out, nil
}

func instrumentBody(out, code, check []byte, calls bool, st *Stats) ([]byte, error) {
	r := reader{b: code}
	nlocals := r.u32()
	for i := uint32(0); i < nlocals; i++ {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	last := 0
	if calls {
		out = append(out, code[:r.pos]...)
		out = append(out, check...)
		last = r.pos
		st.Checks++
	}
	for !r.done() {
		op := r.byte()
		isLoop, err := skipImmediates(&r, op)
		if err != nil {
			return nil, fmt.Errorf("opcode 0x%02x at offset %d: %w", op, r.pos, err)
		}
		if isLoop {
			out = append(out, code[last:r.pos]...)
			out = append(out, check...)
			last = r.pos
			st.Checks++
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, code[last:]...), nil
}

var errUnsupportedOp = errors.New("unsupported instruction")

// skipImmediates reads the immediates of op and reports whether op is loop.
func skipImmediates(r *reader, op byte) (bool, error) {
	switch {
	case op == 0x02 || op == 0x04: // block, if
		readBlockType(r)
	case op == 0x03: // loop
		readBlockType(r)
		return true, r.err
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x10: // call
		r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		n := r.u32()
		r.bytes(int(n))
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.u32()
		r.u32()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.byte()
	case op == 0x41:
		r.leb(32)
	case op == 0x42:
		r.leb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		skipMisc(r, r.u32())
	case op == 0xfd:
		skipSIMD(r, r.u32())
	case op == 0xfe: // atomics
		if sub := r.u32(); sub == 0x03 {
			r.byte()
		} else {
			r.u32()
			r.u32()
		}
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
		// no immediates
	default:
		return false, errUnsupportedOp
	}
	return false, r.err
}

func readBlockType(r *reader) {
	if r.pos >= len(r.b) {
		r.fail(errEOF)
		return
	}
	switch r.b[r.pos] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		r.pos++
	default:
		r.leb(33)
	}
}

func skipMisc(r *reader, sub uint32) {
	switch {
	case sub <= 7:
	case sub == 8: // memory.init
		r.u32()
		r.byte()
	case sub == 9, sub == 13, sub >= 15 && sub <= 17:
		r.u32()
	case sub == 10:
		r.byte()
		r.byte()
	case sub == 11:
		r.byte()
	case sub == 12, sub == 14:
		r.u32()
		r.u32()
	default:
		r.fail(errUnsupportedOp)
	}
}

func skipSIMD(r *reader, sub uint32) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, stores
		r.u32()
		r.u32()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // lane access
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		r.u32()
		r.u32()
		r.byte()
	}
}

type segment struct {
	offset uint32
	data   []byte
	owned  bool // data is a copy, not the module's bytes
}

// mergeData merges active data segments of memory 0 with constant offsets.
// It returns the section unchanged if any segment is of another kind or
// segments overlap.
func mergeData(data []byte, gap int, st *Stats) ([]byte, error) {
	r := reader{b: data}
	n := r.u32()
	segs := make([]segment, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		if flag := r.u32(); flag != 0 {
			st.Segments = int(n)
			return data, nil // passive or explicit memory index
		}
		if r.byte() != 0x41 { // i32.const
			st.Segments = int(n)
			return data, nil
		}
		off := r.leb(32)
		if r.byte() != 0x0b {
			r.fail(errors.New("data segment offset is not a constant expression"))
		}
		size := r.u32()
		segs = append(segs, segment{offset: uint32(off), data: r.bytes(int(size))})
	}
	if r.err != nil {
		return nil, fmt.Errorf("data section: %w", r.err)
	}
	// Without overlaps the order of active segments does not matter.
	sort.Slice(segs, func(i, j int) bool { return segs[i].offset < segs[j].offset })
	var merged []segment
	for _, s := range segs {
		if k := len(merged); k > 0 {
			last := &merged[k-1]
			end := uint64(last.offset) + uint64(len(last.data))
			if uint64(s.offset) < end {
				st.Segments = int(n)
				return data, nil // overlapping: order matters, leave alone
			}
			if uint64(s.offset)-end <= uint64(gap) {
				if !last.owned {
					last.data, last.owned = append([]byte(nil), last.data...), true
				}
				last.data = append(last.data, make([]byte, uint64(s.offset)-end)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		merged = append(merged, s)
	}
	out := appendU32(nil, uint32(len(merged)))
	for _, s := range merged {
		out = append(out, 0x00, 0x41)
		out = appendS32(out, int32(s.offset))
		out = append(out, 0x0b)
		out = appendU32(out, uint32(len(s.data)))
		out = append(out, s.data...)
	}
	st.Segments = len(merged)
	return out, nil
}
