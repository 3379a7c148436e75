package cluster

import (
	"context"
	"errors"
)

// Host is what the cluster layer needs from the node it runs in. The
// binary (cmd/mesher) implements it over the host packages; the cluster
// package never imports them. Every method must be safe for concurrent
// use.
type Host interface {
	// Spawn starts an instance of a processor version on behalf of another
	// node and returns its id. If the host has not compiled that version,
	// it calls fetch for the module's bytes and must check their SHA-256
	// against sha before compiling them.
	Spawn(ctx context.Context, name, sha string, fetch func(context.Context) ([]byte, error)) (id string, err error)
	// Retire stops a spawned instance; an unknown id is not an error.
	Retire(ctx context.Context, id string) error
	// Process runs one batch of ABI records on a spawned instance, with the
	// processor's configuration (a JSON object), and returns the output
	// records. ErrUnknownInstance means the instance does not exist here.
	Process(ctx context.Context, id string, settings, input []byte, count int) ([]byte, error)
	// Module returns the bytes of a module version this node has, or an
	// error wrapping ErrUnknownModule.
	Module(ctx context.Context, sha string) ([]byte, error)
	// Publish hands stream messages relayed from other nodes to this
	// node's subscribers. It must not block.
	Publish(msgs []StreamMessage)
	// Sample reports the node's load, and the busy time of each processor
	// version its own pipelines ran since the previous call.
	Sample() (Load, []ProcessorLoad)
	// Instances lists the processor instances the node runs, local and
	// spawned, for the registry.
	Instances() []Instance
}

// Errors a Host returns for requests that name something it lacks.
var (
	ErrUnknownInstance = errors.New("unknown instance")
	ErrUnknownModule   = errors.New("unknown module")
)

// ProcessorLoad is how busy a processor version kept this node.
type ProcessorLoad struct {
	Name   string
	SHA256 string
	// Busy is the instance time spent on batches since the previous
	// sample, in seconds.
	Busy float64
	// Singleton processors are never spawned elsewhere for load.
	Singleton bool
}

// StreamMessage is a live-stream message carried between nodes: the
// fields the receiving hub filters on and the payload, sent as is.
type StreamMessage struct {
	ProjectID   string            `json:"project_id"`
	Type        string            `json:"type"`
	Level       string            `json:"level,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Payload     []byte            `json:"payload"`
	// Dropped, on a message of type "lagged", counts the project's
	// messages the sending node had to drop for this one: its subscribers
	// are told they missed them.
	Dropped int `json:"dropped,omitempty"`
}
