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
	// Remote, if set, receives every message too, to pass on to other
	// nodes' subscribers, and says which projects other nodes watch.
	Remote Relay
}

// Relay carries stream messages to subscribers on other nodes.
type Relay interface {
	// Watched reports whether a subscriber on another node watches the
	// project. It must be fast.
	Watched(projectID string) bool
	// Relay hands a message over for other nodes; it must not block.
	Relay(m stream.Message)
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
	watched := map[string]bool{}
	for i, e := range events {
		r := results[i]
		if r.Duplicate {
			continue
		}
		w, ok := watched[e.ProjectID]
		if !ok {
			w = s.ProjectSubscribers(e.ProjectID) > 0 || (s.Remote != nil && s.Remote.Watched(e.ProjectID))
			watched[e.ProjectID] = w
		}
		if !w {
			continue // nobody watches: skip encoding
		}
		if m, err := stream.EventMessage(e); err == nil {
			s.publish(m)
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
			s.publish(m)
		}
	}
}

func (s *Streams) publish(m stream.Message) {
	s.Publish(m)
	if s.Remote != nil {
		s.Remote.Relay(m)
	}
}
