// Package wasmbin reads and rewrites WebAssembly binaries at the level of
// sections and instructions: enough to add or replace a custom section and
// to instrument a module before it is compiled (see Instrument). It does not
// validate modules; wazero does that when the result is compiled.
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

// Section ids.
const (
	SecCustom    byte = 0
	SecType      byte = 1
	SecImport    byte = 2
	SecFunction  byte = 3
	SecTable     byte = 4
	SecMemory    byte = 5
	SecGlobal    byte = 6
	SecExport    byte = 7
	SecStart     byte = 8
	SecElement   byte = 9
	SecCode      byte = 10
	SecData      byte = 11
	SecDataCount byte = 12
)

var header = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// ErrNotWasm is returned for input that does not start with the Wasm
// binary header.
var ErrNotWasm = errors.New("not a WebAssembly binary (bad magic number or version)")

// Section is one section of a module. For custom sections Name is the
// section's name and Data the bytes after it.
type Section struct {
	ID   byte
	Name string
	Data []byte
}

// Parse splits a module into its sections.
func Parse(module []byte) ([]Section, error) {
	if len(module) < len(header) || !bytes.Equal(module[:len(header)], header) {
		return nil, ErrNotWasm
	}
	r := reader{b: module, pos: len(header)}
	var secs []Section
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, fmt.Errorf("section header at offset %d: %w", r.pos, r.err)
		}
		if uint64(size) > uint64(len(r.b)-r.pos) {
			return nil, fmt.Errorf("section %d at offset %d: size %d exceeds the module", id, r.pos, size)
		}
		data := r.b[r.pos : r.pos+int(size)]
		r.pos += int(size)
		s := Section{ID: id, Data: data}
		if id == SecCustom {
			sr := reader{b: data}
			name := sr.name()
			if sr.err != nil {
				return nil, fmt.Errorf("custom section name: %w", sr.err)
			}
			s.Name, s.Data = name, data[sr.pos:]
		}
		secs = append(secs, s)
	}
	return secs, nil
}

// Encode writes sections back into a module.
func Encode(secs []Section) []byte {
	n := len(header)
	for _, s := range secs {
		n += 6 + len(s.Name) + 5 + len(s.Data)
	}
	out := make([]byte, 0, n)
	out = append(out, header...)
	for _, s := range secs {
		out = append(out, s.ID)
		if s.ID == SecCustom {
			var name []byte
			name = appendU32(name, uint32(len(s.Name)))
			name = append(name, s.Name...)
			out = appendU32(out, uint32(len(name)+len(s.Data)))
			out = append(out, name...)
		} else {
			out = appendU32(out, uint32(len(s.Data)))
		}
		out = append(out, s.Data...)
	}
	return out
}

// CustomSection returns the data of the first custom section named name.
func CustomSection(module []byte, name string) ([]byte, bool, error) {
	secs, err := Parse(module)
	if err != nil {
		return nil, false, err
	}
	for _, s := range secs {
		if s.ID == SecCustom && s.Name == name {
			return s.Data, true, nil
		}
	}
	return nil, false, nil
}

// SetCustomSection returns module with every custom section named name
// removed and one with data appended at the end.
func SetCustomSection(module []byte, name string, data []byte) ([]byte, error) {
	secs, err := Parse(module)
	if err != nil {
		return nil, err
	}
	kept := secs[:0]
	for _, s := range secs {
		if s.ID != SecCustom || s.Name != name {
			kept = append(kept, s)
		}
	}
	return Encode(append(kept, Section{ID: SecCustom, Name: name, Data: data})), nil
}

// reader decodes the primitive encodings of the binary format. The first
// error sticks; reads after it return zero values.
type reader struct {
	b   []byte
	pos int
	err error
}

var errEOF = errors.New("unexpected end of data")

func (r *reader) done() bool { return r.err != nil || r.pos >= len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail(errEOF)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.fail(errEOF)
		return nil
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b
}

// leb reads an LEB128 number of at most maxBits bits and returns it raw.
func (r *reader) leb(maxBits uint) uint64 {
	var v uint64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v
		}
		if shift >= (maxBits+6)/7*7 {
			r.fail(errors.New("LEB128 number too long"))
			return 0
		}
	}
}

func (r *reader) u32() uint32 {
	v := r.leb(32)
	if v > 0xffffffff {
		r.fail(errors.New("u32 out of range"))
		return 0
	}
	return uint32(v)
}

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func appendS32(dst []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

func appendU32(dst []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			dst = append(dst, c|0x80)
			continue
		}
		return append(dst, c)
	}
}

// Import kinds.
const (
	KindFunc   byte = 0x00
	KindTable  byte = 0x01
	KindMemory byte = 0x02
	KindGlobal byte = 0x03
)

// Import is one entry of the import section.
type Import struct {
	Module, Name string
	Kind         byte
}

// KindName names an import or export kind.
func KindName(k byte) string {
	switch k {
	case KindFunc:
		return "function"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	}
	return fmt.Sprintf("kind 0x%02x", k)
}

// Imports lists the imports of a parsed module.
func Imports(secs []Section) ([]Import, error) {
	var out []Import
	for _, s := range secs {
		if s.ID != SecImport {
			continue
		}
		r := reader{b: s.Data}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			im := Import{Module: r.name(), Name: r.name(), Kind: r.byte()}
			switch im.Kind {
			case KindFunc:
				r.u32()
			case KindTable:
				r.byte()
				readLimits(&r)
			case KindMemory:
				readLimits(&r)
			case KindGlobal:
				r.byte()
				r.byte()
			default:
				r.fail(fmt.Errorf("unknown import kind 0x%02x", im.Kind))
			}
			out = append(out, im)
		}
		if r.err != nil {
			return nil, fmt.Errorf("import section: %w", r.err)
		}
	}
	return out, nil
}

// Has reports whether the module has a section with the given id.
func Has(secs []Section, id byte) bool {
	for _, s := range secs {
		if s.ID == id {
			return true
		}
	}
	return false
}
