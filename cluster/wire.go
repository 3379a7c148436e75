package cluster

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Registry gossip messages. Each node owns two records: its processor
// instances and its interests. A record is always sent whole and carries
// the owner's (epoch, seq), so applying records in any order, any number
// of times, converges on the newest (see acceptLocked).
//
//	message := msgRecord record | msgState uvarint(n) n×(uvarint(len) record)
//	record  := kind node:string epoch:uvarint seq:uvarint payload
//	instances payload := uvarint(n) n×(processor id version kind for state since)
//	interests payload := uvarint(n) n×key:string
//
// A version that is a lowercase hex SHA-256 is sent as its 32 bytes.
const (
	msgRecord byte = 1 // one record, by gossip broadcast or direct TCP push
	msgState  byte = 2 // all records a node knows, in push/pull
)

type recordKind uint8

const (
	recordInstances recordKind = 1
	recordInterests recordKind = 2
)

// maxGossipRecord is the largest record message sent by UDP gossip. A
// gossip packet holds 1400 bytes minus headers and encryption overhead
// (~1370); leaving room lets a record share a packet with membership
// messages. Bigger records go to each peer over TCP instead.
const maxGossipRecord = 1000

// record is one node's instances or interests at one version.
type record struct {
	node       string
	kind       recordKind
	epoch, seq uint64
	instances  []Instance // recordInstances; Node is implied by node
	interests  []string   // recordInterests
	msg        []byte     // the encoded msgRecord message
}

// newer reports whether r is a later version than o of the same node's
// record.
func (r *record) newer(o *record) bool {
	return r.epoch > o.epoch || r.epoch == o.epoch && r.seq > o.seq
}

const (
	versionString byte = 0
	versionSHA256 byte = 1
)

// encode returns the msgRecord message for r.
func (r *record) encode() []byte {
	b := []byte{msgRecord, byte(r.kind)}
	b = appendString(b, r.node)
	b = binary.AppendUvarint(b, r.epoch)
	b = binary.AppendUvarint(b, r.seq)
	switch r.kind {
	case recordInstances:
		b = binary.AppendUvarint(b, uint64(len(r.instances)))
		for _, in := range r.instances {
			b = appendString(b, in.Processor)
			b = appendString(b, in.ID)
			if sum, ok := sha256Hex(in.Version); ok {
				b = append(b, versionSHA256)
				b = append(b, sum...)
			} else {
				b = append(b, versionString)
				b = appendString(b, in.Version)
			}
			b = appendString(b, in.Kind)
			b = appendString(b, in.For)
			b = appendString(b, in.State)
			b = appendTime(b, in.Since)
		}
	case recordInterests:
		b = binary.AppendUvarint(b, uint64(len(r.interests)))
		for _, k := range r.interests {
			b = appendString(b, k)
		}
	}
	return b
}

// sha256Hex returns the 32 bytes of a lowercase hex SHA-256.
func sha256Hex(s string) ([]byte, bool) {
	if len(s) != 64 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	sum, err := hex.DecodeString(s)
	return sum, err == nil
}

// decodeRecord decodes a msgRecord message. The result keeps its own copy
// of msg.
func decodeRecord(msg []byte) (*record, error) {
	d := decoder{b: msg}
	if t := d.byte(); d.err == nil && t != msgRecord {
		return nil, fmt.Errorf("message type %d is not a record", t)
	}
	r := &record{kind: recordKind(d.byte())}
	r.node = d.string(MaxNodeNameLen)
	r.epoch = d.uvarint()
	r.seq = d.uvarint()
	switch r.kind {
	case recordInstances:
		n := d.count()
		r.instances = make([]Instance, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			in := Instance{Node: r.node}
			in.Processor = d.string(MaxFieldLen)
			in.ID = d.string(MaxFieldLen)
			switch d.byte() {
			case versionSHA256:
				in.Version = hex.EncodeToString(d.bytes(32))
			case versionString:
				in.Version = d.string(MaxFieldLen)
			default:
				d.fail(errors.New("unknown version encoding"))
			}
			in.Kind = d.string(MaxFieldLen)
			in.For = d.string(MaxNodeNameLen)
			in.State = d.string(MaxFieldLen)
			in.Since = d.time()
			r.instances = append(r.instances, in)
		}
	case recordInterests:
		n := d.count()
		r.interests = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			r.interests = append(r.interests, d.string(MaxFieldLen))
		}
	default:
		if d.err == nil {
			d.fail(fmt.Errorf("unknown record kind %d", r.kind))
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode registry record: %w", d.err)
	}
	r.msg = append([]byte(nil), msg...)
	return r, nil
}

// encodeState returns the msgState message holding records.
func encodeState(records []*record) []byte {
	size := 1 + binary.MaxVarintLen64
	for _, r := range records {
		size += binary.MaxVarintLen64 + len(r.msg)
	}
	b := make([]byte, 0, size)
	b = append(b, msgState)
	b = binary.AppendUvarint(b, uint64(len(records)))
	for _, r := range records {
		b = binary.AppendUvarint(b, uint64(len(r.msg)))
		b = append(b, r.msg...)
	}
	return b
}

// decodeState splits a msgState message into record messages (which alias
// msg).
func decodeState(msg []byte) ([][]byte, error) {
	d := decoder{b: msg}
	if t := d.byte(); d.err == nil && t != msgState {
		return nil, fmt.Errorf("message type %d is not a state", t)
	}
	n := d.count()
	msgs := make([][]byte, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		msgs = append(msgs, d.bytes(d.count()))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode registry state: %w", d.err)
	}
	return msgs, nil
}
