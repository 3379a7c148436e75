package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// Route is one route of the API: a method and a path pattern in
// httprouter's form (/api/v1/projects/:project).
type Route struct {
	Method string
	Path   string
}

// OpenAPIPath returns the route's path in OpenAPI's form
// (/api/v1/projects/{project}).
func (r Route) OpenAPIPath() string {
	segs := strings.Split(r.Path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// routeTable is an httprouter.Router that remembers what is registered on
// it, so that tests can walk every route (access rules, the OpenAPI
// document) and a route added anywhere cannot be forgotten by them.
type routeTable struct {
	*httprouter.Router
	routes []Route
}

func newRouteTable() *routeTable { return &routeTable{Router: httprouter.New()} }

// Handle registers h for method and path.
func (t *routeTable) Handle(method, path string, h httprouter.Handle) {
	t.routes = append(t.routes, Route{Method: method, Path: path})
	t.Router.Handle(method, path, h)
}

// GET, POST, PUT, PATCH and DELETE register through Handle.
func (t *routeTable) GET(path string, h httprouter.Handle)  { t.Handle(http.MethodGet, path, h) }
func (t *routeTable) POST(path string, h httprouter.Handle) { t.Handle(http.MethodPost, path, h) }
func (t *routeTable) PUT(path string, h httprouter.Handle)  { t.Handle(http.MethodPut, path, h) }
func (t *routeTable) PATCH(path string, h httprouter.Handle) {
	t.Handle(http.MethodPatch, path, h)
}
func (t *routeTable) DELETE(path string, h httprouter.Handle) {
	t.Handle(http.MethodDelete, path, h)
}

// Routes returns every route of the API, by path then method.
func (a *API) Routes() []Route {
	rs := slices.Clone(a.router.routes)
	slices.SortFunc(rs, func(x, y Route) int {
		if c := strings.Compare(x.Path, y.Path); c != 0 {
			return c
		}
		return strings.Compare(x.Method, y.Method)
	})
	return rs
}
