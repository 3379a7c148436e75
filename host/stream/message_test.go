package stream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

func TestEventMessage(t *testing.T) {
	e := &store.Event{
		ID: "e1", ProjectID: "p1", IssueID: 42, Level: "error", Environment: "production",
		Tags: map[string]string{"region": "eu"}, Title: "boom",
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Body: json.RawMessage(`{"message":"boom"}`),
	}
	m, err := EventMessage(e)
	if err != nil {
		t.Fatal(err)
	}
	if m.ProjectID != "p1" || m.Type != TypeEvent || m.Level != "error" || m.Environment != "production" || m.Tags["region"] != "eu" {
		t.Errorf("filter fields = %+v", m)
	}
	if !strings.HasPrefix(string(m.Payload), `{"type":"event","id":"e1",`) {
		t.Errorf("payload %s does not start with the type and id", m.Payload)
	}
	var got struct {
		Type    string          `json:"type"`
		IssueID int64           `json:"issue_id"`
		Event   json.RawMessage `json:"event"`
		Tags    map[string]string
	}
	if err := json.Unmarshal(m.Payload, &got); err != nil {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	if got.Type != TypeEvent || got.IssueID != 42 || string(got.Event) != `{"message":"boom"}` || got.Tags["region"] != "eu" {
		t.Errorf("payload decodes to %+v", got)
	}
}

func TestIssueMessage(t *testing.T) {
	m, err := IssueMessage(ActionRegressed, &store.Issue{ID: 7, ProjectID: "p1", Level: "fatal", Status: store.StatusUnresolved, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if m.ProjectID != "p1" || m.Type != TypeIssue || m.Level != "fatal" {
		t.Errorf("filter fields = %+v", m)
	}
	if want := `{"type":"issue","action":"regressed","id":7,"project_id":"p1",`; !strings.HasPrefix(string(m.Payload), want) {
		t.Errorf("payload %s, want it to start with %s", m.Payload, want)
	}
}

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		v       any
		want    string
		wantErr string
	}{
		{"empty object", "alert", struct{}{}, `{"type":"alert"}`, ""},
		{"fields", "alert", map[string]any{"rule": "spike", "count": 3}, `{"type":"alert","count":3,"rule":"spike"}`, ""},
		{"nested type is fine", "alert", map[string]any{"rule": map[string]string{"type": "x"}}, `{"type":"alert","rule":{"type":"x"}}`, ""},
		{"type field", "alert", map[string]string{"type": "other"}, "", `must not have a "type" field`},
		{"not an object", "alert", []int{1}, "", "must be a JSON object"},
		{"null", "alert", nil, "", "must be a JSON object"},
		{"not encodable", "alert", map[string]any{"c": make(chan int)}, "", "encode alert message"},
		{"empty type", "", struct{}{}, "", "message type"},
		{"type needing escapes", `a"b`, struct{}{}, "", "message type"},
		{"upper case type", "Alert", struct{}{}, "", "message type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMessage("p", tt.typ, tt.v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Payload) != tt.want || m.Type != tt.typ || m.ProjectID != "p" {
				t.Errorf("got %+v payload %s, want payload %s", m, m.Payload, tt.want)
			}
		})
	}
}

func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"filters":{}}`,
		`{"filters":{"level":["error","fatal"],"environment":["production"],"tags":{"region":"eu"}}}`,
		`{"filters":{"level":"error"}}`,
		`{"filters":{"tags":{"":"x"}}}`,
		`{"filter":{}}`,
		`not json`,
		`{"filters":{}} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseClientMessage(data)
		if err != nil {
			if got != nil {
				t.Fatalf("filters %+v with error %v", got, err)
			}
			if !strings.HasPrefix(err.Error(), "invalid message: ") {
				t.Fatalf("error %q does not say the message is invalid", err)
			}
			return
		}
		// What the hub acknowledges parses back to the same filters.
		ack := filtersUpdatedPayload(got)
		var echo struct {
			Filters json.RawMessage `json:"filters"`
		}
		if err := json.Unmarshal(ack, &echo); err != nil {
			t.Fatalf("acknowledgement %s: %v", ack, err)
		}
		again, err := parseClientMessage([]byte(`{"filters":` + string(echo.Filters) + `}`))
		if err != nil {
			t.Fatalf("acknowledged filters %s do not parse: %v", echo.Filters, err)
		}
		if a, b := filtersUpdatedPayload(again), ack; string(a) != string(b) {
			t.Fatalf("round trip changed filters: %s, then %s", b, a)
		}
	})
}
