package abi_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/abi"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  abi.Record
	}{
		{"keep", abi.Record{Index: 3}},
		{"replace", abi.Record{Index: 1, Event: []byte(`{"message":"x"}`)}},
		{"attributes", abi.Record{Index: 0, Fingerprint: "fp", Title: "t", Level: "warning",
			Tags: []abi.Tag{{Key: "a", Value: "1"}, {Key: "", Value: "empty key"}, {Key: "b", Value: ""}}}},
		{"empty fingerprint present", abi.Record{Index: 9, Has: 1 << abi.FieldFingerprint}},
		{"error", abi.Record{Index: 2, Error: "boom"}},
		{"utf-8", abi.Record{Index: 7, Title: "héllo ✓", Tags: []abi.Tag{{Key: "ключ", Value: "значение"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := abi.AppendRecord([]byte("prefix"), &tt.rec)
			got, rest, err := abi.DecodeRecord(enc[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 0 {
				t.Errorf("got %d bytes after the record, want 0", len(rest))
			}
			if got.Index != tt.rec.Index || !bytes.Equal(got.Event, tt.rec.Event) || got.Fingerprint != tt.rec.Fingerprint ||
				got.Title != tt.rec.Title || got.Level != tt.rec.Level || got.Error != tt.rec.Error ||
				!reflect.DeepEqual(got.Tags, tt.rec.Tags) {
				t.Errorf("got %+v, want %+v", got, tt.rec)
			}
			if want := tt.rec.Has.Contains(abi.FieldFingerprint) || tt.rec.Fingerprint != ""; want != got.Has.Contains(abi.FieldFingerprint) {
				t.Errorf("fingerprint presence lost: got %b, want %b", got.Has, tt.rec.Has)
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	valid := abi.AppendRecord(nil, &abi.Record{Index: 1, Title: "t"})
	field := func(typ byte, data string) []byte {
		b := abi.AppendRecordHeader(nil, 0, uint32(5+len(data)))
		return abi.AppendField(b, abi.FieldType(typ), []byte(data))
	}
	twice := abi.AppendRecordHeader(nil, 0, 12)
	twice = abi.AppendField(twice, abi.FieldTitle, []byte("a"))
	twice = abi.AppendField(twice, abi.FieldTitle, []byte("b"))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short header", valid[:5], "truncated"},
		{"size past end", valid[:len(valid)-1], "exceeds the"},
		{"field header cut", append(abi.AppendRecordHeader(nil, 0, 3), 1, 2, 3), "field header"},
		{"unknown field", field(99, "x"), "unknown field type 99"},
		{"repeated field", twice, "title field repeated"},
		{"bad utf-8", field(byte(abi.FieldLevel), "\xff"), "not valid UTF-8"},
		{"tag without key length", field(byte(abi.FieldTag), "x"), "no key length"},
		{"tag key too long", field(byte(abi.FieldTag), "\x09\x00ab"), "exceeds the field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := abi.DecodeRecord(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, _, err := abi.DecodeRecord(valid[:3]); !errors.Is(err, abi.ErrTruncated) {
		t.Errorf("got %v, want ErrTruncated", err)
	}
}

// FuzzDecodeRecord checks that decoding never panics and that whatever
// decodes re-encodes to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(abi.AppendRecord(nil, &abi.Record{Index: 1, Event: []byte(`{}`), Title: "x", Tags: []abi.Tag{{Key: "k", Value: "v"}}}))
	f.Add(abi.AppendRecord(nil, &abi.Record{Index: 0, Error: "e"}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			r, rest, err := abi.DecodeRecord(b)
			if err != nil {
				return
			}
			if len(rest) >= len(b) {
				t.Fatal("decode made no progress")
			}
			b = rest
			again, _, err := abi.DecodeRecord(abi.AppendRecord(nil, &r))
			if err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			if again.Index != r.Index || !bytes.Equal(again.Event, r.Event) || again.Title != r.Title ||
				again.Fingerprint != r.Fingerprint || again.Level != r.Level || again.Error != r.Error ||
				len(again.Tags) != len(r.Tags) {
				t.Fatalf("got %+v after re-encoding, want %+v", again, r)
			}
		}
	})
}
