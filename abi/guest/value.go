package guest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
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
func (v *Value) JSON() []byte {
	n := v.sizeHint()
	return v.appendJSON(make([]byte, 0, n+n/16+16))
}

// sizeHint returns the size of the encoding of v, less what escaping adds.
func (v *Value) sizeHint() int {
	if v == nil {
		return 4
	}
	switch v.kind {
	case Bool:
		return 5
	case Number:
		return len(v.s)
	case String:
		return len(v.s) + 2
	case Array:
		n := 1 + len(v.arr)
		for _, e := range v.arr {
			n += e.sizeHint()
		}
		return n
	case Object:
		n := 1 + len(v.obj)
		for _, m := range v.obj {
			n += len(m.Key) + 3 + m.Value.sizeHint()
		}
		return n
	}
	return 4
}

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

// appendQuoted appends s as a JSON string. Runs of bytes that need no
// escaping, found eight bytes at a time, are appended whole.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for {
		i, ascii := scanPlain(s, 0)
		if ascii || utf8.ValidString(s[:i]) {
			dst = append(dst, s[:i]...)
		} else {
			dst = appendFixedUTF8(dst, s[:i])
		}
		if i == len(s) {
			return append(dst, '"')
		}
		switch c := s[i]; c {
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
		s = s[i+1:]
	}
}

// appendFixedUTF8 appends s with each invalid byte replaced by U+FFFD.
func appendFixedUTF8(dst []byte, s string) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, replacementChar)
		} else {
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return dst
}

// Parsing.
//
// Parse allocates little, because Go code in Wasm pays dearly for every
// allocation and for every pointer written while the garbage collector
// runs. It works in two steps:
//
//   - It parses into scratch space that holds no pointers and is reused
//     across calls: each value becomes a node, each container's children
//     a run of kids, and strings, keys and numbers are recorded as spans
//     of the parse's own copy of the input, in which strings with escapes
//     are unescaped in place.
//   - Once the whole input has parsed, build allocates the result: all the
//     Values in one slice, all the object members in another and all the
//     array elements in a third, each container taking an exactly-sized
//     part (its capacity capped, so that appending to it copies rather
//     than overwriting a neighbour). Strings, keys and numbers are the
//     copy's bytes, not copies of their own.
//
// Retaining any part of a parsed value, even one string, retains the whole
// input copy and all the Values parsed with it.
//
// The scratch structs are kept to 16 bytes, with 32-bit offsets: in Wasm,
// copying a larger struct is a call to memmove.

// MaxDepth is the deepest nesting of arrays and objects Parse accepts.
const MaxDepth = 256

// maxInput is the size of the largest input Parse accepts: offsets into it
// are 32-bit.
const maxInput = math.MaxUint32

// SyntaxError is a JSON syntax error at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset)
}

// Parse parses one JSON value; only whitespace may follow it. The input
// must be smaller than 4 GiB.
func Parse(data []byte) (*Value, error) {
	if uint64(len(data)) > maxInput {
		return nil, &SyntaxError{Offset: 0, Msg: "input of 4 GiB or more"}
	}
	p := parsers.Get().(*parser)
	defer p.release()
	p.data = bytes.Clone(data)
	if err := p.value(0); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.fail("unexpected data after the value")
	}
	return p.build(), nil
}

// parser is the state of one Parse. Its data and fixed belong to the
// result; its other slices are scratch space, kept across calls in
// parsers.
type parser struct {
	data  []byte   // the copy of the input
	pos   int      // the next byte of data to parse
	fixed []string // copies of strings whose invalid UTF-8 was replaced

	nodes []node // every value, in the order it starts: the root first
	stack []kid  // children of the containers being parsed, innermost last
	kids  []kid  // children of the containers parsed, each one's together

	members, elems int // how many kids are object members, array elements
}

// node is a parsed value before the result is allocated. The span of a
// string or number is its text; that of a container, its children in kids.
type node struct {
	kind Kind
	b    bool
	span span
}

// kid is a child of a container: the index of its node, and its key if the
// container is an object.
type kid struct {
	key  span
	node uint32
}

// span is the text of a string, key or number, data[start:end], or, if
// fixed, fixed[start]; or the children of a container, kids[start:end].
type span struct {
	start, end uint32
	fixed      bool
}

func spanOf(start, end int) span { return span{start: uint32(start), end: uint32(end)} }

var parsers = sync.Pool{New: func() any { return new(parser) }}

// maxPooled is the most nodes or kids a parser keeps scratch space for; a
// parser that needed more is dropped after use rather than pooled.
const maxPooled = 1 << 14

// release returns p to the pool. The scratch space holds no pointers, so
// there is nothing to clear in it.
func (p *parser) release() {
	if cap(p.nodes) > maxPooled || cap(p.kids) > maxPooled || cap(p.stack) > maxPooled {
		return
	}
	*p = parser{nodes: p.nodes[:0], stack: p.stack[:0], kids: p.kids[:0]}
	parsers.Put(p)
}

// build allocates the result of a successful parse.
func (p *parser) build() *Value {
	vals := make([]Value, len(p.nodes))
	var members []Member
	if p.members > 0 {
		members = make([]Member, p.members)
	}
	var elems []*Value
	if p.elems > 0 {
		elems = make([]*Value, p.elems)
	}
	for i := range p.nodes {
		nd := &p.nodes[i]
		v := &vals[i]
		v.kind, v.b = nd.kind, nd.b
		switch nd.kind {
		case String, Number:
			v.s = p.string(nd.span)
		case Object:
			kids := p.kids[nd.span.start:nd.span.end]
			if len(kids) == 0 {
				continue // an empty object has no members slice
			}
			obj := members[:len(kids):len(kids)]
			members = members[len(kids):]
			for j, k := range kids {
				obj[j] = Member{Key: p.string(k.key), Value: &vals[k.node]}
			}
			v.obj = obj
		case Array:
			kids := p.kids[nd.span.start:nd.span.end]
			if len(kids) == 0 {
				continue
			}
			arr := elems[:len(kids):len(kids)]
			elems = elems[len(kids):]
			for j, k := range kids {
				arr[j] = &vals[k.node]
			}
			v.arr = arr
		}
	}
	return &vals[0]
}

// string returns the string at s. It aliases the bytes of p.data rather
// than copying them, with unsafe.String. That is safe because p.data is
// the parse's own copy of the input, which nothing writes to once the
// input has parsed, when build calls this.
func (p *parser) string(s span) string {
	if s.fixed {
		return p.fixed[s.start]
	}
	b := p.data[s.start:s.end]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (p *parser) fail(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func (p *parser) skipSpace() {
	d, i := p.data, p.pos
	for i < len(d) && d[i] <= ' ' && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	p.pos = i
}

// value parses a value at p.pos and appends it, as its first node, to
// p.nodes.
func (p *parser) value(depth int) error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.nodes = append(p.nodes, node{kind: String, span: s})
		return nil
	case c == 't':
		return p.literal("true", node{kind: Bool, b: true})
	case c == 'f':
		return p.literal("false", node{kind: Bool})
	case c == 'n':
		return p.literal("null", node{})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return p.fail(fmt.Sprintf("invalid character %q", p.data[p.pos]))
}

func (p *parser) literal(lit string, nd node) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.fail("invalid literal")
	}
	p.pos += len(lit)
	p.nodes = append(p.nodes, nd)
	return nil
}

// open appends the node of a container and returns its index and the
// height of the stack below its children.
func (p *parser) open(kind Kind) (self, base int) {
	p.nodes = append(p.nodes, node{kind: kind})
	return len(p.nodes) - 1, len(p.stack)
}

// close moves the children of the container at nodes[self] from the top of
// the stack, above base, to kids.
func (p *parser) close(self, base int) {
	n := len(p.stack) - base
	nd := &p.nodes[self]
	nd.span = spanOf(len(p.kids), len(p.kids)+n)
	p.kids = append(p.kids, p.stack[base:]...)
	p.stack = p.stack[:base]
	if nd.kind == Object {
		p.members += n
	} else {
		p.elems += n
	}
}

func (p *parser) object(depth int) error {
	if depth > MaxDepth {
		return p.fail("nesting too deep")
	}
	p.pos++ // '{'
	self, base := p.open(Object)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.fail("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.fail("expected ':' after a key")
		}
		p.pos++
		p.stack = append(p.stack, kid{key: key, node: uint32(len(p.nodes))})
		if err := p.value(depth); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.fail("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.close(self, base)
			return nil
		default:
			return p.fail("expected ',' or '}' in an object")
		}
	}
}

func (p *parser) array(depth int) error {
	if depth > MaxDepth {
		return p.fail("nesting too deep")
	}
	p.pos++ // '['
	self, base := p.open(Array)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.stack = append(p.stack, kid{node: uint32(len(p.nodes))})
		if err := p.value(depth); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.fail("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.close(self, base)
			return nil
		default:
			return p.fail("expected ',' or ']' in an array")
		}
	}
}

func (p *parser) number() error {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		p.digits()
	default:
		return p.fail("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return p.fail("invalid number: digits must follow '.'")
		}
		p.digits()
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(d) || d[p.pos] < '0' || d[p.pos] > '9' {
			return p.fail("invalid number: digits must follow the exponent")
		}
		p.digits()
	}
	p.nodes = append(p.nodes, node{kind: Number, span: spanOf(start, p.pos)})
	return nil
}

func (p *parser) digits() {
	d, i := p.data, p.pos
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	p.pos = i
}

// str parses the quoted string at p.pos and returns the span of its
// contents.
func (p *parser) str() (span, error) {
	d := p.data
	start := p.pos + 1 // after the opening quote
	i, ascii := scanPlain(d, start)
	p.pos = i
	if i >= len(d) {
		return span{}, p.fail("unterminated string")
	}
	switch d[i] {
	case '"':
		p.pos++
		if ascii {
			return spanOf(start, i), nil
		}
		return p.valid(start, i), nil
	case '\\':
		return p.unescape(start)
	}
	return span{}, p.fail("control character in a string")
}

// unescape finishes parsing the string whose contents start at d[start]
// and whose first escape is at d[p.pos]. It unescapes the string in place:
// its contents are never longer than its escaped text (each escape
// shrinks: \n to one byte, \uXXXX to at most three, a surrogate pair to
// four), so they are written over that text, left to right, never ahead of
// the byte being read.
func (p *parser) unescape(start int) (span, error) {
	d := p.data
	w := p.pos // d[start:w] holds the unescaped contents so far
	for {
		// d[p.pos] is a '"', '\\' or control character, or p.pos the end.
		if p.pos >= len(d) {
			return span{}, p.fail("unterminated string")
		}
		switch c := d[p.pos]; {
		case c == '"':
			p.pos++
			return p.valid(start, w), nil
		case c < 0x20:
			return span{}, p.fail("control character in a string")
		}
		p.pos++ // '\\'
		if p.pos >= len(d) {
			return span{}, p.fail("unterminated string")
		}
		e := d[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			d[w] = e
			w++
		case 'b':
			d[w] = '\b'
			w++
		case 'f':
			d[w] = '\f'
			w++
		case 'n':
			d[w] = '\n'
			w++
		case 'r':
			d[w] = '\r'
			w++
		case 't':
			d[w] = '\t'
			w++
		case 'u':
			r, err := p.escapedRune()
			if err != nil {
				return span{}, err
			}
			w += utf8.EncodeRune(d[w:], r)
		default:
			p.pos--
			return span{}, p.fail(fmt.Sprintf("invalid escape '\\%c'", e))
		}
		// Move the plain bytes up to the next special one down to w.
		end, _ := scanPlain(d, p.pos)
		w += copy(d[w:], d[p.pos:end])
		p.pos = end
	}
}

// escapedRune parses the XXXX of a \uXXXX escape at p.pos, and the low half
// that must follow if it is the high half of a surrogate pair. A lone or
// invalid surrogate becomes U+FFFD, as with encoding/json.
func (p *parser) escapedRune() (rune, error) {
	r, ok := hex4(p.data, p.pos)
	if !ok {
		return 0, p.fail("invalid \\u escape")
	}
	p.pos += 4
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	d := p.data
	if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
		if lo, ok := hex4(d, p.pos+2); ok {
			if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
				p.pos += 6
				return dec, nil
			}
		}
	}
	return replacementChar, nil
}

// valid returns the span of a string's contents, data[start:end], if they
// are valid UTF-8, or else of a copy with each invalid byte replaced.
func (p *parser) valid(start, end int) span {
	if utf8.Valid(p.data[start:end]) {
		return spanOf(start, end)
	}
	p.fixed = append(p.fixed, fixUTF8(p.data[start:end]))
	return span{start: uint32(len(p.fixed) - 1), fixed: true}
}

// scanPlain returns the index of the first '"', '\\' or control character
// in d at or after i, or len(d) if there is none, and whether the bytes
// from i to there are all ASCII. It looks at eight bytes at a time while it
// can, which matters in Wasm, where every turn of a loop is expensive.
func scanPlain[T string | []byte](d T, i int) (int, bool) {
	var high uint64 // the bytes seen, ORed together
	for ; i+8 <= len(d); i += 8 {
		x := load64(d, i)
		if hasSpecial(x) {
			break
		}
		high |= x
	}
	for ; i < len(d) && !special[d[i]]; i++ {
		high |= uint64(d[i])
	}
	return i, high&(lsb*0x80) == 0
}

// special marks the bytes that end a run of plain bytes in a string.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// load64 returns the eight bytes at d[i] as a little-endian word; the
// compiler makes it a single load.
func load64[T string | []byte](d T, i int) uint64 {
	d = d[i : i+8]
	return uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16 | uint64(d[3])<<24 |
		uint64(d[4])<<32 | uint64(d[5])<<40 | uint64(d[6])<<48 | uint64(d[7])<<56
}

const lsb = 0x0101010101010101 // the lowest bit of each byte of a word

// hasSpecial reports whether any of the eight bytes of x is special. It
// uses the classic tests for a zero byte, (v-lsb) &^ v, and for a byte
// below n, (x-n*lsb) &^ x, whose top bits are set, in some byte, exactly
// when there is one.
func hasSpecial(x uint64) bool {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((q-lsb)&^q|(b-lsb)&^b|(x-lsb*0x20)&^x)&(lsb*0x80) != 0
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

// hex4 parses the four hexadecimal digits at d[i].
func hex4(d []byte, i int) (rune, bool) {
	if len(d)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
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
	return r, true
}
