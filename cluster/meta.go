package cluster

import (
	"encoding/binary"
	"fmt"
	"math"
)

// nodeMeta is what a node gossips about itself in memberlist's node
// metadata: it travels with every alive message, so it stays small and
// bounded (MaxMetaSize; memberlist panics past 512 bytes).
type nodeMeta struct {
	epoch    uint64
	httpAddr string
	load     Load
	// leaving is set just before a graceful Leave, so that peers can
	// tell a departure from a crash: memberlist calls NotifyLeave for
	// both and, in v0.7.0, does not fill in Node.State.
	leaving bool
}

// metaVersion 1 layout: version byte, flags byte (bit 0 leaving), uvarint
// epoch, string HTTP address, float32 events/s, uvarint queue depth,
// uvarint busy in 1/10000, uvarint instances. Later versions may append
// fields; decoders ignore what follows the fields they know.
const metaVersion = 1

const flagLeaving = 1 << 0

// busyScale is the resolution of Load.Busy in the metadata.
const busyScale = 10000

func (m nodeMeta) encode() []byte {
	b := make([]byte, 0, 32+len(m.httpAddr))
	b = append(b, metaVersion)
	var flags byte
	if m.leaving {
		flags |= flagLeaving
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, m.epoch)
	b = appendString(b, m.httpAddr)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(clampFloat(m.load.EventsPerSec, 0, math.MaxFloat32))))
	b = binary.AppendUvarint(b, clampInt(m.load.QueueDepth))
	b = binary.AppendUvarint(b, uint64(math.Round(clampFloat(m.load.Busy, 0, 1)*busyScale)))
	b = binary.AppendUvarint(b, clampInt(m.load.Instances))
	return b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v < metaVersion {
		return nodeMeta{}, fmt.Errorf("node metadata version %d", v)
	}
	var m nodeMeta
	m.leaving = d.byte()&flagLeaving != 0
	m.epoch = d.uvarint()
	m.httpAddr = d.string(MaxHTTPAddrLen)
	m.load.EventsPerSec = d.float32()
	m.load.QueueDepth = int(min(d.uvarint(), math.MaxUint32))
	m.load.Busy = float64(min(d.uvarint(), busyScale)) / busyScale
	m.load.Instances = int(min(d.uvarint(), math.MaxUint32))
	if d.err != nil {
		return nodeMeta{}, fmt.Errorf("decode node metadata: %w", d.err)
	}
	return m, nil
}

// clampFloat maps NaN to lo and keeps f within [lo, hi].
func clampFloat(f, lo, hi float64) float64 {
	switch {
	case math.IsNaN(f) || f < lo:
		return lo
	case f > hi:
		return hi
	}
	return f
}

// clampInt keeps a count within [0, MaxUint32] so it takes at most five
// varint bytes.
func clampInt(n int) uint64 {
	if n < 0 {
		return 0
	}
	return min(uint64(n), math.MaxUint32)
}
