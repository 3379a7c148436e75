package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// APIKey returns a key by id, revoked or not.
func (s *Store) APIKey(ctx context.Context, id string) (*store.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = ?", canonical(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("api key %q: %w", id, store.ErrNotFound)
	}
	return k, wrap(fmt.Sprintf("api key %q", id), err)
}

// nullTime converts an optional time to the stored form.
func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

// timePtr converts a stored optional time back.
func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// CreateOrg stores o; ErrConflict if its id or slug is taken. A zero
// CreatedAt is set to now.
func (s *Store) CreateOrg(ctx context.Context, o *store.Org) error {
	if _, ok := batch.ParseUUID(o.ID); !ok {
		return fmt.Errorf("create organisation: id %q is not a UUID", o.ID)
	}
	o.ID = canonical(o.ID)
	if o.CreatedAt.IsZero() {
		o.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, "INSERT INTO orgs (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
		o.ID, o.Slug, o.Name, micros(o.CreatedAt))
	if isConflict(err) {
		return fmt.Errorf("create organisation %q: %w", o.Slug, store.ErrConflict)
	}
	return wrap(fmt.Sprintf("create organisation %q", o.Slug), err)
}

const orgColumns = "id, slug, name, created_at"

func scanOrg(row interface{ Scan(...any) error }) (*store.Org, error) {
	var o store.Org
	var created int64
	if err := row.Scan(&o.ID, &o.Slug, &o.Name, &created); err != nil {
		return nil, err
	}
	o.CreatedAt = fromMicros(created)
	return &o, nil
}

// Org returns an organisation by id or slug.
func (s *Store) Org(ctx context.Context, idOrSlug string) (*store.Org, error) {
	q, arg := "SELECT "+orgColumns+" FROM orgs WHERE slug = ?", idOrSlug
	if _, ok := batch.ParseUUID(idOrSlug); ok {
		q, arg = "SELECT "+orgColumns+" FROM orgs WHERE id = ?", canonical(idOrSlug)
	}
	o, err := scanOrg(s.r.QueryRowContext(ctx, q, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("organisation %q: %w", idOrSlug, store.ErrNotFound)
	}
	return o, wrap(fmt.Sprintf("organisation %q", idOrSlug), err)
}

// ListOrgs returns every organisation, oldest first.
func (s *Store) ListOrgs(ctx context.Context) ([]*store.Org, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+orgColumns+" FROM orgs ORDER BY created_at, slug")
	if err != nil {
		return nil, wrap("list organisations", err)
	}
	os, err := collect(rows, scanOrg)
	return os, wrap("list organisations", err)
}

// CreateMember stores m. A zero CreatedAt is set to now.
func (s *Store) CreateMember(ctx context.Context, m *store.Member) error {
	if _, ok := batch.ParseUUID(m.ID); !ok {
		return fmt.Errorf("create member: id %q is not a UUID", m.ID)
	}
	if !store.ValidRole(m.Role) {
		return fmt.Errorf("create member: role %q is not one of owner, admin, member, viewer", m.Role)
	}
	m.ID, m.OrgID = canonical(m.ID), canonical(m.OrgID)
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO members (id, org_id, name, email, role, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.ID, m.OrgID, m.Name, m.Email, m.Role, micros(m.CreatedAt))
	switch {
	case isConflict(err):
		return fmt.Errorf("create member %q: %w", m.Email, store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("create member: organisation %q: %w", m.OrgID, store.ErrNotFound)
	}
	return wrap(fmt.Sprintf("create member %q", m.Email), err)
}

const memberColumns = "id, org_id, name, email, role, created_at"

func scanMember(row interface{ Scan(...any) error }) (*store.Member, error) {
	var m store.Member
	var created int64
	if err := row.Scan(&m.ID, &m.OrgID, &m.Name, &m.Email, &m.Role, &created); err != nil {
		return nil, err
	}
	m.CreatedAt = fromMicros(created)
	return &m, nil
}

// Member returns a member by id.
func (s *Store) Member(ctx context.Context, id string) (*store.Member, error) {
	m, err := scanMember(s.r.QueryRowContext(ctx, "SELECT "+memberColumns+" FROM members WHERE id = ?", canonical(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("member %q: %w", id, store.ErrNotFound)
	}
	return m, wrap(fmt.Sprintf("member %q", id), err)
}

// ListMembers returns an organisation's members, oldest first.
func (s *Store) ListMembers(ctx context.Context, orgID string) ([]*store.Member, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+memberColumns+" FROM members WHERE org_id = ? ORDER BY created_at, id",
		canonical(orgID))
	if err != nil {
		return nil, wrap("list members", err)
	}
	ms, err := collect(rows, scanMember)
	return ms, wrap("list members", err)
}

// changeMember runs change on member id in a write transaction (writes are
// serialized, so nothing changes between its reads and its write). It
// refuses, with ErrConflict, a change that takes the owner role away
// (demote) from an organisation's last owner.
func (s *Store) changeMember(ctx context.Context, op, id string, demote bool, change func(tx *sql.Tx) error) error {
	var failure error
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := scanMember(tx.QueryRowContext(ctx, "SELECT "+memberColumns+" FROM members WHERE id = ?", canonical(id)))
		if errors.Is(err, sql.ErrNoRows) {
			failure = fmt.Errorf("%s: %w", op, store.ErrNotFound)
			return errRollback
		}
		if err != nil {
			return err
		}
		if m.Role == store.RoleOwner && demote {
			var owners int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM members WHERE org_id = ? AND role = 'owner'", m.OrgID).
				Scan(&owners); err != nil {
				return err
			}
			if owners <= 1 {
				failure = fmt.Errorf("%s: member %s is the last owner of its organisation: %w", op, id, store.ErrConflict)
				return errRollback
			}
		}
		return change(tx)
	})
	if errors.Is(err, errRollback) {
		return failure
	}
	return wrap(op, err)
}

// SetMemberRole changes a member's role, keeping its organisation's last
// owner.
func (s *Store) SetMemberRole(ctx context.Context, id, role string) error {
	op := fmt.Sprintf("set role of member %q", id)
	if !store.ValidRole(role) {
		return fmt.Errorf("%s: role %q is not one of owner, admin, member, viewer", op, role)
	}
	return s.changeMember(ctx, op, id, role != store.RoleOwner, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE members SET role = ? WHERE id = ?", role, canonical(id))
		return err
	})
}

// DeleteMember deletes a member and its tokens, keeping its
// organisation's last owner.
func (s *Store) DeleteMember(ctx context.Context, id string) error {
	return s.changeMember(ctx, fmt.Sprintf("delete member %q", id), id, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM members WHERE id = ?", canonical(id))
		return err
	})
}

// CreateMemberToken stores t and sets t.OrgID. A zero CreatedAt is set to
// now.
func (s *Store) CreateMemberToken(ctx context.Context, t *store.MemberToken) error {
	if _, ok := batch.ParseUUID(t.ID); !ok {
		return fmt.Errorf("create member token: id %q is not a UUID", t.ID)
	}
	t.ID, t.MemberID = canonical(t.ID), canonical(t.MemberID)
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	var failure error
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT org_id FROM members WHERE id = ?", t.MemberID).Scan(&t.OrgID)
		if errors.Is(err, sql.ErrNoRows) {
			failure = fmt.Errorf("create member token: member %q: %w", t.MemberID, store.ErrNotFound)
			return errRollback
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO member_tokens (id, member_id, name, prefix, hash, created_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, t.ID, t.MemberID, t.Name, t.Prefix, t.Hash, micros(t.CreatedAt), nullTime(t.RevokedAt))
		if isConflict(err) {
			failure = fmt.Errorf("create member token: %w", store.ErrConflict)
			return errRollback
		}
		return err
	})
	if errors.Is(err, errRollback) {
		return failure
	}
	return wrap("create member token", err)
}

const tokenSelect = `SELECT t.id, t.member_id, m.org_id, t.name, t.prefix, t.hash, t.created_at, t.revoked_at
	FROM member_tokens t JOIN members m ON m.id = t.member_id`

func scanToken(row interface{ Scan(...any) error }) (*store.MemberToken, error) {
	var t store.MemberToken
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&t.ID, &t.MemberID, &t.OrgID, &t.Name, &t.Prefix, &t.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RevokedAt = fromMicros(created), timePtr(revoked)
	return &t, nil
}

// MemberToken returns a token by id.
func (s *Store) MemberToken(ctx context.Context, id string) (*store.MemberToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, tokenSelect+" WHERE t.id = ?", canonical(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("member token %q: %w", id, store.ErrNotFound)
	}
	return t, wrap(fmt.Sprintf("member token %q", id), err)
}

// MemberTokenByHash returns the token with that hash.
func (s *Store) MemberTokenByHash(ctx context.Context, hash string) (*store.MemberToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, tokenSelect+" WHERE t.hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("member token: %w", store.ErrNotFound)
	}
	return t, wrap("member token", err)
}

// ListMemberTokens returns a member's tokens, oldest first.
func (s *Store) ListMemberTokens(ctx context.Context, memberID string) ([]*store.MemberToken, error) {
	rows, err := s.r.QueryContext(ctx, tokenSelect+" WHERE t.member_id = ? ORDER BY t.created_at, t.id", canonical(memberID))
	if err != nil {
		return nil, wrap("list member tokens", err)
	}
	ts, err := collect(rows, scanToken)
	return ts, wrap("list member tokens", err)
}

// RevokeMemberToken marks a token revoked at at; a token already revoked
// keeps its first revocation time.
func (s *Store) RevokeMemberToken(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, "UPDATE member_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
		micros(at), canonical(id))
	if err != nil {
		return wrap(fmt.Sprintf("revoke member token %q", id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke member token %q: %w", id, store.ErrNotFound)
	}
	return nil
}
