package host

import (
	"log/slog"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// Streams publishes committed events on a stream hub: each stored event as
// an "event" message, and issues created or regressed by it as "issue"
// messages. It implements Publisher.
type Streams struct {
	*stream.Hub
	log *slog.Logger
}

// NewStreams returns a Publisher over hub.
func NewStreams(hub *stream.Hub, log *slog.Logger) *Streams {
	if log == nil {
		log = slog.Default()
	}
	return &Streams{Hub: hub, log: log}
}

var _ Publisher = (*Streams)(nil)

// Committed publishes a committed batch. Duplicates were stored before and
// are not published again.
func (s *Streams) Committed(events []*store.Event, results []store.Committed) {
	type issueKey struct {
		project string
		id      int64
	}
	counts := map[issueKey]int64{}
	for i, e := range events {
		if !results[i].Duplicate {
			counts[issueKey{e.ProjectID, results[i].IssueID}]++
		}
	}
	announced := map[issueKey]bool{}
	for i, e := range events {
		r := results[i]
		if r.Duplicate {
			continue
		}
		if m, err := stream.EventMessage(e); err == nil {
			s.Publish(m)
		} else {
			s.log.Error("cannot publish event", "event", e.ID, "err", err)
		}
		k := issueKey{e.ProjectID, r.IssueID}
		if (!r.NewIssue && !r.Regressed) || announced[k] {
			continue
		}
		announced[k] = true
		action := stream.ActionRegressed
		if r.NewIssue {
			action = stream.ActionNew
		}
		is := &store.Issue{
			ID: r.IssueID, ProjectID: e.ProjectID, Fingerprint: e.Fingerprint, Title: e.Title, Level: e.Level,
			Status: store.StatusUnresolved, LastSeen: e.Timestamp,
		}
		if r.NewIssue {
			is.Count, is.FirstSeen = counts[k], e.Timestamp
		}
		if m, err := stream.IssueMessage(action, is); err == nil {
			s.Publish(m)
		}
	}
}
