// Package cluster makes Mesher nodes one cluster: membership and failure
// detection over gossip (hashicorp/memberlist), each node's load, a
// cluster-wide registry of processor instances, per-node interests, and
// authentication of node-to-node HTTP calls. It knows nothing of the host:
// the node tells it what runs where (SetLocalInstances, SetInterests,
// SetLoad) and asks it who is alive and where things run (Members,
// Registry, Interested, Subscribe).
//
// # Model
//
// Gossip is a routing cache, not the source of truth. Every node owns and
// publishes only its own entries; each node's view converges on the others'
// within a second on a LAN, but may briefly lag, and differs between the
// sides of a partition. Anything that must be true everywhere at once — the
// single owner of a singleton processor, events acknowledged to a client —
// lives in PostgreSQL (leases with fencing tokens, durable commits). A
// stale registry entry costs a failed forward that is retried elsewhere,
// never correctness.
//
// Membership. Start joins the seeds; a node that reaches none runs alone
// and keeps trying. Every RejoinInterval (every second while alone) a node
// joins the seeds that are not alive members and the members declared dead
// in the last few minutes, which merges the two halves of a healed
// partition — memberlist does not do that itself. Gossip is encrypted (AES-256-GCM) with a key derived from
// the cookie, so a node with another cookie can neither join nor read it.
// Each node's metadata (≤ MaxMetaSize bytes) carries its boot epoch, HTTP
// address and load. A node that restarts with the same name comes back as a
// new incarnation with a larger epoch: on the same address it refutes the
// old one at once; on a new address it is accepted as soon as the old one is
// declared dead (DeadNodeReclaimTime), and it retries joining while peers
// still hold the old address.
//
// Failure detection. With the defaults (probe every 400 ms, 200 ms probe
// timeout, suspicion multiplier 3) three nodes declare a crashed one dead
// in about 2 s (memberlist's LAN defaults: 5–9 s). memberlist calls
// NotifyLeave for a crash and for a graceful leave alike, and v0.7.0 never
// fills in Node.State, so Leave first gossips a "leaving" flag in the
// metadata and peers read it when the node goes: StateLeft and MemberLeft
// for a departure, StateDead and MemberFailed for a crash.
//
// Registry. Each node publishes two records, its instances and its
// interests, versioned by (epoch, sequence number). A record goes out as a
// memberlist user broadcast when it fits in 1000 bytes (and every node that
// learns something new from it gossips it on), otherwise directly to every
// peer over memberlist's encrypted TCP stream; every push/pull exchange
// (PushPullInterval) carries all records as a backstop. A record never
// replaces a newer one, and records of an earlier incarnation are dropped,
// so late or repeated messages are harmless. Entries of a node that is dead
// or left disappear from Registry at once and come back if it returns.
//
// Node-to-node HTTP. Requests between nodes are signed with an HMAC key
// derived from the cookie (a different key than the gossip key): Client
// signs, RequireNode verifies (see auth.go for what is signed and the
// replay window).
//
// # Concurrency
//
// Every method of Cluster is safe for concurrent use. The Set methods
// return at once; gossip happens on background goroutines. Subscribe
// callbacks run one at a time on one goroutine, outside memberlist's
// locks.
package cluster
