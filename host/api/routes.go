package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// routes registers every route. Static segments never sit beside a
// parameter at the same place (httprouter 1.3 refuses that), which is why
// event search is a query of the events list, not /events/search.
func (a *API) routes() *httprouter.Router {
	r := httprouter.New()
	admin := func(h handler) httprouter.Handle {
		return a.wrap(func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
			if err := a.requireAdmin(r); err != nil {
				return err
			}
			return h(w, r, ps)
		})
	}
	open := a.wrap

	r.GET("/healthz", open(a.health))
	r.GET("/metrics", open(a.metrics))

	// Ingestion (project key).
	r.POST("/api/v1/events", open(a.postEvent))
	r.POST("/api/v1/events/bulk", open(a.postBulk))

	// Management (admin token).
	r.POST("/api/v1/projects", admin(a.createProject))
	r.GET("/api/v1/projects", admin(a.listProjects))
	r.GET("/api/v1/projects/:project", admin(a.getProject))
	r.POST("/api/v1/projects/:project/api-keys", admin(a.createKey))
	r.GET("/api/v1/projects/:project/api-keys", admin(a.listKeys))
	r.POST("/api/v1/api-keys/:id/revoke", admin(a.revokeKey))
	r.PUT("/api/v1/processors/:name", admin(a.putProcessor))
	r.GET("/api/v1/processors", admin(a.listProcessors))
	r.GET("/api/v1/processors/:name", admin(a.getProcessor))
	r.DELETE("/api/v1/processors/:name", admin(a.deleteProcessor))
	r.PUT("/api/v1/projects/:project/pipeline", admin(a.putPipeline))
	r.GET("/api/v1/projects/:project/pipeline", admin(a.getPipeline))
	r.GET("/api/v1/projects/:project/events/:id", admin(a.getEvent))
	r.GET("/api/v1/cluster", admin(a.cluster))

	// Live stream (project key or admin token, header or ?key=).
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
