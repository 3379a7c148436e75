package postgres

import (
	"context"
	"fmt"
	"time"
)

// Lease is a singleton processor's ownership record in the singleton_leases
// table, as it stands after Acquire.
type Lease struct {
	// Name is the singleton processor.
	Name string
	// Owner holds, or last held, the lease.
	Owner string
	// Token grows by one each time the lease changes hands: the fencing
	// token.
	Token int64
	// Expires is when the lease runs out, by the database's clock.
	Expires time.Time
	// Held reports whether the caller of Acquire holds the lease.
	Held bool
}

// acquireSQL takes or renews a lease in one compare-and-set: it inserts the
// row (token 1) if there is none, and otherwise updates it only if it has
// expired or owner already holds it. An owner renewing an unexpired lease
// keeps its token and acquired_at; any other change of hands, including an
// owner taking back its own expired lease, takes the next token. Expiry is
// by the database's clock, so nodes' clocks do not matter. Concurrent calls
// serialize on the row: ON CONFLICT DO UPDATE re-checks its WHERE against
// the latest committed row, so of callers racing for an expired lease
// exactly one wins.
const acquireSQL = `INSERT INTO singleton_leases AS l (processor, owner, token, expires_at, acquired_at)
	VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond', now())
	ON CONFLICT (processor) DO UPDATE SET
		owner       = excluded.owner,
		token       = CASE WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.token ELSE l.token + 1 END,
		acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
		expires_at  = excluded.expires_at
	WHERE l.expires_at <= now() OR l.owner = excluded.owner
	RETURNING owner, token, expires_at`

// Acquire takes or renews the lease on the singleton processor name for
// owner, for ttl, atomically: it succeeds if there is no lease, if the lease
// has expired by the database's clock, or if owner already holds it. A new
// holder gets the previous token plus one; a renewal keeps the token. It
// returns the lease as it stands after the call, with Held set when owner
// holds it. A refusal is not an error.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	op := fmt.Sprintf("acquire lease on %q", name)
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("%s: ttl %v is not positive", op, ttl)
	}
	l := Lease{Name: name}
	err := s.pool.QueryRow(ctx, acquireSQL, name, owner, ttl.Microseconds()).Scan(&l.Owner, &l.Token, &l.Expires)
	switch {
	case err == nil:
		l.Held = true
	case isNoRows(err):
		// Someone else holds it. A new statement sees the row as it
		// stands now, including a holder that committed while this call
		// waited for the row.
		err = s.pool.QueryRow(ctx, "SELECT owner, token, expires_at FROM singleton_leases WHERE processor = $1", name).
			Scan(&l.Owner, &l.Token, &l.Expires)
		if isNoRows(err) {
			err = nil // released and deleted by hand since: nobody holds it
		}
	}
	if err != nil {
		return Lease{}, wrap(op, err)
	}
	l.Expires = l.Expires.UTC()
	return l, nil
}

// Release gives up the lease on name if owner still holds it with token,
// so that another owner can take it at once. It keeps the row, expired, so
// the next holder's token is still larger. Releasing a lease that owner no
// longer holds does nothing.
func (s *Store) Release(ctx context.Context, name, owner string, token int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE singleton_leases SET expires_at = now()
		WHERE processor = $1 AND owner = $2 AND token = $3 AND expires_at > now()`, name, owner, token)
	return wrap(fmt.Sprintf("release lease on %q", name), err)
}
