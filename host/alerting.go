package host

import (
	"context"
	"time"

	"github.com/mesher-dev/mesher/host/alert"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// DefaultRetentionInterval is how often a node applies retention: events
// are kept by the day, so an hour late is close enough, and a failed run
// is retried soon.
const DefaultRetentionInterval = time.Hour

// retentionStartDelay is how long after start the first retention run
// waits, so that it does not compete with a node's start.
const retentionStartDelay = time.Minute

var _ alert.Publisher = (*Streams)(nil)

// Broadcast publishes m to the project's subscribers on this node and,
// through the relay, on the others: how alerts reach live streams.
func (s *Streams) Broadcast(m stream.Message) { s.publish(m) }

// observers tells several observers of every committed batch, in order.
type observers []ingest.Observer

func (o observers) Committed(events []*store.Event, results []store.Committed) {
	for _, ob := range o {
		ob.Committed(events, results)
	}
}

// ApplyRetention removes the events projects no longer keep, as of now
// (see store.Retention), and logs what went. The node runs it every
// RetentionInterval with its clock; tests call it with the time they
// want.
func (n *Node) ApplyRetention(ctx context.Context, now time.Time) (store.RetentionResult, error) {
	res, err := n.cfg.Store.ApplyRetention(ctx, now, n.cfg.RetentionDays)
	if len(res.DroppedPartitions) > 0 || res.DeletedEvents > 0 || res.DeletedDeliveries > 0 {
		n.log.Info("retention applied", "dropped_partitions", res.DroppedPartitions, "deleted_events", res.DeletedEvents,
			"pruned_event_ids", res.PrunedEventIDs, "deleted_deliveries", res.DeletedDeliveries)
	}
	return res, err
}

func (n *Node) retentionLoop(ctx context.Context) {
	defer n.bg.Done()
	wait := min(retentionStartDelay, n.cfg.RetentionInterval)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = n.cfg.RetentionInterval
		if _, err := n.ApplyRetention(ctx, n.cfg.Now()); err != nil && ctx.Err() == nil {
			n.log.Error("retention", "err", err)
		}
	}
}
