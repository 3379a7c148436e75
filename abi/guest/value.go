package guest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the JSON type of a Value.
type Kind uint8

// Kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a parsed JSON value. It is built without reflection: an object
// keeps its members in order, a number keeps its text. The zero Value is
// JSON null.
type Value struct {
	kind Kind
	b    bool
	s    string // string contents, or the text of a number
	arr  []*Value
	obj  []Member
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value *Value
}

// Constructors.

// NewString returns a JSON string.
func NewString(s string) *Value { return &Value{kind: String, s: s} }

// NewBool returns a JSON boolean.
func NewBool(b bool) *Value { return &Value{kind: Bool, b: b} }

// NewNumber returns a JSON number. NaN and infinities become null.
func NewNumber(f float64) *Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &Value{}
	}
	return &Value{kind: Number, s: strconv.FormatFloat(f, 'g', -1, 64)}
}

// NewInt returns a JSON number holding an integer.
func NewInt(i int64) *Value { return &Value{kind: Number, s: strconv.FormatInt(i, 10)} }

// NewObject returns an empty JSON object.
func NewObject() *Value { return &Value{kind: Object} }

// NewArray returns a JSON array of the given elements.
func NewArray(elems ...*Value) *Value { return &Value{kind: Array, arr: elems} }

// Accessors. Each is safe on a nil *Value, which behaves as a missing value.

// Kind returns the JSON type; a nil Value is Null.
func (v *Value) Kind() Kind {
	if v == nil {
		return Null
	}
	return v.kind
}

// Str returns the contents of a string value and true, or "" and false.
func (v *Value) Str() (string, bool) {
	if v == nil || v.kind != String {
		return "", false
	}
	return v.s, true
}

// String returns the contents of a string, the text of a number or a
// boolean, or "" for other kinds. It never returns JSON for containers.
func (v *Value) String() string {
	if v == nil {
		return ""
	}
	switch v.kind {
	case String, Number:
		return v.s
	case Bool:
		return strconv.FormatBool(v.b)
	}
	return ""
}

// Float returns a number value (or a string holding a number) as float64.
func (v *Value) Float() (float64, bool) {
	if v == nil || (v.kind != Number && v.kind != String) {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.s, 64)
	return f, err == nil
}

// Bool returns a boolean value.
func (v *Value) Bool() (bool, bool) {
	if v == nil || v.kind != Bool {
		return false, false
	}
	return v.b, true
}

// Len returns the number of elements of an array or members of an object.
func (v *Value) Len() int {
	if v == nil {
		return 0
	}
	switch v.kind {
	case Array:
		return len(v.arr)
	case Object:
		return len(v.obj)
	}
	return 0
}

// Index returns element i of an array, or nil.
func (v *Value) Index(i int) *Value {
	if v == nil || v.kind != Array || i < 0 || i >= len(v.arr) {
		return nil
	}
	return v.arr[i]
}

// Key returns the member named key of an object, or nil.
func (v *Value) Key(key string) *Value {
	if v == nil || v.kind != Object {
		return nil
	}
	for i := range v.obj {
		if v.obj[i].Key == key {
			return v.obj[i].Value
		}
	}
	return nil
}

// Members returns the members of an object, in order. The slice must not
// be modified; use Set and Delete.
func (v *Value) Members() []Member {
	if v == nil || v.kind != Object {
		return nil
	}
	return v.obj
}

// Elems returns the elements of an array.
func (v *Value) Elems() []*Value {
	if v == nil || v.kind != Array {
		return nil
	}
	return v.arr
}

// Mutators.

// SetKey sets member key of an object, keeping its position if it exists.
func (v *Value) SetKey(key string, val *Value) {
	if v.kind != Object {
		return
	}
	if val == nil {
		val = &Value{}
	}
	for i := range v.obj {
		if v.obj[i].Key == key {
			v.obj[i].Value = val
			return
		}
	}
	v.obj = append(v.obj, Member{Key: key, Value: val})
}

// DeleteKey removes member key of an object and reports whether it existed.
func (v *Value) DeleteKey(key string) bool {
	if v == nil || v.kind != Object {
		return false
	}
	for i := range v.obj {
		if v.obj[i].Key == key {
			v.obj = append(v.obj[:i], v.obj[i+1:]...)
			return true
		}
	}
	return false
}

// RenameKey renames member from of an object to to, keeping its position,
// and reports whether from existed. Other members already named to are
// removed, so that keys stay unique.
func (v *Value) RenameKey(from, to string) bool {
	if v == nil || v.kind != Object {
		return false
	}
	i := -1
	for j := range v.obj {
		if v.obj[j].Key == from {
			i = j
			break
		}
	}
	if i < 0 {
		return false
	}
	if from == to {
		return true
	}
	v.obj[i].Key = to
	kept := v.obj[:0]
	for j, m := range v.obj {
		if j == i || m.Key != to {
			kept = append(kept, m)
		}
	}
	clear(v.obj[len(kept):])
	v.obj = kept
	return true
}

// Append adds elements to an array.
func (v *Value) Append(elems ...*Value) {
	if v.kind == Array {
		v.arr = append(v.arr, elems...)
	}
}

// SetString replaces the value with a string, in place.
func (v *Value) SetString(s string) { *v = Value{kind: String, s: s} }

// Paths. A path is a dot-separated list of object keys and array indexes,
// such as "exception.values.0.type".

// Get returns the value at path, or nil.
func (v *Value) Get(path string) *Value {
	cur := v
	for path != "" && cur != nil {
		var seg string
		seg, path = cutPath(path)
		cur = cur.child(seg)
	}
	return cur
}

func (v *Value) child(seg string) *Value {
	switch v.kind {
	case Object:
		return v.Key(seg)
	case Array:
		i, ok := arrayIndex(seg)
		if !ok {
			return nil
		}
		return v.Index(i)
	}
	return nil
}

// ErrPath is returned by Set when a path crosses a value that is neither an
// object nor an array, or names an array element that does not exist.
var ErrPath = errors.New("path does not lead to a settable place")

// Set stores val at path, creating objects for missing keys along the way.
// An array element can be replaced, or appended by using the array's length.
func (v *Value) Set(path string, val *Value) error {
	if path == "" {
		return fmt.Errorf("set %q: empty path: %w", path, ErrPath)
	}
	full := path
	cur := v
	for {
		var seg string
		seg, path = cutPath(path)
		last := path == ""
		switch cur.kind {
		case Object:
			if last {
				cur.SetKey(seg, val)
				return nil
			}
			next := cur.Key(seg)
			if next == nil || (next.kind != Object && next.kind != Array) {
				next = NewObject()
				cur.SetKey(seg, next)
			}
			cur = next
		case Array:
			i, ok := arrayIndex(seg)
			if !ok || i > len(cur.arr) {
				return fmt.Errorf("set %q: %q is not an index of an array of %d: %w", full, seg, len(cur.arr), ErrPath)
			}
			if i == len(cur.arr) {
				if last {
					cur.arr = append(cur.arr, val)
					return nil
				}
				cur.arr = append(cur.arr, NewObject())
			}
			if last {
				cur.arr[i] = val
				return nil
			}
			next := cur.arr[i]
			if next.kind != Object && next.kind != Array {
				next = NewObject()
				cur.arr[i] = next
			}
			cur = next
		default:
			return fmt.Errorf("set %q: %s is not a container: %w", full, cur.kind, ErrPath)
		}
	}
}

// Delete removes the value at path and reports whether it existed. Deleting
// an array element shifts the elements after it.
func (v *Value) Delete(path string) bool {
	i := strings.LastIndexByte(path, '.')
	parent, seg := v, path
	if i >= 0 {
		parent, seg = v.Get(path[:i]), path[i+1:]
	}
	if parent == nil {
		return false
	}
	switch parent.kind {
	case Object:
		return parent.DeleteKey(seg)
	case Array:
		n, ok := arrayIndex(seg)
		if !ok || n >= len(parent.arr) {
			return false
		}
		parent.arr = append(parent.arr[:n], parent.arr[n+1:]...)
		return true
	}
	return false
}

// Walk calls fn for every value in the tree, depth first, with the key of
// the member holding it ("" for array elements and the root). If fn returns
// false the children of that value are skipped.
func (v *Value) Walk(fn func(key string, v *Value) bool) {
	v.walk("", fn)
}

func (v *Value) walk(key string, fn func(string, *Value) bool) {
	if v == nil || !fn(key, v) {
		return
	}
	switch v.kind {
	case Array:
		for _, e := range v.arr {
			e.walk("", fn)
		}
	case Object:
		for _, m := range v.obj {
			m.Value.walk(m.Key, fn)
		}
	}
}

func cutPath(path string) (seg, rest string) {
	if i := strings.IndexByte(path, '.'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return path, ""
}

func arrayIndex(seg string) (int, bool) {
	if seg == "" || len(seg) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// Encoding.

// AppendJSON appends the JSON encoding of v to dst. Strings are written as
// valid UTF-8, with invalid bytes replaced by U+FFFD.
func (v *Value) AppendJSON(dst []byte) []byte {
	return v.appendJSON(dst)
}

// JSON returns the encoding of v.
func (v *Value) JSON() []byte { return v.appendJSON(nil) }

func (v *Value) appendJSON(dst []byte) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		return append(dst, v.s...)
	case String:
		return appendQuoted(dst, v.s)
	case Array:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendJSON(dst)
		}
		return append(dst, ']')
	case Object:
		dst = append(dst, '{')
		for i, m := range v.obj {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, m.Key)
			dst = append(dst, ':')
			dst = m.Value.appendJSON(dst)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

const hexDigits = "0123456789abcdef"

func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Parsing.

// MaxDepth is the deepest nesting of arrays and objects Parse accepts.
const MaxDepth = 256

// SyntaxError is a JSON syntax error at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset)
}

// Parse parses one JSON value; only whitespace may follow it.
func Parse(data []byte) (*Value, error) {
	p := parser{data: data}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.fail("unexpected data after the value")
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) fail(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*Value, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &Value{kind: String, s: s}, nil
	case c == 't':
		return p.literal("true", &Value{kind: Bool, b: true})
	case c == 'f':
		return p.literal("false", &Value{kind: Bool})
	case c == 'n':
		return p.literal("null", &Value{})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, p.fail(fmt.Sprintf("invalid character %q", p.data[p.pos]))
}

func (p *parser) literal(lit string, v *Value) (*Value, error) {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.fail("invalid literal")
	}
	p.pos += len(lit)
	return v, nil
}

func (p *parser) object(depth int) (*Value, error) {
	if depth > MaxDepth {
		return nil, p.fail("nesting too deep")
	}
	p.pos++ // '{'
	v := &Value{kind: Object}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("expected ':' after a key")
		}
		p.pos++
		val, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		v.obj = append(v.obj, Member{Key: key, Value: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return nil, p.fail("expected ',' or '}' in an object")
		}
	}
}

func (p *parser) array(depth int) (*Value, error) {
	if depth > MaxDepth {
		return nil, p.fail("nesting too deep")
	}
	p.pos++ // '['
	v := &Value{kind: Array}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		e, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, e)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return nil, p.fail("expected ',' or ']' in an array")
		}
	}
}

func (p *parser) number() (*Value, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return nil, p.fail("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return nil, p.fail("invalid number: digits must follow '.'")
		}
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return nil, p.fail("invalid number: digits must follow the exponent")
		}
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	}
	return &Value{kind: Number, s: string(d[start:p.pos])}, nil
}

// str parses a quoted string at p.pos.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	// Fast path: no escapes, ASCII or valid UTF-8.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := d[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return fixUTF8(s), nil
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.fail("control character in a string")
		}
		p.pos++
	}
	if p.pos >= len(d) {
		return "", p.fail("unterminated string")
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, d[start:p.pos]...)
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return fixUTF8(buf), nil
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(d) {
			break
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := replacementChar
				if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					if lo, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
							r2 = dec
						} else {
							p.pos = save
						}
					} else {
						p.pos = save
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.pos--
			return "", p.fail(fmt.Sprintf("invalid escape '\\%c'", e))
		}
	}
	return "", p.fail("unterminated string")
}

const replacementChar = '\uFFFD'

// fixUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func fixUTF8(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, replacementChar)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return string(out)
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
