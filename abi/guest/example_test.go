package guest_test

import (
	"fmt"

	"github.com/mesher-dev/mesher/abi/guest"
)

// A processor is one function. This one drops debug events, tags the rest
// with the exception type and groups them by it.
func process(e *guest.Event) error {
	if e.Level() == "debug" {
		e.Drop()
		return nil
	}
	typ := e.GetString("exception.values.0.type")
	if typ == "" {
		return nil
	}
	e.SetTag("exception_type", typ)
	e.SetFingerprint("type:" + typ)
	return nil
}

// Run executes a processor natively, the way the host runs it in Wasm, so
// that it can be tested with go test.
func ExampleRunEvents() {
	out, err := guest.RunEvents(process, nil,
		`{"event_id":"1","level":"debug","message":"noise"}`,
		`{"event_id":"2","exception":{"values":[{"type":"KeyError","value":"'id'"}]}}`,
	)
	if err != nil {
		panic(err)
	}
	for _, r := range out {
		fmt.Printf("event %d: fingerprint %q, body %s\n", r.Index, r.Fingerprint, r.Event)
	}
	// Output:
	// event 1: fingerprint "type:KeyError", body {"event_id":"2","exception":{"values":[{"type":"KeyError","value":"'id'"}]},"tags":{"exception_type":"KeyError"}}
}

// Handlers read their configuration, with the manifest's defaults filled in
// by the host, through Config* helpers.
func ExampleConfigString() {
	h := func(e *guest.Event) error {
		e.SetTag("team", guest.ConfigString("team", "unknown"))
		return nil
	}
	out, _ := guest.RunEvents(h, []byte(`{"team":"payments"}`), `{"message":"m"}`)
	fmt.Printf("%s\n", out[0].Event)
	// Output:
	// {"message":"m","tags":{"team":"payments"}}
}
