package guest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// sameJSON reports whether a and b decode to equal values with encoding/json.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestParseRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e+10`, `"x"`,
		`{"a":[1,2,{"b":null}],"c":"\u00e9\n\t\"\\/","d":{"e":-0.0}}`,
		`{"emoji":"\ud83d\ude00","lone":"\ud800x","ctl":"\u0001"}`,
		` { "spaced" : [ 1 , 2 ] } `,
	} {
		v, err := Parse([]byte(in))
		if err != nil {
			t.Errorf("Parse(%s): %v", in, err)
			continue
		}
		out := v.JSON()
		if !json.Valid(out) {
			t.Errorf("Parse(%s).JSON() = %s, not valid JSON", in, out)
			continue
		}
		if !sameJSON(t, []byte(in), out) {
			t.Errorf("round trip of %s gave %s", in, out)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "unexpected end"},
		{`{`, "expected a string key"},
		{`{"a"}`, "expected ':'"},
		{`{"a":1,}`, "expected a string key"},
		{`[1,]`, "invalid character"},
		{`01`, "unexpected data after"},
		{`1.`, "digits must follow '.'"},
		{`"\x"`, `invalid escape`},
		{`"abc`, "unterminated string"},
		{"\"a\x01\"", "control character"},
		{`tru`, "invalid literal"},
		{`{} x`, "unexpected data after"},
		{strings.Repeat("[", MaxDepth+1), "nesting too deep"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q): got %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	const doc = `{"exception":{"values":[{"type":"ValueError","value":"bad"}]},"tags":{"a.b":"dotted"},"n":3}`
	v, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	gets := []struct{ path, want string }{
		{"exception.values.0.type", "ValueError"},
		{"exception.values.0.value", "bad"},
		{"exception.values.1.type", ""},
		{"exception.values.x", ""},
		{"n", "3"},
		{"n.deeper", ""},
		{"missing.path", ""},
	}
	for _, g := range gets {
		if got := v.Get(g.path).String(); got != g.want {
			t.Errorf("Get(%q) = %q, want %q", g.path, got, g.want)
		}
	}
	if got := v.Key("tags").Key("a.b").String(); got != "dotted" {
		t.Errorf("Key(a.b) = %q, want dotted", got)
	}

	sets := []struct {
		path  string
		value *Value
		err   bool
	}{
		{"exception.values.0.type", NewString("TypeError"), false},
		{"exception.values.1", NewObject(), false}, // append
		{"exception.values.5", NewObject(), true},  // past the end
		{"new.nested.key", NewInt(1), false},
		{"n.x", NewBool(true), false}, // replaces the number with an object
		{"", NewInt(1), true},
	}
	for _, s := range sets {
		err := v.Set(s.path, s.value)
		if (err != nil) != s.err {
			t.Errorf("Set(%q): got error %v, want error %v", s.path, err, s.err)
		}
	}
	if !v.Delete("exception.values.1") || v.Delete("exception.values.1") {
		t.Error("Delete of an array element did not remove exactly one element")
	}
	if !v.Delete("tags") || v.Get("tags") != nil {
		t.Error("Delete(tags) failed")
	}
	want := `{"exception":{"values":[{"type":"TypeError","value":"bad"}]},"n":{"x":true},"new":{"nested":{"key":1}}}`
	if got := v.JSON(); !sameJSON(t, got, []byte(want)) {
		t.Errorf("after edits got %s, want %s", got, want)
	}
}

func TestWalk(t *testing.T) {
	v, _ := Parse([]byte(`{"a":{"password":"x","b":["y",{"c":"z"}]}}`))
	var keys, strs []string
	v.Walk(func(key string, v *Value) bool {
		if s, ok := v.Str(); ok {
			keys, strs = append(keys, key), append(strs, s)
		}
		return key != "password" || v.Kind() != String
	})
	if got := strings.Join(strs, ","); got != "x,y,z" {
		t.Errorf("walked strings %q, want x,y,z", got)
	}
	if got := strings.Join(keys, ","); got != "password,,c" {
		t.Errorf("walked keys %q, want password,,c", got)
	}
}

// FuzzParse checks that Parse agrees with encoding/json on validity and,
// for valid input, produces JSON that means the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null]}`, `"\ud83d\ude00"`, `-0.5e3`, `[[[]]]`, `{"":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := Parse(in)
		valid := json.Valid(in)
		if valid != (err == nil) && !(valid && strings.Contains(errString(err), "nesting too deep")) {
			t.Fatalf("Parse(%q): error %v, encoding/json valid=%v", in, err, valid)
		}
		if err != nil {
			return
		}
		out := v.JSON()
		if !json.Valid(out) {
			t.Fatalf("Parse(%q).JSON() = %q is not valid", in, out)
		}
		var a, b any
		json.Unmarshal(in, &a)
		json.Unmarshal(out, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Parse(%q).JSON() = %q means something else", in, out)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzPaths applies Get, Set and Delete with arbitrary paths to a parsed
// event: nothing panics, a successful Set is visible to Get, and the
// result is still valid JSON.
func FuzzPaths(f *testing.F) {
	f.Add("exception.values.0.type", "x")
	f.Add("tags.a.b", "")
	f.Add("exception.values.9", "y")
	f.Add("..", "z")
	f.Add("level", "warning")
	f.Fuzz(func(t *testing.T, path, s string) {
		v, err := Parse([]byte(`{"exception":{"values":[{"type":"E","value":"v"}]},"tags":{"a":"1"},"level":"error","n":[1,2]}`))
		if err != nil {
			t.Fatal(err)
		}
		v.Get(path)
		if err := v.Set(path, NewString(s)); err == nil {
			if got, ok := v.Get(path).Str(); !ok || got != s {
				t.Fatalf("Set(%q, %q) then Get = %q, %v", path, s, got, ok)
			}
		}
		v.Delete(path)
		if out := v.JSON(); !json.Valid(out) {
			t.Fatalf("invalid JSON after edits at %q: %s", path, out)
		}
	})
}

// TestParseOwnsItsInput checks that a parsed value shares nothing with the
// input: Parse copies it, and strings of the result alias the copy.
func TestParseOwnsItsInput(t *testing.T) {
	in := []byte(`{"a":"x\ny\u00e9","b\"":"plain","c":[1.5,"\ud83d\ude00"],"d":"` + "\xff" + `"}`)
	v, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := string(v.JSON())
	for i := range in {
		in[i] = ' '
	}
	if got := string(v.JSON()); got != want {
		t.Errorf("after changing the input, got %s, want %s", got, want)
	}
	if got, _ := v.Key("a").Str(); got != "x\nyé" {
		t.Errorf("a = %q, want %q", got, "x\nyé")
	}
	if got, _ := v.Key("d").Str(); got != "\ufffd" {
		t.Errorf("d = %q, want U+FFFD", got)
	}
}

// TestParsedContainersGrowApart checks that containers parsed together,
// whose members and elements share one allocation, grow without
// overwriting each other.
func TestParsedContainersGrowApart(t *testing.T) {
	v, err := Parse([]byte("{\"a\":{\"x\":1},\"b\":{\"y\":2},\"c\":[[1],[2]],\"\xff\":{\"\xfe\":3}}"))
	if err != nil {
		t.Fatal(err)
	}
	v.Key("a").SetKey("z", NewInt(3))
	v.Get("c.0").Append(NewInt(4))
	v.Key("\ufffd").SetKey("w", NewInt(5))
	want := `{"a":{"x":1,"z":3},"b":{"y":2},"c":[[1,4],[2]],"�":{"�":3,"w":5}}`
	if got := string(v.JSON()); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestEncodeStrings checks that strings encode as valid JSON that decodes
// to the string, with each invalid byte replaced by U+FFFD.
func TestEncodeStrings(t *testing.T) {
	for _, s := range []string{"", "plain ASCII text, long enough for words", "q\"b\\s/", "\x00\x1f\x7f\n\r\t\b\f",
		"é€😀 mixed with ASCII", "bad \xff\xfe utf-8 \xe2\x82", strings.Repeat("abcdefg\"", 9)} {
		got := NewString(s).JSON()
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q encodes as %s: %v", s, got, err)
			continue
		}
		var want []rune
		for _, r := range s { // each invalid byte is a U+FFFD
			want = append(want, r)
		}
		if back != string(want) {
			t.Errorf("%q encodes as %s, which decodes to %q", s, got, back)
		}
	}
}
