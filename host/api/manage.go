package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/abi"
	"github.com/mesher-dev/mesher/host/ingest"
	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/wasm"
)

// decode reads a JSON body into v, refusing unknown fields and trailing
// data, and names the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r, 1<<20)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return errorf(http.StatusBadRequest, "field %q must be %s, got %s", te.Field, jsonType(te.Type.String()), te.Value)
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "body must be a JSON object, got %s", te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errorf(http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return syntaxError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

var (
	slugRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,49}$`)
	uuidShapeRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	notSlugRE   = regexp.MustCompile(`[^a-z0-9]+`)
)

// slugify derives a slug from a project name.
func slugify(name string) string {
	s := strings.Trim(notSlugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 50 {
		s = strings.TrimRight(s[:50], "-")
	}
	return s
}

// project resolves :project (an id or a slug).
func (a *API) project(ctx context.Context, idOrSlug string) (*store.Project, error) {
	p, err := a.cfg.Store.Project(ctx, idOrSlug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "project %q not found", idOrSlug)
	}
	return p, err
}

type createProject struct {
	Name string `json:"name"`
	Slug string `json:"slug"`
	Org  string `json:"org"` // id or slug; default: a member's own organisation, else the default one
}

// createProject needs the admin role in the project's organisation.
func (a *API) createProject(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req createProject
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := a.requireMember(r)
	if err != nil {
		return err
	}
	orgID := store.DefaultOrgID
	switch {
	case req.Org != "":
		o, err := a.cfg.Store.Org(r.Context(), req.Org)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusBadRequest, `field "org": organisation %q not found`, req.Org)
		}
		if err != nil {
			return err
		}
		if c.roleIn(o.ID) == RoleNone {
			return errorf(http.StatusBadRequest, `field "org": organisation %q not found`, req.Org)
		}
		orgID = o.ID
	case c.member != nil:
		orgID = c.member.OrgID
	}
	if err := a.requireOrgRole(r, orgID, RoleAdmin); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return errorf(http.StatusBadRequest, `field "name" must be 1 to 100 characters`)
	}
	if req.Slug == "" {
		req.Slug = slugify(req.Name)
	}
	if !slugRE.MatchString(req.Slug) || uuidShapeRE.MatchString(req.Slug) {
		return errorf(http.StatusBadRequest, `field "slug" must be 1 to 50 lower-case letters, digits and '-', starting with a letter or digit, got %q`, req.Slug)
	}
	p := &store.Project{ID: ingest.NewUUID(), Slug: req.Slug, Name: req.Name, OrgID: orgID, CreatedAt: a.cfg.Now().UTC()}
	if err := a.cfg.Store.CreateProject(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "slug %q is taken", req.Slug)
		}
		return err
	}
	key, err := a.newKey(r.Context(), p.ID, "default")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": p.ID, "slug": p.Slug, "name": p.Name, "org_id": p.OrgID, "api_key": key.Key, "created_at": p.CreatedAt})
	return nil
}

// listProjects lists the projects the caller may see: all of them for the
// admin token, its organisation's for a member.
func (a *API) listProjects(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	c, err := a.requireMember(r)
	if err != nil {
		return err
	}
	ps, err := a.cfg.Store.ListProjects(r.Context())
	if err != nil {
		return err
	}
	ps = slices.DeleteFunc(ps, func(p *store.Project) bool { return c.roleIn(p.OrgID) == RoleNone })
	writeJSON(w, http.StatusOK, map[string]any{"projects": nonNil(ps)})
	return nil
}

func (a *API) getProject(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type newKeyResponse struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Prefix    string    `json:"prefix"`
	Name      string    `json:"name,omitempty"`
	ProjectID string    `json:"project_id"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) newKey(ctx context.Context, projectID, name string) (*newKeyResponse, error) {
	key, hash := NewKey()
	k := &store.APIKey{ID: ingest.NewUUID(), ProjectID: projectID, Name: name, Prefix: key[:len(KeyPrefix)+8], Hash: hash, CreatedAt: a.cfg.Now().UTC()}
	if err := a.cfg.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, err
	}
	return &newKeyResponse{ID: k.ID, Key: key, Prefix: k.Prefix, Name: k.Name, ProjectID: projectID, CreatedAt: k.CreatedAt}, nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
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
	k, err := a.newKey(r.Context(), p.ID, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, k)
	return nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return err
	}
	keys, err := a.cfg.Store.ListAPIKeys(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": nonNil(keys)})
	return nil
}

// revokeKey needs the admin role in the key's project.
func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := a.cfg.Store.APIKey(r.Context(), ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound(r)
	}
	if err != nil {
		return err
	}
	if _, err := a.projectOf(r, k.ProjectID, RoleAdmin); err != nil {
		return err
	}
	at := a.cfg.Now().UTC()
	if err := a.cfg.Store.RevokeAPIKey(r.Context(), k.ID, at); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(r)
		}
		return err
	}
	a.keys.forget()
	writeJSON(w, http.StatusOK, map[string]any{"id": ps.ByName("id"), "revoked_at": at})
	return nil
}

// Processors.

type processorView struct {
	Name      string          `json:"name"`
	Version   string          `json:"version"`
	SHA256    string          `json:"sha256"`
	Size      int             `json:"size"`
	Manifest  json.RawMessage `json:"manifest"`
	CreatedAt time.Time       `json:"created_at"`
	// State is the health of the current version on this node: healthy,
	// probation, quarantined, or idle when this node has not run it.
	State  string       `json:"state"`
	Status *wasm.Status `json:"status,omitempty"`
}

func (a *API) view(m *store.Module) processorView {
	v := processorView{Name: m.Name, SHA256: m.SHA256, Size: m.Size, Manifest: m.Manifest, CreatedAt: m.CreatedAt, State: "idle"}
	var man abi.Manifest
	if json.Unmarshal(m.Manifest, &man) == nil {
		v.Version = man.Version
	}
	for _, s := range a.cfg.Processors.Statuses() {
		if s.Name == m.Name && s.SHA256 == m.SHA256 {
			st := s.Status
			v.State, v.Status = string(st.State), &st
		}
	}
	return v
}

func (a *API) putProcessor(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	name := ps.ByName("name")
	if !abi.ValidName(name) {
		return errorf(http.StatusBadRequest, "processor name %q must be 1 to 63 lower-case letters, digits, '-' and '_'", name)
	}
	bin, err := readBody(w, r, wasm.MaxModuleSize)
	if err != nil {
		return err
	}
	if len(bin) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty: send the processor's .wasm bytes")
	}
	mod, err := a.cfg.Processors.Validate(r.Context(), bin)
	if err != nil {
		var ve *wasm.ValidationError
		if errors.As(err, &ve) {
			return errorf(http.StatusBadRequest, "invalid processor module (%s): %v", ve.Kind, ve)
		}
		return err
	}
	manifest, err := json.Marshal(mod.Manifest)
	if err != nil {
		return err
	}
	m := &store.Module{Name: name, SHA256: mod.SHA256, Size: len(bin), Manifest: manifest, CreatedAt: a.cfg.Now().UTC(), Wasm: bin}
	if err := a.cfg.Store.PutModule(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.view(m))
	return nil
}

func (a *API) listProcessors(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	mods, err := a.cfg.Store.ListModules(r.Context())
	if err != nil {
		return err
	}
	out := make([]processorView, 0, len(mods))
	for _, m := range mods {
		out = append(out, a.view(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"processors": out})
	return nil
}

func (a *API) getProcessor(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	m, err := a.cfg.Store.Module(r.Context(), ps.ByName("name"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "processor %q not found", ps.ByName("name"))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.view(m))
	return nil
}

func (a *API) deleteProcessor(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	name := ps.ByName("name")
	err := a.cfg.Store.DeleteModule(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "processor %q not found", name)
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, "processor %q is used by a pipeline; remove it from every pipeline first", name)
	case err != nil:
		return err
	}
	a.cfg.Processors.Forget(r.Context(), name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Pipelines.

type pipelineRequest struct {
	Processors []store.Step `json:"processors"`
}

// MaxSteps bounds a pipeline's length.
const MaxSteps = 32

func (a *API) putPipeline(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return err
	}
	var req pipelineRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Processors == nil {
		return errorf(http.StatusBadRequest, `field "processors" is required (an empty array clears the pipeline)`)
	}
	if len(req.Processors) > MaxSteps {
		return errorf(http.StatusBadRequest, `field "processors" has %d steps; at most %d`, len(req.Processors), MaxSteps)
	}
	for i, st := range req.Processors {
		if !abi.ValidName(st.Processor) {
			return errorf(http.StatusBadRequest, "processors[%d]: field \"name\" must name a processor, got %q", i, st.Processor)
		}
	}
	sp := &store.Pipeline{ProjectID: p.ID, Steps: req.Processors, UpdatedAt: a.cfg.Now().UTC()}
	pl, shas, err := a.cfg.Processors.Build(r.Context(), sp)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return err
		}
		return errorf(http.StatusBadRequest, "pipeline: %v", err)
	}
	if err := a.cfg.Store.PutPipeline(r.Context(), sp); err != nil {
		return err
	}
	a.cfg.Processors.Install(p.ID, sp.Revision, pl, shas)
	writeJSON(w, http.StatusOK, sp)
	return nil
}

func (a *API) getPipeline(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return err
	}
	sp, err := a.cfg.Store.Pipeline(r.Context(), p.ID)
	if err != nil {
		return err
	}
	sp.Steps = nonNil(sp.Steps)
	writeJSON(w, http.StatusOK, sp)
	return nil
}

// Events.

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.project(r.Context(), ps.ByName("project"))
	if err != nil {
		return err
	}
	ev, err := a.cfg.Store.Event(r.Context(), p.ID, ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "event %q not found in project %s", ps.ByName("id"), p.Slug)
	}
	if err != nil {
		return err
	}
	return a.writeEventDetail(w, r, ev) // with prev_id and next_id (search.go)
}

// Streams.

// stream serves a project's live stream to its project keys, the admin
// token, and members with the viewer role in its organisation. Any other
// caller gets the 404 of a project that does not exist.
func (a *API) stream(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	ctx := r.Context()
	cred := credential(r, true)
	if cred == "" {
		return errorf(http.StatusUnauthorized, "missing credentials: send a project key, a member token or the admin token as Authorization: Bearer, X-Mesher-Key or ?key=")
	}
	var c *caller
	var kp *store.Project
	var err error
	switch {
	case a.isAdmin(cred):
	case strings.HasPrefix(cred, TokenPrefix):
		c, err = a.callerFor(ctx, cred)
	default:
		kp, err = a.projectForKey(ctx, cred)
	}
	if err != nil {
		return err
	}
	hidden := errorf(http.StatusNotFound, "project %q not found", ps.ByName("project"))
	p, err := a.cfg.Store.Project(ctx, ps.ByName("project"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return hidden
	case err != nil:
		return err
	case kp != nil && kp.ID != p.ID:
		return hidden
	case c != nil && c.roleIn(p.OrgID) == RoleNone:
		return hidden
	}
	if a.cfg.Streams == nil {
		return &httpError{status: http.StatusServiceUnavailable, msg: "live streams are not available on this node", retryAfter: time.Second}
	}
	a.cfg.Streams.ServeWS(w, r, p.ID)
	return nil
}

// Node.

func (a *API) health(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if !a.ready() {
		return &httpError{status: http.StatusServiceUnavailable, msg: "not ready", retryAfter: time.Second}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": a.cfg.NodeName})
	return nil
}

func (a *API) metrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, err := a.cfg.Metrics.WriteTo(w)
	return err
}

func (a *API) cluster(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.cfg.Cluster == nil {
		writeJSON(w, http.StatusOK, map[string]any{
			"mode": "standalone",
			"node": a.cfg.NodeName,
			"registry": map[string]any{
				"processors": a.cfg.Processors.Statuses(),
			},
		})
		return nil
	}
	writeJSON(w, http.StatusOK, a.cfg.Cluster.Describe(r.Context()))
	return nil
}
