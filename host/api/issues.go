package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/stream"
)

// IssueListener learns of every change made to an issue through the API,
// after it is stored: the node announces it on the project's live stream
// and applies a discard to ingestion at once. It must not block.
type IssueListener interface {
	IssueChanged(action string, is *store.Issue)
}

// Defaults and bounds of the application API's listings.
const (
	defaultPage      = 25
	maxQueryText     = 500
	maxMemberID      = 100
	maxTagFilters    = 10
	defaultTopLimit  = 10
	maxBuckets       = 5000
	defaultHourRange = 24 * time.Hour
	defaultDayRange  = 30 * 24 * time.Hour
)

// appRoutes registers issues, search, event timelines and dashboards.
// Every route checks the caller's role in the project with
// requireProjectRole: viewers read, members act on issues.
func (a *API) appRoutes(r *routeTable) {
	r.GET("/api/v1/projects/:project/issues", a.authed(a.listIssues))
	r.GET("/api/v1/issues/:id", a.authed(a.getIssue))
	for _, action := range []string{"resolve", "unresolve", "archive", "discard", "delete", "assign"} {
		r.POST("/api/v1/issues/:id/"+action, a.authed(a.issueAction(action)))
	}
	r.GET("/api/v1/issues/:id/events", a.authed(a.issueEvents))
	r.GET("/api/v1/issues/:id/timeline", a.authed(a.issueTimeline))
	r.GET("/api/v1/projects/:project/events", a.authed(a.searchEvents))
	r.GET("/api/v1/projects/:project/dashboard/volume", a.authed(a.dashboardVolume))
	r.GET("/api/v1/projects/:project/dashboard/levels", a.authed(a.dashboardLevels))
	r.GET("/api/v1/projects/:project/dashboard/top-issues", a.authed(a.dashboardTopIssues))
	r.GET("/api/v1/projects/:project/dashboard/tags", a.authed(a.dashboardTags))
	r.GET("/api/v1/projects/:project/dashboard/health", a.authed(a.dashboardHealth))
}

// projectFor resolves :project and checks the caller's role in it.
func (a *API) projectFor(r *http.Request, ps httprouter.Params, need Role) (*store.Project, error) {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return nil, err
	}
	if err := a.requireProjectRole(r, p, need); err != nil {
		return nil, err
	}
	return p, nil
}

// issueFor resolves :id to an issue and checks the caller's role in its
// project. An id that is not a number, an unknown issue and an issue the
// caller cannot see are the same 404.
func (a *API) issueFor(r *http.Request, ps httprouter.Params, need Role) (*store.Issue, *store.Project, error) {
	raw := ps.ByName("id")
	missing := errorf(http.StatusNotFound, "issue %q not found", raw)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, nil, missing
	}
	ctx := r.Context()
	is, err := a.cfg.Store.IssueByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, missing
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := a.cfg.Store.Project(ctx, is.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, missing
	}
	if err != nil {
		return nil, nil, err
	}
	if err := a.requireProjectRole(r, p, need); err != nil {
		return nil, nil, err
	}
	return is, p, nil
}

// issueCursor is the position of an issue in the list.
type issueCursor struct {
	LastSeen int64 `json:"t"` // Unix microseconds
	ID       int64 `json:"id"`
}

// listIssues is GET /api/v1/projects/:project/issues?status=&level=&
// assigned_to=&q=&limit=&cursor=: issues by last seen, latest first.
func (a *API) listIssues(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	q, err := parseQuery(r, []string{"status", "level", "assigned_to", "q", "limit", cursorParam}, nil)
	if err != nil {
		return err
	}
	iq := store.IssueQuery{ProjectID: p.ID}
	if iq.Status, err = q.oneOf("status", "", store.StatusUnresolved, store.StatusResolved, store.StatusArchived, store.StatusDiscarded); err != nil {
		return err
	}
	if iq.Level, err = q.oneOf("level", "", "debug", "info", "warning", "error", "fatal"); err != nil {
		return err
	}
	if iq.AssignedTo, err = q.text("assigned_to", maxMemberID); err != nil {
		return err
	}
	if iq.Text, err = q.text("q", maxQueryText); err != nil {
		return err
	}
	if iq.Limit, err = q.limit(defaultPage, store.MaxPage); err != nil {
		return err
	}
	var c issueCursor
	if ok, err := a.decodeCursor(q, "issues", p.ID, &c); err != nil {
		return err
	} else if ok {
		iq.After = &store.IssueCursor{LastSeen: time.UnixMicro(c.LastSeen).UTC(), ID: c.ID}
	}
	limit := iq.Limit
	iq.Limit++ // one more tells whether there is a next page
	issues, err := a.cfg.Store.ListIssues(r.Context(), iq)
	if err != nil {
		return err
	}
	var next *string
	if len(issues) > limit {
		issues = issues[:limit]
		last := issues[limit-1]
		s := a.encodeCursor("issues", p.ID, issueCursor{last.LastSeen.UnixMicro(), last.ID})
		next = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{"issues": nonNil(issues), "next_cursor": next})
	return nil
}

// getIssue is GET /api/v1/issues/:id.
func (a *API) getIssue(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	is, _, err := a.issueFor(r, ps, RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, is)
	return nil
}

// issueAction is POST /api/v1/issues/:id/{resolve,unresolve,archive,
// discard,delete,assign}. Each answers with the issue as it is afterwards
// (delete: 200 {"id","deleted":true}) and announces the change.
func (a *API) issueAction(action string) handler {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		if _, err := parseQuery(r, nil, nil); err != nil {
			return err
		}
		is, p, err := a.issueFor(r, ps, RoleMember)
		if err != nil {
			return err
		}
		var body struct {
			MemberID *string `json:"member_id"`
		}
		if action == "assign" {
			if r.ContentLength != 0 {
				if err := decode(w, r, &body); err != nil {
					return err
				}
			}
		} else if r.ContentLength > 0 {
			var none struct{}
			if err := decode(w, r, &none); err != nil {
				return err
			}
		}
		ctx := r.Context()
		var announce string
		switch action {
		case "resolve":
			err, announce = a.cfg.Store.SetIssueStatus(ctx, p.ID, is.ID, store.StatusResolved), stream.ActionResolved
		case "unresolve":
			err, announce = a.cfg.Store.SetIssueStatus(ctx, p.ID, is.ID, store.StatusUnresolved), stream.ActionUnresolved
		case "archive":
			err, announce = a.cfg.Store.SetIssueStatus(ctx, p.ID, is.ID, store.StatusArchived), stream.ActionArchived
		case "discard":
			err, announce = a.cfg.Store.DiscardIssue(ctx, p.ID, is.ID, a.cfg.Now().UTC()), stream.ActionDiscarded
		case "delete":
			err, announce = a.cfg.Store.DeleteIssue(ctx, p.ID, is.ID), stream.ActionDeleted
		case "assign":
			member := ""
			if body.MemberID != nil {
				member = *body.MemberID
			}
			if !utf8.ValidString(member) || utf8.RuneCountInString(member) > maxMemberID {
				return errorf(http.StatusBadRequest, `field "member_id" must be a member id of at most %d characters, or "" to unassign`, maxMemberID)
			}
			announce = stream.ActionAssigned
			if member == "" {
				announce = stream.ActionUnassigned
			} else if m, merr := a.cfg.Store.Member(ctx, member); errors.Is(merr, store.ErrNotFound) || (merr == nil && m.OrgID != p.OrgID) {
				return errorf(http.StatusBadRequest, `field "member_id": no member %q in the project's organisation`, member)
			} else if merr != nil {
				return merr
			}
			err = a.cfg.Store.AssignIssue(ctx, p.ID, is.ID, member)
		}
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "issue %q not found", ps.ByName("id"))
		}
		if err != nil {
			return err
		}
		if action == "delete" {
			a.issueChanged(announce, is)
			writeJSON(w, http.StatusOK, map[string]any{"id": is.ID, "deleted": true})
			return nil
		}
		after, err := a.cfg.Store.Issue(ctx, p.ID, is.ID)
		if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
			return errorf(http.StatusNotFound, "issue %q not found", ps.ByName("id"))
		}
		if err != nil {
			return err
		}
		a.issueChanged(announce, after)
		writeJSON(w, http.StatusOK, after)
		return nil
	}
}

func (a *API) issueChanged(action string, is *store.Issue) {
	if a.cfg.Issues != nil {
		a.cfg.Issues.IssueChanged(action, is)
	}
}
