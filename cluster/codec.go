package cluster

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// The gossip encodings (node metadata, registry records) are hand-written
// binary: varints and length-prefixed strings. They are a few times smaller
// than JSON or msgpack, which matters for metadata capped at 512 bytes and
// for registry updates that must fit in a UDP packet. Decoders never trust
// a length and never panic (fuzzed).

var errShort = errors.New("truncated message")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixMilli())
}

// decoder reads what the append functions wrote. The first error sticks;
// later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must not exceed the bytes left, since every
// counted item takes at least one byte.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// string reads a length-prefixed string of at most max bytes.
func (d *decoder) string(max int) string {
	n := d.uvarint()
	if n > uint64(max) {
		d.fail(errors.New("string too long"))
		return ""
	}
	return string(d.bytes(int(n)))
}

func (d *decoder) time() time.Time {
	ms := d.varint()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func (d *decoder) float32() float64 {
	b := d.bytes(4)
	if b == nil {
		return 0
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}
