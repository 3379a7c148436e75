package cluster

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a member's state as seen by this node.
type State uint8

const (
	// StateAlive: the member answers probes.
	StateAlive State = iota
	// StateSuspect: memberlist still counts the member alive, but it has
	// not answered this node's direct probes for several probe rounds;
	// it is probably about to be declared dead. (memberlist does not
	// expose its own suspicion, so this is this node's view.)
	StateSuspect
	// StateDead: failure detection declared the member dead without it
	// leaving: it crashed, was killed, or is on the other side of a
	// partition.
	StateDead
	// StateLeft: the member left gracefully (Leave).
	StateLeft
)

var stateNames = [...]string{"alive", "suspect", "dead", "left"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// MarshalText makes a State a JSON string.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the form MarshalText produces.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown member state %q", b)
}

// Up reports whether a member in this state may be sent work.
func (s State) Up() bool { return s == StateAlive || s == StateSuspect }

// Load is a node's load summary, gossiped in its metadata.
type Load struct {
	// EventsPerSec is the rate of events processed recently.
	EventsPerSec float64 `json:"events_per_sec"`
	// QueueDepth is the number of events waiting to be processed.
	QueueDepth int `json:"queue_depth"`
	// Busy is the fraction of time processor instances were busy, 0..1.
	Busy float64 `json:"busy"`
	// Instances is the number of processor instances on the node.
	Instances int `json:"instances"`
}

// Member is one node of the cluster as seen by this node.
type Member struct {
	Name string `json:"name"`
	// GossipAddr is the memberlist address, ip:port.
	GossipAddr string `json:"gossip_addr"`
	// HTTPAddr is the address to call the node at (Config.HTTPAddr).
	HTTPAddr string `json:"http_addr"`
	State    State  `json:"state"`
	// Epoch identifies the node's boot: a restart with the same name has
	// a new, larger epoch (microseconds since 1970 at start).
	Epoch uint64 `json:"epoch"`
	Load  Load   `json:"load"`
	// Since is when this node saw the member's State (or Epoch) change.
	Since time.Time `json:"since"`
}

// URL returns the URL of path (which starts with '/') on the member's HTTP
// listener.
func (m Member) URL(path string) string { return "http://" + m.HTTPAddr + path }

// EventKind is what happened to a member.
type EventKind uint8

const (
	// MemberJoined: a node became alive: it joined, came back after a
	// partition, or restarted (Member.Epoch tells a restart apart).
	MemberJoined EventKind = iota + 1
	// MemberUpdated: a member's load or HTTP address changed.
	MemberUpdated
	// MemberFailed: a member was declared dead without leaving, or an
	// incarnation of it was replaced by a restart (the event carries the
	// old epoch, and a MemberJoined with the new epoch follows). Its
	// registry entries are gone; its work must be placed elsewhere.
	MemberFailed
	// MemberLeft: a member left gracefully.
	MemberLeft
)

var eventNames = [...]string{"", "joined", "updated", "failed", "left"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// MarshalText makes an EventKind a JSON string.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is a membership change of another node.
type Event struct {
	Kind   EventKind `json:"kind"`
	Member Member    `json:"member"`
}

// memberState is this node's record of one member.
type memberState struct {
	Member
	// node is the member's memberlist identity, for direct sends.
	node memberlist.Node
	// lastAck is when this node last got an ack to a direct probe of
	// the member (or when it became alive); it drives StateSuspect.
	lastAck time.Time
}
