package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/mesher-dev/mesher/host/store"
)

// Message types. Filters apply to TypeEvent and TypeIssue; every other type
// reaches every subscriber of its project.
const (
	TypeEvent          = "event"           // a processed, stored event
	TypeIssue          = "issue"           // an issue was created, regressed, resolved, …
	TypeAlert          = "alert"           // an alert rule fired
	TypeLagged         = "lagged"          // sent by the hub: messages were dropped
	TypeFiltersUpdated = "filters_updated" // sent by the hub: a filters message was applied
	TypeError          = "error"           // sent by the hub: a client message was refused
)

// Issue actions for [IssueMessage].
const (
	ActionNew       = "new"
	ActionRegressed = "regressed"
	ActionResolved  = "resolved"
	ActionArchived  = "archived"
	// Triage through the API, and the spike job.
	ActionUnresolved = "unresolved" // made unresolved by hand
	ActionDiscarded  = "discarded"  // its new events are dropped at ingestion
	ActionDeleted    = "deleted"    // deleted with its events; the payload is the issue as it was
	ActionAssigned   = "assigned"
	ActionUnassigned = "unassigned"
	ActionReopened   = "reopened" // archived, and reopened by a spike in its volume
)

// Message is what [Hub.Publish] fans out: the fields the hub routes and
// filters on, and the payload sent as is. Build one with [EventMessage],
// [IssueMessage] or [NewMessage], which encode the payload once and make
// sure it carries its type. A published Message, its Tags and its Payload
// must not be modified afterwards: subscribers share them.
type Message struct {
	ProjectID string // the project whose subscribers receive it
	Type      string // TypeEvent, TypeIssue, …; equal to the payload's "type"

	// Filter fields. Level applies to events and issues; Environment and
	// Tags apply to events only (an issue spans environments).
	Level       string
	Environment string
	Tags        map[string]string

	// Payload is the JSON object sent to subscribers, with "type" first.
	Payload []byte
}

// EventMessage returns the "event" message for a stored event: the event's
// JSON fields (id, issue_id, level, event, …) under "type":"event". The
// message shares e.Tags.
func EventMessage(e *store.Event) (Message, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return Message{
		ProjectID:   e.ProjectID,
		Type:        TypeEvent,
		Level:       e.Level,
		Environment: e.Environment,
		Tags:        e.Tags,
		Payload:     withType(TypeEvent, b),
	}, nil
}

// IssueMessage returns the "issue" message for a change to an issue:
// {"type":"issue","action":action, …the issue's JSON fields}.
func IssueMessage(action string, is *store.Issue) (Message, error) {
	b, err := json.Marshal(struct {
		Action string `json:"action"`
		*store.Issue
	}{action, is})
	if err != nil {
		return Message{}, fmt.Errorf("encode issue %d: %w", is.ID, err)
	}
	return Message{
		ProjectID: is.ProjectID,
		Type:      TypeIssue,
		Level:     is.Level,
		Payload:   withType(TypeIssue, b),
	}, nil
}

// NewMessage encodes v, which must encode to a JSON object without a
// "type" field, as the payload of a message of type typ (lower case
// letters, digits and '_'). The caller sets the filter fields, if any.
func NewMessage(projectID, typ string, v any) (Message, error) {
	if !validType(typ) {
		return Message{}, fmt.Errorf("message type %q: want lower case letters, digits and '_'", typ)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s message: %w", typ, err)
	}
	if err := checkObject(b); err != nil {
		return Message{}, fmt.Errorf("encode %s message: %w", typ, err)
	}
	return Message{ProjectID: projectID, Type: typ, Payload: withType(typ, b)}, nil
}

// withType returns the JSON object obj with "type":typ as its first field.
// typ needs no escaping and obj is compact, as json.Marshal writes it.
func withType(typ string, obj []byte) []byte {
	b := make([]byte, 0, len(`{"type":"",`)+len(typ)+len(obj))
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if len(obj) > 2 { // not {}
		b = append(b, ',')
	}
	return append(b, obj[1:]...)
}

// checkObject reports whether b is a JSON object without a top-level
// "type" field.
func checkObject(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("payload must be a JSON object")
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		if k == "type" {
			return errors.New(`payload must not have a "type" field`)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func validType(typ string) bool {
	if typ == "" {
		return false
	}
	for _, c := range []byte(typ) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// laggedPayload is the notice sent before the next message after drops.
func laggedPayload(dropped int) []byte {
	b := make([]byte, 0, 40)
	b = append(b, `{"type":"lagged","dropped":`...)
	b = strconv.AppendInt(b, int64(dropped), 10)
	return append(b, '}')
}

// errorPayload is the answer to a refused client message.
func errorPayload(err error) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{TypeError, err.Error()})
	return b
}

// filtersUpdatedPayload acknowledges a filters message with the filters
// now in force.
func filtersUpdatedPayload(f *Filters) []byte {
	b, _ := json.Marshal(struct {
		Type    string   `json:"type"`
		Filters *Filters `json:"filters"`
	}{TypeFiltersUpdated, f.orEmpty()})
	return b
}
