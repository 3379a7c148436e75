package guest

import (
	"testing"

	"github.com/mesher-dev/mesher/abi"
)

// benchEvent is a realistic error event of about 1.2 KB: an exception with
// stack frames, tags, user, request and extra data, with a few escapes.
const benchEvent = `{"event_id":"9f2c1a7be4d34f0f8c6a2b1d3e5f7a90","timestamp":"2024-03-01T10:17:42Z",` +
	`"level":"error","platform":"python","release":"shop@2.4.17","environment":"production",` +
	`"message":"KeyError: 'user_id' while loading the cart","exception":{"values":[{"type":"KeyError",` +
	`"value":"'user_id'","stacktrace":{"frames":[` +
	`{"filename":"app/views.py","function":"handle_request","lineno":112,"in_app":true,` +
	`"context_line":"    cart = load_cart(request.session[\"user_id\"])"},` +
	`{"filename":"app/models.py","function":"load_cart","lineno":48,"in_app":true},` +
	`{"filename":"lib/http/client.py","function":"fetch","lineno":301,"in_app":false},` +
	`{"filename":"app/tasks.py","function":"dispatch","lineno":7,"in_app":true,"vars":{"retries":3,"delay":0.25}}]}}]},` +
	`"tags":{"region":"eu-west-1","service":"checkout","browser":"Firefox 123.0"},` +
	`"user":{"id":"u-482913","segment":"paid","ip_address":"203.0.113.42"},` +
	`"request":{"url":"https://shop.example.com/api/orders/4f9a2c1e","method":"POST",` +
	`"headers":[["Accept","application/json"],["User-Agent","Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0"]]},` +
	`"contexts":{"runtime":{"name":"CPython","version":"3.12.2"}},` +
	`"extra":{"attempt":2,"queue":"default","duration":0.4182,"note":"retrying after \"timeout\"\n(backoff 2s)","flags":null}}`

func BenchmarkParse(b *testing.B) {
	data := []byte(benchEvent)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	v, err := Parse([]byte(benchEvent))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("JSON", func(b *testing.B) {
		b.SetBytes(int64(len(benchEvent)))
		b.ReportAllocs()
		for b.Loop() {
			_ = v.JSON()
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.SetBytes(int64(len(benchEvent)))
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = v.AppendJSON(buf[:0])
		}
	})
}

// BenchmarkBatch measures processBatch per event on batches of 100 events:
// passing events on untouched, parsing them, and changing them.
func BenchmarkBatch(b *testing.B) {
	const n = 100
	var in []byte
	for i := range n {
		in = abi.AppendRecord(in, &abi.Record{Index: uint32(i), Event: []byte(benchEvent)})
	}
	handlers := []struct {
		name string
		h    Handler
	}{
		{"noop", func(*Event) error { return nil }},
		{"read", func(e *Event) error { _ = e.GetString("exception.values.0.type"); return nil }},
		{"tag", func(e *Event) error { e.SetTag("seen", "yes"); return nil }},
		{"raw", func(e *Event) error { e.SetTag("seen", "yes"); _ = e.Raw(); return nil }},
	}
	for _, tt := range handlers {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				var err error
				if out, err = processBatch(in, tt.h, out[:0], nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
