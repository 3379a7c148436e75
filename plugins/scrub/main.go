// Command scrub is a processor that masks sensitive data anywhere in an
// event: in string values and object keys at any depth, inside arrays too.
//
// It replaces, inside longer text as well:
//
//   - e-mail addresses (local@domain.tld, the top-level domain two or more
//     letters) with "[email]";
//   - credit-card numbers, 13 to 19 digits optionally grouped by single
//     spaces or dashes, with "[card]", but only when the Luhn check passes:
//     other digit runs are left alone;
//   - IPv4 addresses, four dotted octets 0-255 that are not part of a longer
//     dotted run such as the version 1.2.3.4.5, with "[ip]".
//
// A number must stand alone: a letter, digit or underscore directly before
// or after it means it is part of a word (such as a hash), and a card
// number next to a decimal point is part of a decimal number; neither is
// masked. JSON numbers are left alone; only strings and keys are scanned.
//
// The value of a member whose key contains one of the configured key names,
// compared case-insensitively, is replaced whole by the mask, whatever its
// type. So is the second element of a two-element array whose first
// element is such a name: the [name, value] pairs Sentry uses for headers
// and cookies. Object keys that contain a pattern are masked too; keys that
// become equal are merged, the later member's value winning.
//
// Configuration:
//
//	keys          string_list  key names whose values are masked (default
//	                           password, passwd, secret, token, api_key,
//	                           apikey, authorization, cookie, session,
//	                           credit_card, card_number, cvv); empty names
//	                           are ignored
//	mask          string       what replaces those values (default "[Filtered]")
//	emails        bool         mask e-mail addresses (default true)
//	credit_cards  bool         mask credit-card numbers (default true)
//	ipv4          bool         mask IPv4 addresses (default true)
//	skip_keys     string_list  top-level keys never scrubbed (default
//	                           event_id, timestamp, release, level, platform)
//
// An event in which nothing was masked is passed on as it came, without
// being encoded again. An event whose JSON text has no backslash escapes
// and in which the scanners find nothing is passed on without even being
// parsed: every string and key of such an event appears verbatim in its
// text, so nothing in it could be masked. Scrub does not otherwise check
// that events are valid JSON; the host does.
package main

import (
	"bytes"
	"strings"

	"github.com/mesher-dev/mesher/abi/guest"
)

func init() { guest.Handle(process) }

func main() {}

// Defaults, as declared in manifest.json.
var (
	defaultKeys = []string{"password", "passwd", "secret", "token", "api_key", "apikey",
		"authorization", "cookie", "session", "credit_card", "card_number", "cvv"}
	defaultSkipKeys = []string{"event_id", "timestamp", "release", "level", "platform"}
)

const defaultMask = "[Filtered]"

// Replacements of the patterns.
const (
	emailMask = "[email]"
	cardMask  = "[card]"
	ipMask    = "[ip]"
)

func process(e *guest.Event) error {
	s := current()
	if s.clean(e.Raw()) {
		return nil
	}
	if s.scrubObject(e.Root(), true) {
		e.Changed()
	}
	return nil
}

// scrubber is the state derived from the configuration.
type scrubber struct {
	keys   *names
	mask   string
	emails bool
	cards  bool
	ipv4   bool
	skip   []string
}

// cache keeps the scrubber until the configuration changes.
var cache struct {
	raw []byte
	s   *scrubber
}

func current() *scrubber {
	raw := guest.ConfigRaw()
	if cache.s == nil || !bytes.Equal(raw, cache.raw) {
		cache.raw = bytes.Clone(raw)
		cache.s = newScrubber()
	}
	return cache.s
}

func newScrubber() *scrubber {
	return &scrubber{
		keys:   newNames(guest.ConfigStrings("keys", defaultKeys)),
		mask:   guest.ConfigString("mask", defaultMask),
		emails: guest.ConfigBool("emails", true),
		cards:  guest.ConfigBool("credit_cards", true),
		ipv4:   guest.ConfigBool("ipv4", true),
		skip:   guest.ConfigStrings("skip_keys", defaultSkipKeys),
	}
}

// clean reports whether the JSON text of an event certainly holds nothing
// to mask. Without backslashes, every string and key of the event appears
// in the text verbatim between quotes, and quotes end numbers and
// addresses just as the ends of a string do; so if the scanners find
// nothing in the whole text, they find nothing in any string or key.
func (s *scrubber) clean(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	text := string(raw)
	if s.keys.in(text) {
		return false
	}
	_, found := s.scrubText(text)
	return !found
}

// scrubObject scrubs the members of an object and reports whether it
// changed anything. At the top level, skip keys are left alone.
func (s *scrubber) scrubObject(obj *guest.Value, top bool) bool {
	changed := false
	var renames [][2]string
	for _, m := range obj.Members() {
		if top && s.skipped(m.Key) {
			continue
		}
		if s.sensitive(m.Key) {
			changed = s.maskValue(m.Value) || changed
		} else {
			changed = s.scrubValue(m.Value) || changed
		}
		if k, ok := s.scrubText(m.Key); ok {
			renames = append(renames, [2]string{m.Key, k})
		}
	}
	for _, r := range renames {
		obj.RenameKey(r[0], r[1])
		changed = true
	}
	return changed
}

func (s *scrubber) scrubValue(v *guest.Value) bool {
	switch v.Kind() {
	case guest.String:
		str, _ := v.Str()
		if out, ok := s.scrubText(str); ok {
			v.SetString(out)
			return true
		}
	case guest.Object:
		return s.scrubObject(v, false)
	case guest.Array:
		changed := false
		for _, e := range v.Elems() {
			if name, ok := e.Index(0).Str(); ok && e.Len() == 2 && s.sensitive(name) {
				// A [name, value] pair.
				changed = s.scrubValue(e.Index(0)) || changed
				changed = s.maskValue(e.Index(1)) || changed
				continue
			}
			changed = s.scrubValue(e) || changed
		}
		return changed
	}
	return false
}

// maskValue replaces v with the mask and reports whether that changed it.
func (s *scrubber) maskValue(v *guest.Value) bool {
	if str, ok := v.Str(); ok && str == s.mask {
		return false
	}
	v.SetString(s.mask)
	return true
}

func (s *scrubber) skipped(key string) bool {
	for _, k := range s.skip {
		if k == key {
			return true
		}
	}
	return false
}

// sensitive reports whether key contains one of the configured names,
// ignoring case.
func (s *scrubber) sensitive(key string) bool { return s.keys.in(key) }

// names finds any of a set of names in text, ignoring case.
type names struct {
	all []string // lower-cased
	// ASCII text is searched in one pass: first maps each byte to 1 + the
	// index in byFirst of the names starting with it in either case, to
	// nonASCII for bytes from 0x80, and to 0 for the others.
	first   [256]uint8
	byFirst [][]string
}

const nonASCII = 255

// newNames returns a set of names; empty names are left out.
func newNames(list []string) *names {
	n := &names{}
	for c := 0x80; c < 0x100; c++ {
		n.first[c] = nonASCII
	}
	for _, name := range list {
		if name == "" {
			continue
		}
		name = strings.ToLower(name)
		n.all = append(n.all, name)
		c := name[0]
		if c >= 0x80 {
			continue // only found in non-ASCII text
		}
		if n.first[c] == 0 {
			n.byFirst = append(n.byFirst, nil)
			n.first[c] = uint8(len(n.byFirst))
			if 'a' <= c && c <= 'z' {
				n.first[c-'a'+'A'] = n.first[c]
			}
		}
		g := n.first[c] - 1
		n.byFirst[g] = append(n.byFirst[g], name)
	}
	return n
}

// in reports whether text contains one of the names, ignoring case.
func (n *names) in(text string) bool {
	if len(n.all) == 0 {
		return false
	}
	for i := 0; i < len(text); i++ {
		g := n.first[text[i]]
		if g == 0 {
			continue
		}
		if g == nonASCII {
			// Lower-casing non-ASCII text can change its length, and even
			// turn a non-ASCII letter into an ASCII one (K, the Kelvin
			// sign, becomes k).
			return n.inUnicode(text)
		}
		for _, name := range n.byFirst[g-1] {
			if hasPrefixFold(text[i:], name) {
				return true
			}
		}
	}
	return false
}

func (n *names) inUnicode(text string) bool {
	text = strings.ToLower(text)
	for _, name := range n.all {
		if strings.Contains(text, name) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with prefix, a lower-case name,
// ignoring the case of ASCII letters in s.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// scrubText masks the enabled patterns in text and reports whether it
// found any.
func (s *scrubber) scrubText(text string) (string, bool) {
	changed := false
	if s.emails {
		var ok bool
		text, ok = maskEmails(text)
		changed = ok
	}
	if s.cards || s.ipv4 {
		var ok bool
		text, ok = maskNumbers(text, s.cards, s.ipv4)
		changed = changed || ok
	}
	return text, changed
}

// maskEmails replaces e-mail addresses in s.
func maskEmails(s string) (string, bool) {
	var out []byte
	done := 0 // s[:done] is in out, or masked
	for from := 0; ; {
		i := strings.IndexByte(s[from:], '@')
		if i < 0 {
			break
		}
		at := from + i
		start, end, ok := emailAt(s, done, at)
		if !ok {
			from = at + 1
			continue
		}
		out = append(out, s[done:start]...)
		out = append(out, emailMask...)
		done, from = end, end
	}
	if out == nil {
		return s, false
	}
	return string(append(out, s[done:]...)), true
}

// emailAt finds the address around the '@' at s[at], looking no further
// left than lo, and returns its bounds.
func emailAt(s string, lo, at int) (start, end int, ok bool) {
	start = at
	for start > lo && isLocal(s[start-1]) {
		start--
	}
	for start < at && s[start] == '.' {
		start++
	}
	if start == at {
		return 0, 0, false
	}
	end = at + 1
	for end < len(s) && isDomain(s[end]) {
		end++
	}
	for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	if !validDomain(s[at+1 : end]) {
		return 0, 0, false
	}
	return start, end, true
}

// validDomain reports whether d has two or more non-empty labels and a
// top-level domain of two or more letters.
func validDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 {
		return false
	}
	for i := dot + 1; i < len(d); i++ {
		if !isLetter(d[i]) {
			return false
		}
	}
	return !strings.Contains(d, "..") && d[0] != '.'
}

// maskNumbers replaces card numbers and IPv4 addresses in s.
func maskNumbers(s string, cards, ipv4 bool) (string, bool) {
	var out []byte
	done := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		if i > 0 && isWord(s[i-1]) {
			// Digits inside a word, such as "v2" or a hash.
			i = skipToken(s, i)
			continue
		}
		end, mask := 0, ""
		if ipv4 {
			if e, ok := ipv4At(s, i); ok {
				end, mask = e, ipMask
			}
		}
		if mask == "" && cards && (i == 0 || s[i-1] != '.') {
			if e, ok := cardAt(s, i); ok {
				end, mask = e, cardMask
			}
		}
		if mask == "" {
			i = skipToken(s, i)
			continue
		}
		out = append(out, s[done:i]...)
		out = append(out, mask...)
		done, i = end, end
	}
	if out == nil {
		return s, false
	}
	return string(append(out, s[done:]...)), true
}

// skipToken returns the end of the run of word characters and dots at s[i].
func skipToken(s string, i int) int {
	for i < len(s) && (isWord(s[i]) || s[i] == '.') {
		i++
	}
	return i
}

// ipv4At returns the end of the IPv4 address starting at s[i], if there
// is one that does not go on as a longer dotted run or a word.
func ipv4At(s string, i int) (int, bool) {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(s) || s[j] != '.' {
				return 0, false
			}
			j++
		}
		n, v := 0, 0
		for j < len(s) && isDigit(s[j]) && n < 4 {
			v = v*10 + int(s[j]-'0')
			n++
			j++
		}
		if n == 0 || n > 3 || v > 255 {
			return 0, false
		}
	}
	if !numberEnds(s, j) {
		return 0, false
	}
	return j, true
}

// cardAt returns the end of the longest card number starting at s[i]: 13
// to 19 digits in groups separated by single spaces or dashes, passing the
// Luhn check. It may end before the last group of a longer run.
func cardAt(s string, i int) (int, bool) {
	var digits [19]byte
	n, j, best := 0, i, 0
	for {
		for j < len(s) && isDigit(s[j]) {
			if n == len(digits) {
				return best, best > 0
			}
			digits[n] = s[j] - '0'
			n++
			j++
		}
		more := j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1])
		if n >= 13 && (more || numberEnds(s, j)) && luhn(digits[:n]) {
			best = j
		}
		if !more {
			return best, best > 0
		}
		j++
	}
}

// numberEnds reports whether a number can end before s[j]: at the end, or
// before a character that is neither part of a word nor a decimal point.
func numberEnds(s string, j int) bool {
	if j == len(s) {
		return true
	}
	if isWord(s[j]) {
		return false
	}
	return s[j] != '.' || j+1 == len(s) || !isDigit(s[j+1])
}

// luhn reports whether digits pass the Luhn checksum.
func luhn(digits []byte) bool {
	sum := 0
	for k := range digits {
		d := int(digits[len(digits)-1-k])
		if k%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isWord(c byte) bool   { return isDigit(c) || isLetter(c) || c == '_' }

// isLocal reports whether c may appear in the local part of an address.
// Bytes of multi-byte UTF-8 characters may, so that "müller@" is masked
// whole.
func isLocal(c byte) bool {
	return isWord(c) || c == '.' || c == '%' || c == '+' || c == '-' || c >= 0x80
}

// isDomain reports whether c may appear in a domain name.
func isDomain(c byte) bool {
	return isDigit(c) || isLetter(c) || c == '.' || c == '-' || c >= 0x80
}
