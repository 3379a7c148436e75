package cluster

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMetaSize asserts that node metadata stays within MaxMetaSize (256
// bytes; memberlist panics past 512) in the worst case the config allows.
func TestMetaSize(t *testing.T) {
	worst := nodeMeta{
		epoch:    math.MaxUint64,
		httpAddr: strings.Repeat("h", MaxHTTPAddrLen-6) + ":65535",
		load:     Load{EventsPerSec: math.Inf(1), QueueDepth: math.MaxInt, Busy: 7, Instances: math.MaxInt},
		leaving:  true,
	}
	cfg := testConfig("n", 1)
	cfg.HTTPAddr = worst.httpAddr
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatalf("the worst-case HTTP address is not a valid config: %v", err)
	}
	if n := len(worst.encode()); n > MaxMetaSize {
		t.Errorf("worst-case metadata is %d bytes, want at most %d", n, MaxMetaSize)
	} else {
		t.Logf("worst-case metadata: %d bytes", n)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   nodeMeta
		want nodeMeta
	}{
		{"zero", nodeMeta{}, nodeMeta{}},
		{"typical",
			nodeMeta{epoch: 1735689600000000, httpAddr: "10.0.0.1:8080", load: Load{EventsPerSec: 1250.5, QueueDepth: 17, Busy: 0.25, Instances: 4}},
			nodeMeta{epoch: 1735689600000000, httpAddr: "10.0.0.1:8080", load: Load{EventsPerSec: 1250.5, QueueDepth: 17, Busy: 0.25, Instances: 4}}},
		{"leaving", nodeMeta{epoch: 1, leaving: true}, nodeMeta{epoch: 1, leaving: true}},
		{"clamped",
			nodeMeta{load: Load{EventsPerSec: math.NaN(), QueueDepth: -5, Busy: 1.5, Instances: -1}},
			nodeMeta{load: Load{Busy: 1}}},
		{"busy resolution", nodeMeta{load: Load{Busy: 0.123456}}, nodeMeta{load: Load{Busy: 0.1235}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMeta(tt.in.encode())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	good := nodeMeta{epoch: 5, httpAddr: "a:1"}.encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"long address", append([]byte{1, 0, 5, 0xff, 0x01}, bytes.Repeat([]byte("a"), 255)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := decodeMeta(tt.in); err == nil {
				t.Errorf("got %+v, want an error", m)
			}
		})
	}
	// A later version with more fields is read.
	if _, err := decodeMeta(append(append([]byte{2}, good[1:]...), 9, 9)); err != nil {
		t.Errorf("version 2 with extra fields: %v", err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(nodeMeta{}.encode())
	f.Add(nodeMeta{epoch: 1 << 60, httpAddr: "[::1]:80", load: Load{EventsPerSec: 3, QueueDepth: 4, Busy: 0.5, Instances: 6}, leaving: true}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if m.load.Busy < 0 || m.load.Busy > 1 || m.load.QueueDepth < 0 || m.load.Instances < 0 {
			t.Errorf("decoded load out of range: %+v", m.load)
		}
		// Encoding normalizes (clamps) once; after that it is stable.
		b1 := m.encode()
		if len(b1) > MaxMetaSize {
			t.Errorf("re-encoded metadata is %d bytes, want at most %d", len(b1), MaxMetaSize)
		}
		m1, err := decodeMeta(b1)
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", m, err)
		}
		if b2 := m1.encode(); !bytes.Equal(b1, b2) {
			t.Errorf("encoding is not stable: %x then %x", b1, b2)
		}
	})
}

func testRecords() []*record {
	since := time.UnixMilli(1735689600123).UTC()
	return []*record{
		{node: "n", kind: recordInstances, epoch: 1, seq: 1},
		{node: "node-1", kind: recordInstances, epoch: 1735689600000000, seq: 42, instances: []Instance{
			{Processor: "enrich", ID: "1", Node: "node-1", Version: sha, Kind: KindLocal, State: "running", Since: since},
			{Processor: "scrub", ID: "2", Node: "node-1", Version: "v1", Kind: KindSpawned, For: "node-2", State: "draining"},
			{Processor: "x", ID: "3", Node: "node-1", Version: strings.ToUpper(sha)},
		}},
		{node: "node-2", kind: recordInterests, epoch: 7, seq: 8, interests: []string{"a", "b"}},
		{node: "node-3", kind: recordInterests, epoch: 7, seq: 9},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range testRecords() {
		t.Run(r.node, func(t *testing.T) {
			msg := r.encode()
			got, err := decodeRecord(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got.node != r.node || got.kind != r.kind || got.epoch != r.epoch || got.seq != r.seq ||
				!slices.EqualFunc(got.instances, r.instances, equalInstances) || !slices.Equal(got.interests, r.interests) ||
				!bytes.Equal(got.msg, msg) {
				t.Errorf("got %+v, want %+v", got, r)
			}
		})
	}
	// A SHA-256 version takes 33 bytes (tag, 32 bytes) rather than 66
	// (tag, length, 64 hex digits).
	short := (&record{kind: recordInstances, instances: []Instance{{Processor: "p", ID: "1", Version: sha}}}).encode()
	long := (&record{kind: recordInstances, instances: []Instance{{Processor: "p", ID: "1", Version: strings.ToUpper(sha)}}}).encode()
	if len(long)-len(short) != 33 {
		t.Errorf("hex version: %d bytes, raw version: %d bytes; want 33 bytes saved", len(long), len(short))
	}
}

func TestStateRoundTrip(t *testing.T) {
	recs := testRecords()
	for _, r := range recs {
		r.msg = r.encode()
	}
	msgs, err := decodeState(encodeState(recs))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(recs) {
		t.Fatalf("got %d records, want %d", len(msgs), len(recs))
	}
	for i, m := range msgs {
		if !bytes.Equal(m, recs[i].msg) {
			t.Errorf("record %d: got %x, want %x", i, m, recs[i].msg)
		}
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := testRecords()[1].encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not a record", append([]byte{msgState}, good[1:]...)},
		{"unknown kind", append([]byte{msgRecord, 9}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(slices.Clone(good), 0)},
		{"huge count", []byte{msgRecord, byte(recordInterests), 1, 'n', 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := decodeRecord(tt.in); err == nil {
				t.Errorf("got %+v, want an error", r)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range testRecords() {
		f.Add(r.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(again.instances, r.instances) || !slices.Equal(again.interests, r.interests) ||
			again.node != r.node || again.epoch != r.epoch || again.seq != r.seq {
			t.Errorf("re-decoding %+v: got %+v, %v", r, again, err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	recs := testRecords()
	for _, r := range recs {
		r.msg = r.encode()
	}
	f.Add(encodeState(recs))
	f.Add(encodeState(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeState(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			decodeRecord(m)
		}
	})
}
