package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A record carries one event (input) or one result for an event (output):
//
//	record := index:u32 size:u32 field*      // size = bytes of the fields
//	field  := type:u8 len:u32 data[len]
//
// All integers are little-endian. A batch is records laid end to end.

// FieldType identifies a field of a record.
type FieldType uint8

// Field types. Each may appear at most once per record, except FieldTag.
const (
	// FieldEvent is the event as a JSON object. In input records it is
	// always present. In output records it replaces the event; without it
	// the input event is kept as it was.
	FieldEvent FieldType = 1
	// FieldFingerprint is the grouping key; it overrides the default one.
	FieldFingerprint FieldType = 2
	// FieldTitle is the title of the issue the event is grouped into.
	FieldTitle FieldType = 3
	// FieldLevel sets the event's level (debug, info, warning, error, fatal).
	FieldLevel FieldType = 4
	// FieldTag sets one tag: keyLen:u16 key value.
	FieldTag FieldType = 5
	// FieldError reports that the processor failed on this event. The host
	// keeps the input event unprocessed, flags it, and ignores other fields.
	FieldError FieldType = 6
)

func (t FieldType) String() string {
	switch t {
	case FieldEvent:
		return "event"
	case FieldFingerprint:
		return "fingerprint"
	case FieldTitle:
		return "title"
	case FieldLevel:
		return "level"
	case FieldTag:
		return "tag"
	case FieldError:
		return "error"
	}
	return fmt.Sprintf("field(%d)", uint8(t))
}

// RecordHeaderSize is the size of index and size.
const RecordHeaderSize = 8

// FieldHeaderSize is the size of a field's type and length.
const FieldHeaderSize = 5

// Tag is one key/value tag of a record.
type Tag struct {
	Key, Value string
}

// Record is a decoded record. Byte slices alias the decoded buffer.
type Record struct {
	Index       uint32
	Event       []byte
	Fingerprint string
	Title       string
	Level       string
	Tags        []Tag
	Error       string
	// Has records which single-valued fields were present, so that an empty
	// value can be told from an absent one.
	Has FieldSet
}

// FieldSet is a set of field types.
type FieldSet uint16

// Contains reports whether t is in the set.
func (s FieldSet) Contains(t FieldType) bool { return s&(1<<t) != 0 }

func (s *FieldSet) add(t FieldType) { *s |= 1 << t }

// ErrTruncated is returned when a buffer ends inside a record.
var ErrTruncated = errors.New("truncated record")

// AppendRecord appends r, encoded, to dst. Fields absent from r.Has are
// skipped, except Event and Error which are written when non-nil and
// non-empty respectively, and every tag.
func AppendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, r.Index)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // size, patched below
	if r.Event != nil || r.Has.Contains(FieldEvent) {
		dst = AppendField(dst, FieldEvent, r.Event)
	}
	if r.Has.Contains(FieldFingerprint) || r.Fingerprint != "" {
		dst = appendStringField(dst, FieldFingerprint, r.Fingerprint)
	}
	if r.Has.Contains(FieldTitle) || r.Title != "" {
		dst = appendStringField(dst, FieldTitle, r.Title)
	}
	if r.Has.Contains(FieldLevel) || r.Level != "" {
		dst = appendStringField(dst, FieldLevel, r.Level)
	}
	for _, t := range r.Tags {
		dst = AppendTagField(dst, t.Key, t.Value)
	}
	if r.Has.Contains(FieldError) || r.Error != "" {
		dst = appendStringField(dst, FieldError, r.Error)
	}
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(dst)-start-RecordHeaderSize))
	return dst
}

// AppendRecordHeader appends the header of a record whose fields, size bytes
// in all, the caller appends next.
func AppendRecordHeader(dst []byte, index, size uint32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, index)
	return binary.LittleEndian.AppendUint32(dst, size)
}

// AppendField appends one field.
func AppendField(dst []byte, t FieldType, data []byte) []byte {
	dst = append(dst, byte(t))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

func appendStringField(dst []byte, t FieldType, s string) []byte {
	dst = append(dst, byte(t))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// AppendTagField appends a FieldTag field.
func AppendTagField(dst []byte, key, value string) []byte {
	dst = append(dst, byte(FieldTag))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(2+len(key)+len(value)))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// MaxTagKey is the longest tag key a record can carry.
const MaxTagKey = 1<<16 - 1

// DecodeRecord decodes the record at the start of b and returns it with the
// bytes after it. Strings must be valid UTF-8; single-valued fields must not
// repeat; unknown field types are errors.
func DecodeRecord(b []byte) (Record, []byte, error) {
	var r Record
	if len(b) < RecordHeaderSize {
		return r, b, ErrTruncated
	}
	r.Index = binary.LittleEndian.Uint32(b)
	size := binary.LittleEndian.Uint32(b[4:])
	b = b[RecordHeaderSize:]
	if uint64(size) > uint64(len(b)) {
		return r, b, fmt.Errorf("record %d: size %d exceeds the %d bytes left: %w", r.Index, size, len(b), ErrTruncated)
	}
	fields, rest := b[:size], b[size:]
	for len(fields) > 0 {
		if len(fields) < FieldHeaderSize {
			return r, rest, fmt.Errorf("record %d: %w field header", r.Index, ErrTruncated)
		}
		t := FieldType(fields[0])
		n := binary.LittleEndian.Uint32(fields[1:])
		fields = fields[FieldHeaderSize:]
		if uint64(n) > uint64(len(fields)) {
			return r, rest, fmt.Errorf("record %d: %s field of %d bytes exceeds the %d bytes left: %w", r.Index, t, n, len(fields), ErrTruncated)
		}
		data := fields[:n:n]
		fields = fields[n:]
		if t != FieldTag {
			if r.Has.Contains(t) {
				return r, rest, fmt.Errorf("record %d: %s field repeated", r.Index, t)
			}
			if t != FieldEvent && !utf8.Valid(data) {
				return r, rest, fmt.Errorf("record %d: %s field is not valid UTF-8", r.Index, t)
			}
		}
		switch t {
		case FieldEvent:
			r.Event = data
		case FieldFingerprint:
			r.Fingerprint = string(data)
		case FieldTitle:
			r.Title = string(data)
		case FieldLevel:
			r.Level = string(data)
		case FieldError:
			r.Error = string(data)
		case FieldTag:
			if len(data) < 2 {
				return r, rest, fmt.Errorf("record %d: tag field of %d bytes has no key length", r.Index, len(data))
			}
			kl := int(binary.LittleEndian.Uint16(data))
			if kl > len(data)-2 {
				return r, rest, fmt.Errorf("record %d: tag key of %d bytes exceeds the field", r.Index, kl)
			}
			if !utf8.Valid(data[2:]) {
				return r, rest, fmt.Errorf("record %d: tag is not valid UTF-8", r.Index)
			}
			r.Tags = append(r.Tags, Tag{Key: string(data[2 : 2+kl]), Value: string(data[2+kl:])})
			continue
		default:
			return r, rest, fmt.Errorf("record %d: unknown field type %d", r.Index, uint8(t))
		}
		r.Has.add(t)
	}
	return r, rest, nil
}
