package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/store"
)

// Role is what a caller may do in an organisation. Roles are ordered: each
// may do what the ones below it may.
type Role int

// Roles. Viewers read; members act on issues and alerts; admins manage
// projects, keys, pipelines, alert rules and settings; owners manage
// members. The admin token from start-up is an owner of every
// organisation.
const (
	RoleNone Role = iota
	RoleViewer
	RoleMember
	RoleAdmin
	RoleOwner
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return store.RoleViewer
	case RoleMember:
		return store.RoleMember
	case RoleAdmin:
		return store.RoleAdmin
	case RoleOwner:
		return store.RoleOwner
	}
	return "none"
}

// roleOf returns the Role of a stored role name, RoleNone for anything
// else.
func roleOf(name string) Role {
	switch name {
	case store.RoleViewer:
		return RoleViewer
	case store.RoleMember:
		return RoleMember
	case store.RoleAdmin:
		return RoleAdmin
	case store.RoleOwner:
		return RoleOwner
	}
	return RoleNone
}

// TokenPrefix starts every member token, so that a token is told from a
// project key without a lookup, and leaked tokens are easy to spot.
const TokenPrefix = "mpt_"

// caller is who sent a request: the admin token, a member (by one of its
// tokens) or a project key. Exactly one of the three is set.
type caller struct {
	admin  bool
	member *store.Member
	key    *store.APIKey
}

// roleIn returns the caller's role in an organisation.
func (c *caller) roleIn(orgID string) Role {
	switch {
	case c.admin:
		return RoleOwner
	case c.member != nil && c.member.OrgID == orgID:
		return roleOf(c.member.Role)
	}
	return RoleNone
}

// name identifies the caller in records such as who acknowledged an
// alert: "admin", or a member id.
func (c *caller) name() string {
	if c.member != nil {
		return c.member.ID
	}
	return "admin"
}

type callerKey struct{}

// paramsKey holds the route's parameters, so that access checks can
// answer 404 in the words the route uses for a missing resource.
type paramsKey struct{}

// errKeyRefused answers a project key on a management route.
var errKeyRefused = errorf(http.StatusForbidden,
	"project keys only send events and open live streams; this route needs the admin token or a member token")

// authenticate returns who sent r: 401 without credentials or with
// credentials that are unknown, revoked, or of a member since removed.
// Member tokens are looked up on every request, not cached, so a
// revocation, removal or role change applies at once on every node.
func (a *API) authenticate(r *http.Request) (*caller, error) {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		return c, nil
	}
	return a.callerFor(r.Context(), credential(r, false))
}

// callerFor returns who tok is: the admin token, a member's token or a
// project key.
func (a *API) callerFor(ctx context.Context, tok string) (*caller, error) {
	switch {
	case tok == "":
		return nil, errorf(http.StatusUnauthorized, "missing credentials: send Authorization: Bearer <admin token or member token>")
	case a.isAdmin(tok):
		return &caller{admin: true}, nil
	case strings.HasPrefix(tok, TokenPrefix):
		t, err := a.cfg.Store.MemberTokenByHash(ctx, HashToken(tok))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(http.StatusUnauthorized, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		if t.RevokedAt != nil {
			return nil, errorf(http.StatusUnauthorized, "token was revoked")
		}
		m, err := a.cfg.Store.Member(ctx, t.MemberID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(http.StatusUnauthorized, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		return &caller{member: m}, nil
	}
	k, _, err := a.keys.lookup(ctx, tok)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errorf(http.StatusUnauthorized, "unknown token")
	case err != nil:
		return nil, err
	case k.RevokedAt != nil:
		return nil, errorf(http.StatusUnauthorized, "project key was revoked")
	}
	return &caller{key: k}, nil
}

// authed wraps a management route: it answers 401 before anything else
// (before looking up what the route names, so that no existence leaks to
// anonymous callers), and keeps the caller and the route's parameters in
// the request's context for the role checks.
func (a *API) authed(h handler) httprouter.Handle {
	return a.wrap(func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		c, err := a.authenticate(r)
		if err != nil {
			return err
		}
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		ctx = context.WithValue(ctx, paramsKey{}, ps)
		return h(w, r.WithContext(ctx), ps)
	})
}

// resourceNames name the resources of id routes, by the path segment
// before the id, for 404 messages.
var resourceNames = map[string]string{
	"issues":      "issue",
	"alert-rules": "alert rule",
	"alerts":      "alert",
	"api-keys":    "API key",
	"tokens":      "token",
	"members":     "member",
	"events":      "event",
}

// notFound is the 404 of a route whose resource does not exist, in the
// same words whether it does not exist or the caller may not see it:
// "project "x" not found" on a route with :project, "organisation "x" not
// found" with :org, "issue "7" not found" on /issues/:id/….
func notFound(r *http.Request) error {
	ps, _ := r.Context().Value(paramsKey{}).(httprouter.Params)
	if v := ps.ByName("project"); v != "" {
		return errorf(http.StatusNotFound, "project %q not found", v)
	}
	if v := ps.ByName("org"); v != "" {
		return errorf(http.StatusNotFound, "organisation %q not found", v)
	}
	if id := ps.ByName("id"); id != "" {
		segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		for i := 1; i < len(segs); i++ {
			if segs[i] == id {
				if name, ok := resourceNames[segs[i-1]]; ok {
					return errorf(http.StatusNotFound, "%s %q not found", name, id)
				}
			}
		}
	}
	return errorf(http.StatusNotFound, "%s not found", r.URL.Path)
}

// requireProjectRole authorizes a request on a project: 401 without valid
// credentials, 403 when the caller's role in the project's organisation is
// below need, and 404 — in the words the route uses for a missing
// resource — when the caller has no role there at all, so that the
// project's existence does not leak. A project key gets 403 on its own
// project and 404 on any other.
func (a *API) requireProjectRole(r *http.Request, p *store.Project, need Role) error {
	c, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if c.key != nil {
		if c.key.ProjectID != p.ID {
			return notFound(r)
		}
		return errKeyRefused
	}
	return c.check(r, c.roleIn(p.OrgID), need)
}

// requireOrgRole authorizes a request on an organisation, as
// requireProjectRole does on a project.
func (a *API) requireOrgRole(r *http.Request, orgID string, need Role) error {
	c, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if c.key != nil {
		return errKeyRefused
	}
	return c.check(r, c.roleIn(orgID), need)
}

func (c *caller) check(r *http.Request, have, need Role) error {
	switch {
	case have == RoleNone:
		return notFound(r)
	case have < need:
		return errorf(http.StatusForbidden, "this needs the %s role in the organisation; you are %s", need, articled(have))
	}
	return nil
}

func articled(r Role) string {
	if r == RoleAdmin || r == RoleOwner {
		return "an " + r.String()
	}
	return "a " + r.String()
}

// requireMember lets in the admin token and every member of every
// organisation: node-wide reads, such as the processors a pipeline may
// use.
func (a *API) requireMember(r *http.Request) (*caller, error) {
	c, err := a.authenticate(r)
	if err != nil {
		return nil, err
	}
	if c.key != nil {
		return nil, errKeyRefused
	}
	return c, nil
}

// requireNodeAdmin lets in the admin token and the admins and owners of
// the default organisation: what every organisation shares — processor
// modules, organisations themselves, the cluster view — belongs to the
// node's operators, and an admin of one tenant must not replace a
// processor that another tenant's pipelines run.
func (a *API) requireNodeAdmin(r *http.Request) (*caller, error) {
	c, err := a.requireMember(r)
	if err != nil {
		return nil, err
	}
	if c.roleIn(store.DefaultOrgID) < RoleAdmin {
		return nil, errorf(http.StatusForbidden,
			"this manages what every organisation shares: it needs the admin token, or the admin or owner role in the %q organisation",
			store.DefaultOrgSlug)
	}
	return c, nil
}

// projectAccess resolves :project and checks the caller's role in it; the
// answer for a project that does not exist and for one the caller cannot
// see is the same 404.
func (a *API) projectAccess(r *http.Request, idOrSlug string, need Role) (*store.Project, error) {
	p, err := a.project(r.Context(), idOrSlug)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusNotFound {
			return nil, notFound(r)
		}
		return nil, err
	}
	if err := a.requireProjectRole(r, p, need); err != nil {
		return nil, err
	}
	return p, nil
}

// onProject wraps a management route on /projects/:project/…: the caller
// must have need in the project's organisation.
func (a *API) onProject(need Role, h handler) httprouter.Handle {
	return a.authed(func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		if _, err := a.projectAccess(r, ps.ByName("project"), need); err != nil {
			return err
		}
		return h(w, r, ps)
	})
}

// projectOf returns the project a resource of an id route belongs to,
// checking the caller's role in it; a missing resource, or its project,
// and one the caller cannot see are the same 404.
func (a *API) projectOf(r *http.Request, projectID string, need Role) (*store.Project, error) {
	p, err := a.cfg.Store.Project(r.Context(), projectID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(r)
	}
	if err != nil {
		return nil, fmt.Errorf("project of %s: %w", r.URL.Path, err)
	}
	if err := a.requireProjectRole(r, p, need); err != nil {
		return nil, err
	}
	return p, nil
}
