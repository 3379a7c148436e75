package api

import (
	"math"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/mesher-dev/mesher/host/store"
)

// Bounds of project settings.
const (
	maxRetentionDays = 365
	maxRateLimit     = 1_000_000
	maxRateBurst     = 10_000_000
)

// settingsRequest is the body of PUT /api/v1/projects/:project/settings.
// It replaces the settings: a field left out or null returns to the
// node's default. Numbers are float64 so that 1.5 days is refused with
// the field's own words rather than a type error.
type settingsRequest struct {
	RetentionDays *float64 `json:"retention_days"`
	SampleRate    *float64 `json:"sample_rate"`
	RateLimit     *float64 `json:"rate_limit"`
	RateBurst     *float64 `json:"rate_burst"`
}

func (req *settingsRequest) settings() (store.ProjectSettings, error) {
	var s store.ProjectSettings
	bad := func(format string, args ...any) error { return errorf(http.StatusBadRequest, format, args...) }
	if v := req.RetentionDays; v != nil {
		if *v != float64(int(*v)) || *v < 1 || *v > maxRetentionDays {
			return s, bad(`field "retention_days" must be a whole number of days from 1 to %d, got %v`, maxRetentionDays, *v)
		}
		s.RetentionDays = int(*v)
	}
	if v := req.SampleRate; v != nil {
		// 0 is refused rather than stored: stored, it means "keep all".
		if !(*v > 0 && *v <= 1) {
			return s, bad(`field "sample_rate" must be more than 0 and at most 1 (the fraction of events kept), got %v`, *v)
		}
		s.SampleRate = *v
	}
	if v := req.RateLimit; v != nil {
		if !(*v > 0 && *v <= maxRateLimit) {
			return s, bad(`field "rate_limit" must be more than 0 and at most %d events per second, got %v`, maxRateLimit, *v)
		}
		s.RateLimit = *v
	}
	if v := req.RateBurst; v != nil {
		if req.RateLimit == nil {
			return s, bad(`field "rate_burst" needs "rate_limit": a project's bucket size goes with its own rate`)
		}
		if *v != float64(int(*v)) || *v < 1 || *v > maxRateBurst {
			return s, bad(`field "rate_burst" must be a whole number from 1 to %d, got %v`, maxRateBurst, *v)
		}
		s.RateBurst = int(*v)
	}
	return s, nil
}

// settingsView is a project's settings as stored (0: the node's default)
// and as in force.
type settingsView struct {
	store.ProjectSettings
	Effective store.ProjectSettings `json:"effective"`
}

func (a *API) settingsView(s store.ProjectSettings) settingsView {
	eff := store.ProjectSettings{
		RetentionDays: store.RetentionDays(s, a.cfg.RetentionDays),
		SampleRate:    s.SampleRate,
		RateLimit:     a.cfg.Limits.RateLimit,
		RateBurst:     a.cfg.Limits.RateBurst,
	}
	if eff.SampleRate == 0 {
		eff.SampleRate = 1
	}
	if s.RateLimit > 0 {
		eff.RateLimit, eff.RateBurst = s.RateLimit, s.RateBurst
		if eff.RateBurst == 0 {
			eff.RateBurst = int(math.Ceil(s.RateLimit)) // as the rate limiter does
		}
	}
	return settingsView{ProjectSettings: s, Effective: eff}
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	p, err := a.projectAccess(r, ps.ByName("project"), RoleViewer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.settingsView(p.Settings))
	return nil
}

// putSettings replaces a project's settings. They apply to this node's
// ingestion at once (its key cache is cleared) and to other nodes' within
// the key cache's lifetime, DefaultKeyCacheTTL.
func (a *API) putSettings(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	p, err := a.projectAccess(r, ps.ByName("project"), RoleAdmin)
	if err != nil {
		return err
	}
	var req settingsRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	s, err := req.settings()
	if err != nil {
		return err
	}
	if err := a.cfg.Store.UpdateProjectSettings(r.Context(), p.ID, s); err != nil {
		return err
	}
	a.keys.forget()
	writeJSON(w, http.StatusOK, a.settingsView(s))
	return nil
}

// storageView is GET /api/v1/projects/:project/storage.
type storageView struct {
	*store.ProjectUsage
	RetentionDays int `json:"retention_days"`
}

func (a *API) getStorage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if _, err := parseQuery(r, nil, nil); err != nil {
		return err
	}
	p, err := a.projectAccess(r, ps.ByName("project"), RoleViewer)
	if err != nil {
		return err
	}
	u, err := a.cfg.Store.ProjectUsage(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, storageView{ProjectUsage: u, RetentionDays: store.RetentionDays(p.Settings, a.cfg.RetentionDays)})
	return nil
}
