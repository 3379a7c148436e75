package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// APIKey returns a key by id, revoked or not.
func (s *Store) APIKey(ctx context.Context, id string) (*store.APIKey, error) {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return nil, fmt.Errorf("api key %q: %w", id, store.ErrNotFound)
	}
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = $1", uid))
	if isNoRows(err) {
		return nil, fmt.Errorf("api key %q: %w", id, store.ErrNotFound)
	}
	return k, wrap(fmt.Sprintf("api key %q", id), err)
}

// CreateOrg stores o; ErrConflict if its id or slug is taken. A zero
// CreatedAt is set to now.
func (s *Store) CreateOrg(ctx context.Context, o *store.Org) error {
	uid, ok := batch.ParseUUID(o.ID)
	if !ok {
		return fmt.Errorf("create organisation: id %q is not a UUID", o.ID)
	}
	o.ID = batch.FormatUUID(uid)
	if o.CreatedAt.IsZero() {
		o.CreatedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
		uid, o.Slug, o.Name, o.CreatedAt)
	if pgCode(err) == codeUniqueViolation {
		return fmt.Errorf("create organisation %q: %w", o.Slug, store.ErrConflict)
	}
	return wrap(fmt.Sprintf("create organisation %q", o.Slug), err)
}

const orgColumns = "id, slug, name, created_at"

func scanOrg(row pgx.Row) (*store.Org, error) {
	var o store.Org
	if err := row.Scan(&o.ID, &o.Slug, &o.Name, &o.CreatedAt); err != nil {
		return nil, err
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return &o, nil
}

// Org returns an organisation by id or slug.
func (s *Store) Org(ctx context.Context, idOrSlug string) (*store.Org, error) {
	q, arg := "SELECT "+orgColumns+" FROM orgs WHERE slug = $1", any(idOrSlug)
	if id, ok := batch.ParseUUID(idOrSlug); ok {
		q, arg = "SELECT "+orgColumns+" FROM orgs WHERE id = $1", id
	}
	o, err := scanOrg(s.pool.QueryRow(ctx, q, arg))
	if isNoRows(err) {
		return nil, fmt.Errorf("organisation %q: %w", idOrSlug, store.ErrNotFound)
	}
	return o, wrap(fmt.Sprintf("organisation %q", idOrSlug), err)
}

// ListOrgs returns every organisation, oldest first.
func (s *Store) ListOrgs(ctx context.Context) ([]*store.Org, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+orgColumns+" FROM orgs ORDER BY created_at, slug")
	if err != nil {
		return nil, wrap("list organisations", err)
	}
	os, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Org, error) { return scanOrg(r) })
	return os, wrap("list organisations", err)
}

// CreateMember stores m. A zero CreatedAt is set to now.
func (s *Store) CreateMember(ctx context.Context, m *store.Member) error {
	uid, ok := batch.ParseUUID(m.ID)
	if !ok {
		return fmt.Errorf("create member: id %q is not a UUID", m.ID)
	}
	if !store.ValidRole(m.Role) {
		return fmt.Errorf("create member: role %q is not one of owner, admin, member, viewer", m.Role)
	}
	org, ok := batch.ParseUUID(m.OrgID)
	if !ok {
		return fmt.Errorf("create member: organisation %q: %w", m.OrgID, store.ErrNotFound)
	}
	m.ID, m.OrgID = batch.FormatUUID(uid), batch.FormatUUID(org)
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO members (id, org_id, name, email, role, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, uid, org, m.Name, m.Email, m.Role, m.CreatedAt)
	switch pgCode(err) {
	case codeUniqueViolation:
		return fmt.Errorf("create member %q: %w", m.Email, store.ErrConflict)
	case codeForeignKeyViolation:
		return fmt.Errorf("create member: organisation %q: %w", m.OrgID, store.ErrNotFound)
	}
	return wrap(fmt.Sprintf("create member %q", m.Email), err)
}

const memberColumns = "id, org_id, name, email, role, created_at"

func scanMember(row pgx.Row) (*store.Member, error) {
	var m store.Member
	if err := row.Scan(&m.ID, &m.OrgID, &m.Name, &m.Email, &m.Role, &m.CreatedAt); err != nil {
		return nil, err
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return &m, nil
}

// Member returns a member by id.
func (s *Store) Member(ctx context.Context, id string) (*store.Member, error) {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return nil, fmt.Errorf("member %q: %w", id, store.ErrNotFound)
	}
	m, err := scanMember(s.pool.QueryRow(ctx, "SELECT "+memberColumns+" FROM members WHERE id = $1", uid))
	if isNoRows(err) {
		return nil, fmt.Errorf("member %q: %w", id, store.ErrNotFound)
	}
	return m, wrap(fmt.Sprintf("member %q", id), err)
}

// ListMembers returns an organisation's members, oldest first.
func (s *Store) ListMembers(ctx context.Context, orgID string) ([]*store.Member, error) {
	org, ok := batch.ParseUUID(orgID)
	if !ok {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+memberColumns+" FROM members WHERE org_id = $1 ORDER BY created_at, id", org)
	if err != nil {
		return nil, wrap("list members", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Member, error) { return scanMember(r) })
	return ms, wrap("list members", err)
}

// changeMember runs change on member id in a transaction that first locks
// the member's organisation, so that two changes in one organisation, from
// any node, never both see the other's owner as still there. It refuses,
// with ErrConflict, a change that takes the owner role away (demote) from
// an organisation's last owner.
func (s *Store) changeMember(ctx context.Context, op, id string, demote bool, change func(tx pgx.Tx, uid [16]byte) error) error {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return wrap(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		m, err := scanMember(tx.QueryRow(ctx, "SELECT "+memberColumns+" FROM members WHERE id = $1", uid))
		if isNoRows(err) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", m.OrgID); err != nil {
			return err
		}
		// Re-read under the lock: a concurrent change may have committed.
		m, err = scanMember(tx.QueryRow(ctx, "SELECT "+memberColumns+" FROM members WHERE id = $1", uid))
		if isNoRows(err) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if m.Role == store.RoleOwner && demote {
			var owners int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM members WHERE org_id = $1 AND role = 'owner'", m.OrgID).
				Scan(&owners); err != nil {
				return err
			}
			if owners <= 1 {
				return fmt.Errorf("member %s is the last owner of its organisation: %w", id, store.ErrConflict)
			}
		}
		return change(tx, uid)
	}))
}

// SetMemberRole changes a member's role, keeping its organisation's last
// owner.
func (s *Store) SetMemberRole(ctx context.Context, id, role string) error {
	op := fmt.Sprintf("set role of member %q", id)
	if !store.ValidRole(role) {
		return fmt.Errorf("%s: role %q is not one of owner, admin, member, viewer", op, role)
	}
	return s.changeMember(ctx, op, id, role != store.RoleOwner,
		func(tx pgx.Tx, uid [16]byte) error {
			_, err := tx.Exec(ctx, "UPDATE members SET role = $2 WHERE id = $1", uid, role)
			return err
		})
}

// DeleteMember deletes a member and its tokens, keeping its
// organisation's last owner.
func (s *Store) DeleteMember(ctx context.Context, id string) error {
	return s.changeMember(ctx, fmt.Sprintf("delete member %q", id), id, true,
		func(tx pgx.Tx, uid [16]byte) error {
			_, err := tx.Exec(ctx, "DELETE FROM members WHERE id = $1", uid)
			return err
		})
}

// CreateMemberToken stores t and sets t.OrgID. A zero CreatedAt is set to
// now.
func (s *Store) CreateMemberToken(ctx context.Context, t *store.MemberToken) error {
	uid, ok := batch.ParseUUID(t.ID)
	if !ok {
		return fmt.Errorf("create member token: id %q is not a UUID", t.ID)
	}
	mid, ok := batch.ParseUUID(t.MemberID)
	if !ok {
		return fmt.Errorf("create member token: member %q: %w", t.MemberID, store.ErrNotFound)
	}
	t.ID, t.MemberID = batch.FormatUUID(uid), batch.FormatUUID(mid)
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO member_tokens (id, member_id, name, prefix, hash, created_at, revoked_at)
		SELECT $1, m.id, $3, $4, $5, $6, $7 FROM members m WHERE m.id = $2
		RETURNING (SELECT org_id FROM members WHERE id = $2)`,
		uid, mid, t.Name, t.Prefix, t.Hash, t.CreatedAt, t.RevokedAt).Scan(&t.OrgID)
	switch {
	case isNoRows(err), pgCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("create member token: member %q: %w", t.MemberID, store.ErrNotFound)
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("create member token: %w", store.ErrConflict)
	}
	return wrap("create member token", err)
}

const tokenSelect = `SELECT t.id, t.member_id, m.org_id, t.name, t.prefix, t.hash, t.created_at, t.revoked_at
	FROM member_tokens t JOIN members m ON m.id = t.member_id`

func scanToken(row pgx.Row) (*store.MemberToken, error) {
	var t store.MemberToken
	if err := row.Scan(&t.ID, &t.MemberID, &t.OrgID, &t.Name, &t.Prefix, &t.Hash, &t.CreatedAt, &t.RevokedAt); err != nil {
		return nil, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if t.RevokedAt != nil {
		at := t.RevokedAt.UTC()
		t.RevokedAt = &at
	}
	return &t, nil
}

// MemberToken returns a token by id.
func (s *Store) MemberToken(ctx context.Context, id string) (*store.MemberToken, error) {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return nil, fmt.Errorf("member token %q: %w", id, store.ErrNotFound)
	}
	t, err := scanToken(s.pool.QueryRow(ctx, tokenSelect+" WHERE t.id = $1", uid))
	if isNoRows(err) {
		return nil, fmt.Errorf("member token %q: %w", id, store.ErrNotFound)
	}
	return t, wrap(fmt.Sprintf("member token %q", id), err)
}

// MemberTokenByHash returns the token with that hash.
func (s *Store) MemberTokenByHash(ctx context.Context, hash string) (*store.MemberToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, tokenSelect+" WHERE t.hash = $1", hash))
	if isNoRows(err) {
		return nil, fmt.Errorf("member token: %w", store.ErrNotFound)
	}
	return t, wrap("member token", err)
}

// ListMemberTokens returns a member's tokens, oldest first.
func (s *Store) ListMemberTokens(ctx context.Context, memberID string) ([]*store.MemberToken, error) {
	mid, ok := batch.ParseUUID(memberID)
	if !ok {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, tokenSelect+" WHERE t.member_id = $1 ORDER BY t.created_at, t.id", mid)
	if err != nil {
		return nil, wrap("list member tokens", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.MemberToken, error) { return scanToken(r) })
	return ts, wrap("list member tokens", err)
}

// RevokeMemberToken marks a token revoked at at; a token already revoked
// keeps its first revocation time.
func (s *Store) RevokeMemberToken(ctx context.Context, id string, at time.Time) error {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("revoke member token %q: %w", id, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE member_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", uid, at)
	if err != nil {
		return wrap(fmt.Sprintf("revoke member token %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke member token %q: %w", id, store.ErrNotFound)
	}
	return nil
}
