package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
)

// Organisations, members and their tokens.

// org resolves :org (an id or a slug); a missing organisation is the same
// 404 as one the caller cannot see.
func (a *API) org(r *http.Request, idOrSlug string) (*store.Org, error) {
	o, err := a.cfg.Store.Org(r.Context(), idOrSlug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(r)
	}
	return o, err
}

// orgAccess resolves :org and checks the caller's role in it.
func (a *API) orgAccess(r *http.Request, ps httprouter.Params, need Role) (*store.Org, error) {
	o, err := a.org(r, ps.ByName("org"))
	if err != nil {
		return nil, err
	}
	if err := a.requireOrgRole(r, o.ID, need); err != nil {
		return nil, err
	}
	return o, nil
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	c, err := a.requireMember(r)
	if err != nil {
		return err
	}
	var orgs []*store.Org
	if c.admin {
		if orgs, err = a.cfg.Store.ListOrgs(r.Context()); err != nil {
			return err
		}
	} else {
		o, err := a.cfg.Store.Org(r.Context(), c.member.OrgID)
		if err != nil {
			return err
		}
		orgs = []*store.Org{o}
	}
	writeJSON(w, http.StatusOK, map[string]any{"orgs": nonNil(orgs)})
	return nil
}

func (a *API) createOrg(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if _, err := a.requireNodeAdmin(r); err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	name, slug, err := nameAndSlug(req.Name, req.Slug)
	if err != nil {
		return err
	}
	o := &store.Org{ID: ingest.NewUUID(), Slug: slug, Name: name, CreatedAt: a.cfg.Now().UTC()}
	if err := a.cfg.Store.CreateOrg(r.Context(), o); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "slug %q is taken", slug)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, o)
	return nil
}

// nameAndSlug validates a name and a slug, deriving the slug from the name
// when it is empty.
func nameAndSlug(name, slug string) (string, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", "", errorf(http.StatusBadRequest, `field "name" must be 1 to 100 characters`)
	}
	if slug == "" {
		slug = slugify(name)
	}
	if !slugRE.MatchString(slug) || uuidShapeRE.MatchString(slug) {
		return "", "", errorf(http.StatusBadRequest, `field "slug" must be 1 to 50 lower-case letters, digits and '-', starting with a letter or digit, got %q`, slug)
	}
	return name, slug, nil
}

func (a *API) getOrg(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	o, err := a.orgAccess(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// me is GET /api/v1/me: who the credentials are.
func (a *API) me(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	c, err := a.requireMember(r)
	if err != nil {
		return err
	}
	if c.admin {
		writeJSON(w, http.StatusOK, map[string]any{"admin": true, "role": RoleOwner.String()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"admin": false, "member": c.member, "org_id": c.member.OrgID, "role": c.member.Role})
	return nil
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	o, err := a.orgAccess(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	ms, err := a.cfg.Store.ListMembers(r.Context(), o.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": nonNil(ms)})
	return nil
}

// validRole checks a role named in field.
func validRole(field, role string) error {
	if !store.ValidRole(role) {
		return errorf(http.StatusBadRequest, "field %q must be one of owner, admin, member, viewer, got %q", field, role)
	}
	return nil
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	o, err := a.orgAccess(r, ps, RoleOwner)
	if err != nil {
		return err
	}
	var req struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return errorf(http.StatusBadRequest, `field "name" must be 1 to 100 characters`)
	}
	addr, err := mail.ParseAddress(req.Email)
	if err != nil || addr.Address != req.Email || len(req.Email) > 254 {
		return errorf(http.StatusBadRequest, `field "email" must be an e-mail address such as ada@example.com, got %q`, req.Email)
	}
	if err := validRole("role", req.Role); err != nil {
		return err
	}
	m := &store.Member{ID: ingest.NewUUID(), OrgID: o.ID, Name: req.Name, Email: strings.ToLower(req.Email), Role: req.Role,
		CreatedAt: a.cfg.Now().UTC()}
	if err := a.cfg.Store.CreateMember(r.Context(), m); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "%s is already a member of organisation %s", m.Email, o.Slug)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

// member resolves :id, a member of organisation o.
func (a *API) member(r *http.Request, o *store.Org, id string) (*store.Member, error) {
	m, err := a.cfg.Store.Member(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.OrgID != o.ID) {
		return nil, errorf(http.StatusNotFound, "member %q not found in organisation %s", id, o.Slug)
	}
	return m, err
}

func (a *API) setMemberRole(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	o, err := a.orgAccess(r, ps, RoleOwner)
	if err != nil {
		return err
	}
	m, err := a.member(r, o, ps.ByName("id"))
	if err != nil {
		return err
	}
	var req struct {
		Role string `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := validRole("role", req.Role); err != nil {
		return err
	}
	if err := a.cfg.Store.SetMemberRole(r.Context(), m.ID, req.Role); err != nil {
		return memberConflict(err, m, o)
	}
	m.Role = req.Role
	writeJSON(w, http.StatusOK, m)
	return nil
}

// memberConflict words the store's refusal to leave an organisation
// without an owner.
func memberConflict(err error, m *store.Member, o *store.Org) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, "member %s is the last owner of organisation %s: make another member owner first", m.ID, o.Slug)
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "member %q not found in organisation %s", m.ID, o.Slug)
	}
	return err
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	o, err := a.orgAccess(r, ps, RoleOwner)
	if err != nil {
		return err
	}
	m, err := a.member(r, o, ps.ByName("id"))
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteMember(r.Context(), m.ID); err != nil {
		return memberConflict(err, m, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": m.ID, "removed": true})
	return nil
}

// tokenOwnerAccess resolves :org and :id for the token routes of a
// member: the member itself may manage its own tokens, whatever its role;
// anyone else needs the owner role.
func (a *API) tokenOwnerAccess(r *http.Request, ps httprouter.Params) (*store.Member, error) {
	o, err := a.org(r, ps.ByName("org"))
	if err != nil {
		return nil, err
	}
	c, err := a.authenticate(r)
	if err != nil {
		return nil, err
	}
	if c.member == nil || c.member.OrgID != o.ID || !strings.EqualFold(c.member.ID, ps.ByName("id")) {
		if err := a.requireOrgRole(r, o.ID, RoleOwner); err != nil {
			return nil, err
		}
	}
	return a.member(r, o, ps.ByName("id"))
}

// newTokenResponse is a member token as created: the only time the token
// itself is shown.
type newTokenResponse struct {
	*store.MemberToken
	Token string `json:"token"`
}

// NewToken returns a new random member token and the hex SHA-256 that is
// stored.
func NewToken() (token, hash string) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	token = TokenPrefix + hex.EncodeToString(b[:])
	return token, HashToken(token)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	m, err := a.tokenOwnerAccess(r, ps)
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	if len(req.Name) > 100 {
		return errorf(http.StatusBadRequest, `field "name" must be at most 100 characters`)
	}
	token, hash := NewToken()
	t := &store.MemberToken{ID: ingest.NewUUID(), MemberID: m.ID, Name: req.Name, Prefix: token[:len(TokenPrefix)+8],
		Hash: hash, CreatedAt: a.cfg.Now().UTC()}
	if err := a.cfg.Store.CreateMemberToken(r.Context(), t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "member %q not found", m.ID)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, newTokenResponse{MemberToken: t, Token: token})
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	m, err := a.tokenOwnerAccess(r, ps)
	if err != nil {
		return err
	}
	ts, err := a.cfg.Store.ListMemberTokens(r.Context(), m.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": nonNil(ts)})
	return nil
}

// revokeToken is POST /api/v1/tokens/:id/revoke: by the token's member,
// or an owner of its organisation.
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	c, err := a.requireMember(r)
	if err != nil {
		return err
	}
	t, err := a.cfg.Store.MemberToken(r.Context(), ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound(r)
	}
	if err != nil {
		return err
	}
	if c.member == nil || c.member.ID != t.MemberID {
		if err := a.requireOrgRole(r, t.OrgID, RoleOwner); err != nil {
			return err
		}
	}
	at := a.cfg.Now().UTC()
	if err := a.cfg.Store.RevokeMemberToken(r.Context(), t.ID, at); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(r)
		}
		return err
	}
	if t.RevokedAt != nil {
		at = *t.RevokedAt
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "revoked_at": at.Truncate(time.Microsecond)})
	return nil
}
