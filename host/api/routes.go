package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// routes registers every route. Static segments never sit beside a
// parameter at the same place (httprouter 1.3 refuses that), which is why
// event search is a query of the events list, not /events/search.
//
// Every management route is wrapped by authed, which answers 401 before
// anything else, and checks a role: onProject for routes on
// /projects/:project/…, the handler itself for the others (see access.go
// and the README's table of who may call what).
func (a *API) routes() *routeTable {
	r := newRouteTable()
	authed := a.authed
	open := a.wrap
	viewer := func(h handler) httprouter.Handle { return a.onProject(RoleViewer, h) }
	admin := func(h handler) httprouter.Handle { return a.onProject(RoleAdmin, h) }
	anyMember := func(h handler) httprouter.Handle {
		return authed(func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
			if _, err := a.requireMember(r); err != nil {
				return err
			}
			return h(w, r, ps)
		})
	}
	nodeAdmin := func(h handler) httprouter.Handle {
		return authed(func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
			if _, err := a.requireNodeAdmin(r); err != nil {
				return err
			}
			return h(w, r, ps)
		})
	}

	r.GET("/healthz", open(a.health))
	r.GET("/metrics", open(a.metrics))

	// Ingestion (project key).
	r.POST("/api/v1/events", open(a.postEvent))
	r.POST("/api/v1/events/bulk", open(a.postBulk))

	r.GET("/api/v1/openapi.yaml", open(a.openAPI))

	// Management (admin token or member token; roles in access.go).
	r.POST("/api/v1/projects", authed(a.createProject)) // admin of the organisation
	r.GET("/api/v1/projects", anyMember(a.listProjects))
	r.GET("/api/v1/projects/:project", viewer(a.getProject))
	r.POST("/api/v1/projects/:project/api-keys", admin(a.createKey))
	r.GET("/api/v1/projects/:project/api-keys", admin(a.listKeys))
	r.POST("/api/v1/api-keys/:id/revoke", authed(a.revokeKey)) // admin of the key's project
	r.PUT("/api/v1/processors/:name", nodeAdmin(a.putProcessor))
	r.GET("/api/v1/processors", anyMember(a.listProcessors))
	r.GET("/api/v1/processors/:name", anyMember(a.getProcessor))
	r.DELETE("/api/v1/processors/:name", nodeAdmin(a.deleteProcessor))
	r.PUT("/api/v1/projects/:project/pipeline", admin(a.putPipeline))
	r.GET("/api/v1/projects/:project/pipeline", viewer(a.getPipeline))
	r.GET("/api/v1/projects/:project/events/:id", viewer(a.getEvent))
	r.GET("/api/v1/cluster", nodeAdmin(a.cluster))

	// Settings and storage.
	r.GET("/api/v1/projects/:project/settings", authed(a.getSettings)) // viewer
	r.PUT("/api/v1/projects/:project/settings", authed(a.putSettings)) // admin
	r.GET("/api/v1/projects/:project/storage", authed(a.getStorage))   // viewer

	// Alerts.
	r.GET("/api/v1/projects/:project/alert-rules", authed(a.listRules))   // viewer
	r.POST("/api/v1/projects/:project/alert-rules", authed(a.createRule)) // admin
	r.POST("/api/v1/alert-rules/:id/toggle", authed(a.toggleRule))        // admin
	r.POST("/api/v1/alert-rules/:id/delete", authed(a.deleteRule))        // admin
	r.GET("/api/v1/alert-rules/:id/deliveries", authed(a.listDeliveries)) // viewer
	r.GET("/api/v1/projects/:project/alerts", authed(a.listAlerts))       // viewer
	r.POST("/api/v1/alerts/:id/acknowledge", authed(a.acknowledgeAlert))  // member
	r.POST("/api/v1/alerts/:id/resolve", authed(a.resolveAlert))          // member

	// Organisations, members and tokens.
	r.GET("/api/v1/me", anyMember(a.me))
	r.GET("/api/v1/orgs", anyMember(a.listOrgs))
	r.POST("/api/v1/orgs", nodeAdmin(a.createOrg))
	r.GET("/api/v1/orgs/:org", authed(a.getOrg))                           // viewer
	r.GET("/api/v1/orgs/:org/members", authed(a.listMembers))              // viewer
	r.POST("/api/v1/orgs/:org/members", authed(a.addMember))               // owner
	r.POST("/api/v1/orgs/:org/members/:id/role", authed(a.setMemberRole))  // owner
	r.POST("/api/v1/orgs/:org/members/:id/remove", authed(a.removeMember)) // owner
	r.POST("/api/v1/orgs/:org/members/:id/tokens", authed(a.createToken))  // owner, or the member itself
	r.GET("/api/v1/orgs/:org/members/:id/tokens", authed(a.listTokens))    // owner, or the member itself
	r.POST("/api/v1/tokens/:id/revoke", authed(a.revokeToken))             // owner, or the token's member

	// Issues, search, timelines and dashboards (issues.go).
	a.appRoutes(r)

	// Live stream (project key, admin token or member token, header or ?key=).
	r.GET("/api/v1/projects/:project/stream", open(a.stream))

	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a.fail(w, req, errorf(http.StatusNotFound, "no route %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a.fail(w, req, errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s", req.Method, req.URL.Path))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		a.log.Error("handler panicked", "method", req.Method, "path", req.URL.Path, "panic", v)
		a.fail(w, req, errorf(http.StatusInternalServerError, "internal error"))
	}
	return r
}
