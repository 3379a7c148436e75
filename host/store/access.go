package store

import (
	"context"
	"time"
)

// DefaultOrgID is the id of the default organisation, which the schema
// creates: projects created without an organisation, and every project
// that existed before organisations did, belong to it. Its slug is
// DefaultOrgSlug.
const (
	DefaultOrgID   = "00000000-0000-4000-8000-000000000001"
	DefaultOrgSlug = "default"
)

// Org is an organisation: it owns projects and has members.
type Org struct {
	ID        string    `json:"id"`   // UUID
	Slug      string    `json:"slug"` // unique, [a-z0-9-], not shaped like a UUID
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Member roles, from the most to the least powerful: owners manage
// members; admins manage projects, keys, pipelines, alerts and settings;
// members act on issues and alerts; viewers read.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleViewer = "viewer"
)

// ValidRole reports whether role is one of the four roles.
func ValidRole(role string) bool {
	switch role {
	case RoleOwner, RoleAdmin, RoleMember, RoleViewer:
		return true
	}
	return false
}

// Member is a person's membership of one organisation, with one role. A
// person in two organisations is two members, each with its own tokens.
type Member struct {
	ID        string    `json:"id"` // UUID
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"` // unique within the organisation
	Role      string    `json:"role"`  // RoleOwner, RoleAdmin, RoleMember or RoleViewer
	CreatedAt time.Time `json:"created_at"`
}

// MemberToken is a member's personal access token. Only a SHA-256 of the
// token is stored.
type MemberToken struct {
	ID        string     `json:"id"` // UUID
	MemberID  string     `json:"member_id"`
	OrgID     string     `json:"org_id"` // the member's organisation, filled by reads
	Name      string     `json:"name,omitempty"`
	Prefix    string     `json:"prefix"` // first characters of the token, to tell tokens apart
	Hash      string     `json:"-"`      // hex SHA-256 of the token
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Orgs stores organisations. There is no deletion: an organisation's
// projects and history outlive any change to its members.
type Orgs interface {
	// CreateOrg stores o; ErrConflict if its id or slug is taken.
	CreateOrg(ctx context.Context, o *Org) error
	// Org returns an organisation by id or slug.
	Org(ctx context.Context, idOrSlug string) (*Org, error)
	// ListOrgs returns every organisation, oldest first.
	ListOrgs(ctx context.Context) ([]*Org, error)
}

// Members stores the members of organisations and their tokens.
//
// An organisation that has an owner always keeps one: SetMemberRole and
// DeleteMember refuse, with ErrConflict, to demote or remove its last
// owner, atomically with respect to concurrent calls on any node.
type Members interface {
	// CreateMember stores m: ErrNotFound if its organisation does not
	// exist, ErrConflict if its id, or its email within the
	// organisation, is taken.
	CreateMember(ctx context.Context, m *Member) error
	// Member returns a member by id.
	Member(ctx context.Context, id string) (*Member, error)
	// ListMembers returns an organisation's members, oldest first.
	ListMembers(ctx context.Context, orgID string) ([]*Member, error)
	// SetMemberRole changes a member's role: ErrNotFound if there is no
	// such member, ErrConflict if it is its organisation's last owner
	// and role is not RoleOwner.
	SetMemberRole(ctx context.Context, id, role string) error
	// DeleteMember deletes a member and its tokens: ErrNotFound if there
	// is no such member, ErrConflict if it is its organisation's last
	// owner.
	DeleteMember(ctx context.Context, id string) error

	// CreateMemberToken stores t: ErrNotFound if its member does not
	// exist, ErrConflict if its id or hash is taken. It sets t.OrgID.
	CreateMemberToken(ctx context.Context, t *MemberToken) error
	// MemberToken returns a token by id, revoked or not.
	MemberToken(ctx context.Context, id string) (*MemberToken, error)
	// MemberTokenByHash returns the token with that hash, revoked or not.
	MemberTokenByHash(ctx context.Context, hash string) (*MemberToken, error)
	// ListMemberTokens returns a member's tokens, oldest first.
	ListMemberTokens(ctx context.Context, memberID string) ([]*MemberToken, error)
	// RevokeMemberToken marks a token revoked; revoking twice keeps the
	// first time. ErrNotFound if there is no such token.
	RevokeMemberToken(ctx context.Context, id string, at time.Time) error
}
