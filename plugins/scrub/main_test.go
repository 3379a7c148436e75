package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"testing"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/abi/guest"
	"github.com/mesher-dev/mesher/plugins/internal/plugintest"
)

var update = flag.Bool("update", false, "rewrite testdata/cases.json from the handler's output")

// run scrubs one event and returns the event passed on and whether the
// processor sent a changed one.
func run(t *testing.T, config, event string) (string, bool) {
	t.Helper()
	var cfg []byte
	if config != "" {
		cfg = []byte(config)
	}
	recs, err := guest.RunEvents(process, cfg, event)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Has.Contains(abi.FieldError) {
		t.Fatalf("event failed: %s", r.Error)
	}
	if !r.Has.Contains(abi.FieldEvent) {
		return event, false
	}
	return string(r.Event), true
}

// scrubMessage runs a message through the handler with config.
func scrubMessage(t *testing.T, config, msg string) string {
	t.Helper()
	in, err := json.Marshal(map[string]string{"message": msg})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, config, string(in))
	var got struct{ Message string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	return got.Message
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// E-mail addresses.
		{"email in text", "mail bob@example.com now", "mail [email] now"},
		{"email alone", "bob@example.com", "[email]"},
		{"email with plus and subdomains", "Bob.Smith+tag@mail.example.co.uk", "[email]"},
		{"email in brackets", "From: <alice@example.org>, to: x", "From: <[email]>, to: x"},
		{"two emails", "a@x.io, b_c@y-z.io", "[email], [email]"},
		{"email before a full stop", "write to bob@example.com.", "write to [email]."},
		{"email with non-ASCII local part", "müller@example.de", "[email]"},
		{"mailto", "mailto:bob@example.com?subject=hi", "mailto:[email]?subject=hi"},
		{"no top-level domain", "user@localhost", "user@localhost"},
		{"numeric top-level domain", "lodash@4.17.21", "lodash@4.17.21"},
		{"one-letter top-level domain", "a@b.c", "a@b.c"},
		{"empty label", "a@b..com", "a@b..com"},
		{"no local part", "@example.com says", "@example.com says"},
		{"JS stack frame", "render@https://cdn.example.com/app.js:10:5", "render@https://cdn.example.com/app.js:10:5"},
		{"chained at signs", "a@b.com@c.com", "[email]@c.com"},

		// Credit-card numbers.
		{"card in text", "paid with 4111111111111111 today", "paid with [card] today"},
		{"card with spaces", "card 4111 1111 1111 1111 expired", "card [card] expired"},
		{"card with dashes", "5555-5555-5555-4444", "[card]"},
		{"card with mixed separators", "5555-5555 5555-4444", "[card]"},
		{"amex", "amex 3782 822463 10005", "amex [card]"},
		{"13 digits", "4222222222222", "[card]"},
		{"19 digits", "6011000990139421237", "[card]"},
		{"card before a full stop", "number 6011111111111117.", "number [card]."},
		{"card then another number", "4111 1111 1111 1111 2 items", "[card] 2 items"},
		{"number then card", "2 4111 1111 1111 1111", "2 [card]"},
		{"not Luhn", "order 4111111111111112 shipped", "order 4111111111111112 shipped"},
		{"not Luhn with spaces", "4111 1111 1111 1112", "4111 1111 1111 1112"},
		{"12 digits", "411111111116", "411111111116"},
		{"20 digits passing Luhn", "12345678901234567894", "12345678901234567894"},
		{"double space breaks the run", "4111  1111 1111 1111", "4111  1111 1111 1111"},
		{"inside a word", "id abc4111111111111111", "id abc4111111111111111"},
		{"followed by letters", "4111111111111111abc", "4111111111111111abc"},
		{"decimal fraction", "ratio 0.4111111111111111", "ratio 0.4111111111111111"},
		{"decimal number", "4111111111111111.5", "4111111111111111.5"},

		// IPv4 addresses.
		{"ip with port", "from 192.168.1.20:8080", "from [ip]:8080"},
		{"ip before a full stop", "connect to 10.0.0.1.", "connect to [ip]."},
		{"two ips", "1.2.3.4 and 255.255.255.255", "[ip] and [ip]"},
		{"ipv4-mapped ipv6", "::ffff:10.1.2.3", "::ffff:[ip]"},
		{"ip in a URL", "http://127.0.0.1/health", "http://[ip]/health"},
		{"version with five parts", "version 1.2.3.4.5", "version 1.2.3.4.5"},
		{"version with three parts", "version 1.2.3", "version 1.2.3"},
		{"octet above 255", "256.1.1.1", "256.1.1.1"},
		{"octet of four digits", "1234.1.1.1", "1234.1.1.1"},
		{"after a letter", "v1.2.3.4", "v1.2.3.4"},
		{"before a letter", "1.2.3.4a", "1.2.3.4a"},

		// Together.
		{"everything", "user bob@example.com from 10.1.2.3 paid with 5555 5555 5555 4444",
			"user [email] from [ip] paid with [card]"},
		{"ip after an at sign", "root@10.0.0.1", "root@[ip]"},
		{"nothing", "TypeError: cannot read property 'x' of undefined at line 42", "TypeError: cannot read property 'x' of undefined at line 42"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubMessage(t, "", tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		digits string
		want   bool
	}{
		{"4111111111111111", true},
		{"5555555555554444", true},
		{"378282246310005", true},
		{"30569309025904", true},
		{"4111111111111112", false},
		{"1705314600123", false},
		{"0000000000000", true},
	}
	for _, tt := range tests {
		t.Run(tt.digits, func(t *testing.T) {
			d := make([]byte, len(tt.digits))
			for i := range tt.digits {
				d[i] = tt.digits[i] - '0'
			}
			if got := luhn(d); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// event is a realistic error event with sensitive data in many places.
const event = `{"event_id":"7f2c1a9be4d04c3c9a6ef0d1c2b3a4d5","timestamp":"2024-03-01T10:15:00Z","level":"error","platform":"python","release":"shop@1.2.3.4",` +
	`"message":"payment failed for bob@example.com","exception":{"values":[{"type":"CardError","value":"card 4111 1111 1111 1111 declined",` +
	`"stacktrace":{"frames":[{"filename":"pay.py","lineno":42,"vars":{"api_key":"sk_live_123","amount":12.5}}]}}]},` +
	`"user":{"id":"u-17","email":"bob@example.com","ip_address":"203.0.113.9"},` +
	`"request":{"url":"https://shop.example.com/pay","headers":{"Authorization":"Bearer abc.def","Content-Type":"application/json"},` +
	`"cookies":[["SessionID","s3cr3t"],["theme","dark"]],"data":{"Password":{"old":"a","new":"b"},"remember":true}},` +
	`"tags":{"customer":"acme","session_id":"sess-9"},"extra":{"retries":3,"cvv":123,"contacts":["carol@example.net","10.9.8.7"]}}`

func TestEvent(t *testing.T) {
	got, changed := run(t, "", event)
	want := `{"event_id":"7f2c1a9be4d04c3c9a6ef0d1c2b3a4d5","timestamp":"2024-03-01T10:15:00Z","level":"error","platform":"python","release":"shop@1.2.3.4",` +
		`"message":"payment failed for [email]","exception":{"values":[{"type":"CardError","value":"card [card] declined",` +
		`"stacktrace":{"frames":[{"filename":"pay.py","lineno":42,"vars":{"api_key":"[Filtered]","amount":12.5}}]}}]},` +
		`"user":{"id":"u-17","email":"[email]","ip_address":"[ip]"},` +
		`"request":{"url":"https://shop.example.com/pay","headers":{"Authorization":"[Filtered]","Content-Type":"application/json"},` +
		`"cookies":"[Filtered]","data":{"Password":"[Filtered]","remember":true}},` +
		`"tags":{"customer":"acme","session_id":"[Filtered]"},"extra":{"retries":3,"cvv":"[Filtered]","contacts":["[email]","[ip]"]}}`
	if !changed {
		t.Fatal("got the event passed on unchanged, want it scrubbed")
	}
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestConfig(t *testing.T) {
	const in = `{"release":"10.0.0.1","message":"bob@example.com 10.0.0.1 4111111111111111","extra":{"release":"10.0.0.2","X-Api-Token":"t","pin":1234}}`
	tests := []struct {
		name, config, want string
	}{
		{"defaults", ``,
			`{"release":"10.0.0.1","message":"[email] [ip] [card]","extra":{"release":"[ip]","X-Api-Token":"[Filtered]","pin":1234}}`},
		{"emails off", `{"emails":false}`,
			`{"release":"10.0.0.1","message":"bob@example.com [ip] [card]","extra":{"release":"[ip]","X-Api-Token":"[Filtered]","pin":1234}}`},
		{"cards off", `{"credit_cards":false}`,
			`{"release":"10.0.0.1","message":"[email] [ip] 4111111111111111","extra":{"release":"[ip]","X-Api-Token":"[Filtered]","pin":1234}}`},
		{"ipv4 off", `{"ipv4":false}`,
			`{"release":"10.0.0.1","message":"[email] 10.0.0.1 [card]","extra":{"release":"10.0.0.2","X-Api-Token":"[Filtered]","pin":1234}}`},
		{"own keys, any case", `{"keys":["PIN",""]}`,
			`{"release":"10.0.0.1","message":"[email] [ip] [card]","extra":{"release":"[ip]","X-Api-Token":"t","pin":"[Filtered]"}}`},
		{"own mask", `{"mask":"***"}`,
			`{"release":"10.0.0.1","message":"[email] [ip] [card]","extra":{"release":"[ip]","X-Api-Token":"***","pin":1234}}`},
		{"skip keys are top-level only", `{"skip_keys":["message","release"]}`,
			`{"release":"10.0.0.1","message":"bob@example.com 10.0.0.1 4111111111111111","extra":{"release":"[ip]","X-Api-Token":"[Filtered]","pin":1234}}`},
		{"no skip keys", `{"skip_keys":[]}`,
			`{"release":"[ip]","message":"[email] [ip] [card]","extra":{"release":"[ip]","X-Api-Token":"[Filtered]","pin":1234}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := run(t, tt.config, in); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"masked keys keep their place",
			`{"extra":{"a":1,"bob@example.com":{"visits":3},"10.0.0.1":"up","z":2}}`,
			`{"extra":{"a":1,"[email]":{"visits":3},"[ip]":"up","z":2}}`},
		{"keys that become equal merge",
			`{"extra":{"bob@example.com":1,"carol@example.com":2}}`,
			`{"extra":{"[email]":2}}`},
		{"sensitive key values of any type",
			`{"extra":{"token":null,"secret":false,"passwords":["a","b"],"session":{"id":1}}}`,
			`{"extra":{"token":"[Filtered]","secret":"[Filtered]","passwords":"[Filtered]","session":"[Filtered]"}}`},
		{"pairs with sensitive names",
			`{"request":{"headers":[["Authorization","Bearer x"],["Accept","*/*"],["X-Real-IP","10.0.0.1"]]}}`,
			`{"request":{"headers":[["Authorization","[Filtered]"],["Accept","*/*"],["X-Real-IP","[ip]"]]}}`},
		{"arrays of arrays",
			`{"extra":{"rows":[[["bob@example.com"]],[{"token":"x"}]]}}`,
			`{"extra":{"rows":[[["[email]"]],[{"token":"[Filtered]"}]]}}`},
		{"top-level sensitive key", `{"session":"abc","message":"hi"}`, `{"session":"[Filtered]","message":"hi"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := run(t, "", tt.in); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestUnchangedEventsPassOn(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"nothing sensitive", `{"message":"TypeError: x is undefined","tags":{"browser":"Firefox 121.0"},"extra":{"count":4111111111111111}}`},
		{"already masked", `{"extra":{"password":"[Filtered]"},"message":"for [email]"}`},
		{"only skip keys", `{"event_id":"4111111111111111","release":"1.2.3.4","timestamp":"10.0.0.1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, changed := run(t, "", tt.in); changed {
				t.Errorf("got a changed event %s, want it passed on unchanged", got)
			}
		})
	}
}

func TestConfigCache(t *testing.T) {
	const in = `{"message":"bob@example.com"}`
	a, b := `{"mask":"A"}`, `{"mask":"B","emails":false}`
	run(t, a, in)
	first := cache.s
	if got, _ := run(t, a, in); got != `{"message":"[email]"}` {
		t.Errorf("config a: got %s, want the e-mail masked", got)
	}
	if cache.s != first {
		t.Error("same config: got the scrubber rebuilt, want it kept")
	}
	if got, _ := run(t, b, in); got != in {
		t.Errorf("config b: got %s, want %s", got, in)
	}
	if cache.s == first {
		t.Error("changed config: got the scrubber kept, want it rebuilt")
	}
	if cache.s.mask != "B" {
		t.Errorf("changed config: got mask %q, want %q", cache.s.mask, "B")
	}
}

func TestManifestDefaults(t *testing.T) {
	plugintest.ManifestDefaults(t, "manifest.json", map[string]any{
		"keys":         defaultKeys,
		"mask":         defaultMask,
		"emails":       true,
		"credit_cards": true,
		"ipv4":         true,
		"skip_keys":    defaultSkipKeys,
	})
}

func TestCases(t *testing.T) {
	plugintest.Native(t, "testdata/cases.json", process, *update)
}

func TestClean(t *testing.T) {
	tests := []struct {
		name, raw string
		want      bool
	}{
		{"nothing", `{"message":"TypeError: x","extra":{"n":12,"ratio":0.4111111111111111,"v":"1.2.3.4.5"}}`, true},
		{"email", `{"message":"bob@example.com"}`, false},
		{"ip", `{"x":"10.0.0.1"}`, false},
		{"card", `{"x":"4111 1111 1111 1111"}`, false},
		{"sensitive key", `{"extra":{"X-Auth-Token":1}}`, false},
		{"sensitive key with a Kelvin sign", `{"extra":{"api_` + "\u212a" + `ey":1}}`, false},
		{"backslash", `{"message":"line\nnext"}`, false},
		{"skip keys are not skipped", `{"event_id":"4111111111111111"}`, false},
		{"card as a JSON number", `{"n":4111111111111111}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bool
			guest.RunEvents(func(e *guest.Event) error {
				got = current().clean(e.Raw())
				return nil
			}, nil, tt.raw)
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzClean checks that clean is a safe shortcut: whenever it passes an
// event on unparsed, scrubbing the parsed event would change nothing.
func FuzzClean(f *testing.F) {
	for _, s := range [][2]string{
		{"message", "mail bob@example.com now"},
		{"To\u212aen", "x"},
		{"ip", "from 10.0.0.1:80"},
		{"card", "x 4111-1111-1111-1111 y"},
		{"v", "0.4111111111111111"},
		{"user@example.com", "1.2.3.4.5"},
		{"İd", "müller@example.de"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		ev := map[string]any{"message": value, "extra": map[string]any{key: value, "list": []any{value, key}}}
		if err := enc.Encode(ev); err != nil {
			t.Skip()
		}
		_, err := guest.RunEvents(func(e *guest.Event) error {
			s := current()
			if !s.clean(e.Raw()) {
				return nil
			}
			if s.scrubObject(e.Root(), true) {
				t.Errorf("clean passed on %s, but scrubbing changes it to %s", e.Raw(), e.Root().JSON())
			}
			return nil
		}, nil, buf.String())
		if err != nil {
			t.Fatal(err)
		}
	})
}
