// Package stream is a node's live-stream hub: it pushes a project's
// processed events, issue changes and other notices to WebSocket
// subscribers.
//
// Ingestion calls [Hub.Publish] for every stored event. A [Message] is
// encoded to JSON once, by the caller (see [EventMessage], [IssueMessage]
// and [NewMessage]); the hub only reads its project, type and filter fields
// and hands the same payload bytes to every matching subscriber of that
// project. Publish never waits for a subscriber: it appends to each
// subscriber's bounded queue and wakes that subscriber's writer.
//
// [Hub.ServeWS] upgrades a request the HTTP layer has already
// authenticated and serves the subscriber until it disconnects. Each
// subscriber costs one writer goroutine besides the request's own
// goroutine, which reads client messages. A client narrows what it receives
// by sending
//
//	{"filters":{"level":["error","fatal"],"environment":["production"],"tags":{"region":"eu"}}}
//
// (see [Filters]); the hub answers {"type":"filters_updated","filters":{…}}
// or {"type":"error","error":"…"} and keeps the connection open either way.
//
// # Why drop the oldest messages?
//
// A subscriber that reads slower than its project publishes cannot be
// allowed to slow ingestion, other subscribers, or the node's memory, so
// its queue is bounded ([Config.BufferSize]). When the queue is full
// something must go, and the hub drops the oldest queued message rather
// than the newest one or the subscriber:
//
//   - A live view is about now. After a burst, a lagging dashboard shows the
//     latest events at once instead of replaying stale ones first, and the
//     newest message of a burst (often the one that matters, such as the
//     last state of an issue) is never the one lost.
//   - Disconnecting a slow subscriber would make it reconnect and fall
//     behind again, and a reconnecting client loses more than a few
//     messages.
//   - Every loss is reported: before the next message it delivers after a
//     drop, the hub sends {"type":"lagged","dropped":n} with the number of
//     messages dropped since the previous notice, so a client knows to
//     refresh from the HTTP API (which is the durable record).
//
// A subscriber whose connection stops taking data altogether is not kept
// forever: a write that blocks longer than [Config.WriteTimeout], or a peer
// that does not answer pings within [Config.PongWait], ends the
// connection.
package stream
