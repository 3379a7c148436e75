package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host"
	"github.com/mesher-dev/mesher/host/api"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/embedded"
	"github.com/mesher-dev/mesher/host/store/postgres"
	"github.com/mesher-dev/mesher/host/store/storetest"
	"github.com/mesher-dev/mesher/host/stream"
	"github.com/mesher-dev/mesher/host/wasm"
	"github.com/mesher-dev/mesher/internal/fixture"
	"github.com/mesher-dev/mesher/internal/pgtest"
)

// appNode is an in-process node behind an httptest server.
type appNode struct {
	t     testing.TB
	URL   string
	Store store.Store
	Node  *host.Node
}

// newAppNode starts a node on a fresh store of kind ("embedded" or
// "postgres"); cfg's Store, Runtime, Streams and AdminTokenHash are set
// here.
func newAppNode(t testing.TB, kind string, cfg host.Config) *appNode {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	switch kind {
	case "postgres":
		pg, err := postgres.Open(ctx, postgres.Config{URL: pgtest.URL(t), Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		st = pg
	default:
		e, err := embedded.Open(ctx, embedded.Config{Dir: t.TempDir(), Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		st = e
	}
	rt, err := wasm.New(ctx, wasm.Config{CacheDir: fixture.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := stream.New(stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeName, cfg.Store, cfg.Runtime, cfg.Streams = "test", st, rt, host.NewStreams(hub, nil)
	cfg.AdminTokenHash = api.HashToken(adminToken)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := host.New(cfg)
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
		rt.Close(context.Background())
		st.Close()
	})
	return &appNode{t: t, URL: srv.URL, Store: st, Node: n}
}

// forEachStore runs fn on both stores.
func forEachStore(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// reply is an HTTP answer.
type reply struct {
	Status int
	Body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// errorText returns the message of a JSON error answer.
func (r reply) errorText() string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error
}

// decode decodes the body into v.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// do sends a request with token (none if empty); body is nil, a string or
// a value to encode.
func (n *appNode) do(method, path, token string, body any) reply {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Body: b}
}

// must sends a request and fails unless the answer has status want.
func (n *appNode) must(want int, method, path, token string, body any) reply {
	n.t.Helper()
	r := n.do(method, path, token, body)
	if r.Status != want {
		n.t.Fatalf("%s %s: got %s, want status %d", method, path, r, want)
	}
	return r
}

// world is what one access check acts on: an organisation with a member
// of each role (and a spare one), a project with a key, an event and its
// issue, an alert rule that fired, and a token of the spare member.
type world struct {
	org, project, projectID      string
	key, keyID                   string
	tokens                       map[string]string // role → token
	spareMember, spareToken      string
	eventID                      string
	issueID                      int64
	ruleID, alertID, processorID string
}

var worldSeq int

// newWorld builds a world directly in the store (fast, and independent of
// the routes under test).
func newWorld(t *testing.T, n *appNode) *world {
	t.Helper()
	ctx := context.Background()
	st := n.Store
	worldSeq++
	w := &world{org: fmt.Sprintf("org-%d", worldSeq), project: fmt.Sprintf("proj-%d", worldSeq), tokens: map[string]string{}}
	o := &store.Org{ID: storetest.NewID(), Slug: w.org, Name: w.org}
	noErr(t, st.CreateOrg(ctx, o))
	p := &store.Project{ID: storetest.NewID(), Slug: w.project, Name: w.project, OrgID: o.ID}
	noErr(t, st.CreateProject(ctx, p))
	w.projectID = p.ID
	key, hash := api.NewKey()
	k := &store.APIKey{ID: storetest.NewID(), ProjectID: p.ID, Prefix: key[:12], Hash: hash}
	noErr(t, st.CreateAPIKey(ctx, k))
	w.key, w.keyID = key, k.ID
	member := func(role string) (string, string) {
		m := &store.Member{ID: storetest.NewID(), OrgID: o.ID, Name: role, Email: role + "@example.com", Role: role}
		noErr(t, st.CreateMember(ctx, m))
		tok, hash := api.NewToken()
		tk := &store.MemberToken{ID: storetest.NewID(), MemberID: m.ID, Prefix: tok[:12], Hash: hash}
		noErr(t, st.CreateMemberToken(ctx, tk))
		return tok, tk.ID
	}
	for _, role := range []string{store.RoleOwner, store.RoleAdmin, store.RoleMember, store.RoleViewer} {
		w.tokens[role], _ = member(role)
	}
	spare := &store.Member{ID: storetest.NewID(), OrgID: o.ID, Name: "spare", Email: "spare@example.com", Role: store.RoleViewer}
	noErr(t, st.CreateMember(ctx, spare))
	w.spareMember = spare.ID
	tok, hash := api.NewToken()
	tk := &store.MemberToken{ID: storetest.NewID(), MemberID: spare.ID, Prefix: tok[:12], Hash: hash}
	noErr(t, st.CreateMemberToken(ctx, tk))
	w.spareToken = tk.ID

	ev := &store.Event{ID: storetest.NewID(), ProjectID: p.ID, Fingerprint: "fp", Title: "boom", Level: "error",
		Message: "boom", Timestamp: time.Now(), Body: json.RawMessage(`{"message":"boom"}`)}
	res, err := st.Commit(ctx, []*store.Event{ev})
	noErr(t, err)
	w.eventID, w.issueID = ev.ID, res[0].IssueID
	rule := &store.AlertRule{ID: storetest.NewID(), ProjectID: p.ID, Name: "r", Enabled: true,
		Condition: store.AlertCondition{Type: store.ConditionNewIssue}, Actions: store.AlertActions{Stream: true}}
	noErr(t, st.CreateAlertRule(ctx, rule))
	al := &store.Alert{ID: storetest.NewID(), RuleID: rule.ID, Title: "t"}
	ok, err := st.FireAlert(ctx, al)
	if err != nil || !ok {
		t.Fatalf("FireAlert: %v %v", ok, err)
	}
	w.ruleID, w.alertID = rule.ID, al.ID
	noErr(t, st.PutModule(ctx, &store.Module{Name: "walk", SHA256: strings.Repeat("ab", 32), Size: 4, Manifest: json.RawMessage(`{}`), Wasm: []byte("wasm")}))
	return w
}

// as rewrites what names w's resources in b as naming v's.
func (w *world) as(v *world, b []byte) string {
	s := string(b)
	for _, p := range [][2]string{{w.org, v.org}, {w.project, v.project}, {w.keyID, v.keyID}, {w.ruleID, v.ruleID},
		{w.alertID, v.alertID}, {fmt.Sprint(w.issueID), fmt.Sprint(v.issueID)}, {w.spareToken, v.spareToken},
		{w.spareMember, v.spareMember}, {w.eventID, v.eventID}} {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return s
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// path fills a route's parameters with the world's resources.
func (w *world) path(route string) string {
	segs := strings.Split(route, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, ":") {
			continue
		}
		prev := segs[i-1]
		switch s {
		case ":project":
			segs[i] = w.project
		case ":org":
			segs[i] = w.org
		case ":name":
			segs[i] = "walk"
		case ":id":
			segs[i] = map[string]string{
				"api-keys":    w.keyID,
				"alert-rules": w.ruleID,
				"alerts":      w.alertID,
				"issues":      fmt.Sprint(w.issueID),
				"tokens":      w.spareToken,
				"members":     w.spareMember,
				"events":      w.eventID,
			}[prev]
			if segs[i] == "" {
				panic("no fixture for " + route)
			}
		default:
			panic("unknown parameter " + s + " in " + route)
		}
	}
	return strings.Join(segs, "/")
}

// Access kinds of routes.
type accessKind int

const (
	public     accessKind = iota // anyone: health, metrics, the OpenAPI document
	ingestion                    // project keys only
	scoped                       // a role in the organisation of the route's project or :org
	anyone                       // any member of any organisation, or the admin token
	nodeAdmin                    // the admin token, or admin+ of the default organisation
	streamKind                   // project key, admin token, or viewer+ in the project's organisation
)

type accessRule struct {
	kind accessKind
	need api.Role // for scoped
}

func need(r api.Role) accessRule { return accessRule{kind: scoped, need: r} }

// routeAccess is who may call each route. A route of the router missing
// here fails TestRouteAccess: a new route cannot be added without saying.
var routeAccess = map[string]accessRule{
	"GET /healthz":             {kind: public},
	"GET /metrics":             {kind: public},
	"GET /api/v1/openapi.yaml": {kind: public},
	"POST /api/v1/events":      {kind: ingestion},
	"POST /api/v1/events/bulk": {kind: ingestion},

	"POST /api/v1/projects":                              need(api.RoleAdmin), // in the member's own organisation
	"GET /api/v1/projects":                               {kind: anyone},
	"GET /api/v1/projects/:project":                      need(api.RoleViewer),
	"POST /api/v1/projects/:project/api-keys":            need(api.RoleAdmin),
	"GET /api/v1/projects/:project/api-keys":             need(api.RoleAdmin),
	"POST /api/v1/api-keys/:id/revoke":                   need(api.RoleAdmin),
	"PUT /api/v1/processors/:name":                       {kind: nodeAdmin},
	"GET /api/v1/processors":                             {kind: anyone},
	"GET /api/v1/processors/:name":                       {kind: anyone},
	"DELETE /api/v1/processors/:name":                    {kind: nodeAdmin},
	"PUT /api/v1/projects/:project/pipeline":             need(api.RoleAdmin),
	"GET /api/v1/projects/:project/pipeline":             need(api.RoleViewer),
	"GET /api/v1/projects/:project/events/:id":           need(api.RoleViewer),
	"GET /api/v1/projects/:project/events":               need(api.RoleViewer),
	"GET /api/v1/cluster":                                {kind: nodeAdmin},
	"GET /api/v1/projects/:project/stream":               {kind: streamKind},
	"GET /api/v1/projects/:project/settings":             need(api.RoleViewer),
	"PUT /api/v1/projects/:project/settings":             need(api.RoleAdmin),
	"GET /api/v1/projects/:project/storage":              need(api.RoleViewer),
	"GET /api/v1/projects/:project/alert-rules":          need(api.RoleViewer),
	"POST /api/v1/projects/:project/alert-rules":         need(api.RoleAdmin),
	"POST /api/v1/alert-rules/:id/toggle":                need(api.RoleAdmin),
	"POST /api/v1/alert-rules/:id/delete":                need(api.RoleAdmin),
	"GET /api/v1/alert-rules/:id/deliveries":             need(api.RoleViewer),
	"GET /api/v1/projects/:project/alerts":               need(api.RoleViewer),
	"POST /api/v1/alerts/:id/acknowledge":                need(api.RoleMember),
	"POST /api/v1/alerts/:id/resolve":                    need(api.RoleMember),
	"GET /api/v1/me":                                     {kind: anyone},
	"GET /api/v1/orgs":                                   {kind: anyone},
	"POST /api/v1/orgs":                                  {kind: nodeAdmin},
	"GET /api/v1/orgs/:org":                              need(api.RoleViewer),
	"GET /api/v1/orgs/:org/members":                      need(api.RoleViewer),
	"POST /api/v1/orgs/:org/members":                     need(api.RoleOwner),
	"POST /api/v1/orgs/:org/members/:id/role":            need(api.RoleOwner),
	"POST /api/v1/orgs/:org/members/:id/remove":          need(api.RoleOwner),
	"POST /api/v1/orgs/:org/members/:id/tokens":          need(api.RoleOwner), // or the member itself
	"GET /api/v1/orgs/:org/members/:id/tokens":           need(api.RoleOwner), // or the member itself
	"POST /api/v1/tokens/:id/revoke":                     need(api.RoleOwner), // or the token's member
	"GET /api/v1/projects/:project/issues":               need(api.RoleViewer),
	"GET /api/v1/issues/:id":                             need(api.RoleViewer),
	"POST /api/v1/issues/:id/resolve":                    need(api.RoleMember),
	"POST /api/v1/issues/:id/unresolve":                  need(api.RoleMember),
	"POST /api/v1/issues/:id/archive":                    need(api.RoleMember),
	"POST /api/v1/issues/:id/discard":                    need(api.RoleMember),
	"POST /api/v1/issues/:id/delete":                     need(api.RoleMember),
	"POST /api/v1/issues/:id/assign":                     need(api.RoleMember),
	"GET /api/v1/issues/:id/events":                      need(api.RoleViewer),
	"GET /api/v1/issues/:id/timeline":                    need(api.RoleViewer),
	"GET /api/v1/projects/:project/dashboard/volume":     need(api.RoleViewer),
	"GET /api/v1/projects/:project/dashboard/levels":     need(api.RoleViewer),
	"GET /api/v1/projects/:project/dashboard/top-issues": need(api.RoleViewer),
	"GET /api/v1/projects/:project/dashboard/tags":       need(api.RoleViewer),
	"GET /api/v1/projects/:project/dashboard/health":     need(api.RoleViewer),
}

// actor is a caller of the walk: a name and how to get its token in a
// world.
type actor struct {
	name  string
	token func(w *world) string
	role  api.Role // its role in the world's organisation
	// defaultAdmin: an admin of the default organisation; outsider: a
	// member of another organisation; key: the world's project key.
	defaultAdmin, outsider, key, admin bool
}

// TestRouteAccess walks every route of the router with every kind of
// caller — none, a bad token, the project's key, a viewer, member, admin
// and owner of the project's organisation, an owner of another
// organisation, an admin of the default organisation, and the admin token
// — and checks each is let in or kept out as routeAccess says: 401
// without valid credentials, 404 without any role where the route names
// a project or organisation (no existence leak), 403 with too low a role.
// A call that is let in must not answer 401, 403 or 404; each one runs on
// a world of its own, since it may change or delete what it names.
func TestRouteAccess(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		n := newAppNode(t, kind, host.Config{})
		ctx := context.Background()
		other := &store.Org{ID: storetest.NewID(), Slug: "other", Name: "Other"}
		noErr(t, n.Store.CreateOrg(ctx, other))
		mkToken := func(orgID, role string) string {
			m := &store.Member{ID: storetest.NewID(), OrgID: orgID, Name: role, Email: role + "-" + orgID[:4] + "@example.com", Role: role}
			noErr(t, n.Store.CreateMember(ctx, m))
			tok, hash := api.NewToken()
			noErr(t, n.Store.CreateMemberToken(ctx, &store.MemberToken{ID: storetest.NewID(), MemberID: m.ID, Prefix: tok[:12], Hash: hash}))
			return tok
		}
		outsiderTok := mkToken(other.ID, store.RoleOwner)
		opsTok := mkToken(store.DefaultOrgID, store.RoleAdmin)

		actors := []actor{
			{name: "anonymous", token: func(*world) string { return "" }},
			{name: "bad token", token: func(*world) string { return api.TokenPrefix + "0000" }},
			{name: "project key", token: func(w *world) string { return w.key }, key: true},
			{name: "viewer", token: func(w *world) string { return w.tokens[store.RoleViewer] }, role: api.RoleViewer},
			{name: "member", token: func(w *world) string { return w.tokens[store.RoleMember] }, role: api.RoleMember},
			{name: "admin", token: func(w *world) string { return w.tokens[store.RoleAdmin] }, role: api.RoleAdmin},
			{name: "owner", token: func(w *world) string { return w.tokens[store.RoleOwner] }, role: api.RoleOwner},
			{name: "outsider", token: func(*world) string { return outsiderTok }, outsider: true},
			{name: "default-org admin", token: func(*world) string { return opsTok }, defaultAdmin: true},
			{name: "admin token", token: func(*world) string { return adminToken }, role: api.RoleOwner, admin: true},
		}

		shared := newWorld(t, n) // for calls that are refused: they change nothing
		nowhere := &world{org: "no-such-org", project: "no-such-project", keyID: storetest.NewID(), ruleID: storetest.NewID(),
			alertID: storetest.NewID(), issueID: 987654321, spareToken: storetest.NewID(), spareMember: storetest.NewID(),
			eventID: storetest.NewID()}
		routes := n.Node.API.Routes()
		seen := map[string]bool{}
		for _, rt := range routes {
			key := rt.Method + " " + rt.Path
			seen[key] = true
			rule, ok := routeAccess[key]
			if !ok {
				t.Errorf("route %s has no entry in routeAccess: say who may call it", key)
				continue
			}
			if rule.kind == public || rule.kind == ingestion {
				continue
			}
			t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
				for _, ac := range actors {
					want := expect(rule, ac)
					w := shared
					if want == 0 {
						w = newWorld(t, n)
					}
					body := any(nil)
					if rt.Method != "GET" && rt.Method != "DELETE" {
						body = "{}"
					}
					if key == "POST /api/v1/projects" {
						// The organisation is named in the body; one the
						// caller cannot see is a bad field, as one that
						// does not exist.
						body = map[string]string{"name": "New", "org": w.org}
						if ac.outsider || ac.defaultAdmin {
							want = http.StatusBadRequest
						}
					}
					got := n.do(rt.Method, w.path(rt.Path), ac.token(w), body)
					switch {
					case want == 0 && (got.Status == 401 || got.Status == 403 || got.Status == 404):
						t.Errorf("%s: got %s, want it let in", ac.name, got)
					case want != 0 && got.Status != want:
						t.Errorf("%s: got %s, want %d", ac.name, got, want)
					case want == http.StatusNotFound:
						// The 404 of what the caller may not see reads as
						// the 404 of what does not exist.
						missing := n.do(rt.Method, nowhere.path(rt.Path), adminToken, body)
						if m := nowhere.as(w, missing.Body); m != string(got.Body) {
							t.Errorf("%s: got %s; a missing resource gets %d %s: the difference leaks existence", ac.name, got, missing.Status, m)
						}
					}
				}
			})
		}
		for key := range routeAccess {
			if !seen[key] {
				t.Errorf("routeAccess names %s, which the router does not have", key)
			}
		}
	})
}

// expect returns the status a caller gets on a route, 0 for let in.
func expect(rule accessRule, ac actor) int {
	switch {
	case ac.name == "anonymous" || ac.name == "bad token":
		return http.StatusUnauthorized
	case rule.kind == streamKind:
		if ac.key || ac.admin || ac.role >= api.RoleViewer {
			return 0
		}
		return http.StatusNotFound
	case ac.key:
		return http.StatusForbidden
	case rule.kind == anyone:
		return 0
	case rule.kind == nodeAdmin:
		if ac.admin || ac.defaultAdmin {
			return 0
		}
		return http.StatusForbidden
	case ac.outsider || ac.defaultAdmin:
		return http.StatusNotFound
	case ac.role < rule.need:
		return http.StatusForbidden
	}
	return 0
}
