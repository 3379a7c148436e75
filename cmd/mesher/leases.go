package main

import (
	"context"
	"time"

	"github.com/mesher-dev/mesher/cluster"
	"github.com/mesher-dev/mesher/host/store/postgres"
)

// leaseAdapter gives the cluster layer the singleton leases of the
// PostgreSQL store. The two packages do not import each other, so each has
// its own Lease type; they have the same fields, so one converts to the
// other (and stops compiling if they drift apart).
type leaseAdapter struct{ s *postgres.Store }

var _ cluster.Leases = leaseAdapter{}

func (a leaseAdapter) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (cluster.Lease, error) {
	l, err := a.s.Acquire(ctx, name, owner, ttl)
	return cluster.Lease(l), err
}

func (a leaseAdapter) Release(ctx context.Context, name, owner string, token int64) error {
	return a.s.Release(ctx, name, owner, token)
}
