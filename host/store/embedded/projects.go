package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// canonical returns a UUID in the lower-case hyphenated form PostgreSQL
// returns, so that both stores match ids alike; anything else unchanged.
func canonical(id string) string {
	if u, ok := batch.ParseUUID(id); ok {
		return batch.FormatUUID(u)
	}
	return id
}

// CreateProject stores p; ErrConflict if its slug or id is taken. A zero
// CreatedAt is set to now.
func (s *Store) CreateProject(ctx context.Context, p *store.Project) error {
	if _, ok := batch.ParseUUID(p.ID); !ok {
		return fmt.Errorf("create project: id %q is not a UUID", p.ID)
	}
	p.ID = canonical(p.ID)
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now()
	}
	if p.OrgID == "" {
		p.OrgID = store.DefaultOrgID
	}
	p.OrgID = canonical(p.OrgID)
	settings, err := json.Marshal(p.Settings)
	if err != nil {
		return fmt.Errorf("create project %q: %w", p.Slug, err)
	}
	// projects.org_id has no foreign key (SQLite cannot add one to an
	// existing table), so the insert checks the organisation itself.
	res, err := s.w.ExecContext(ctx, `INSERT INTO projects (id, slug, name, settings, created_at, org_id)
		SELECT ?, ?, ?, ?, ?, id FROM orgs WHERE id = ?`,
		p.ID, p.Slug, p.Name, settings, micros(p.CreatedAt), p.OrgID)
	if isConflict(err) {
		return fmt.Errorf("create project %q: %w", p.Slug, store.ErrConflict)
	}
	if err == nil {
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("create project %q: organisation %q: %w", p.Slug, p.OrgID, store.ErrNotFound)
		}
	}
	return wrap(fmt.Sprintf("create project %q", p.Slug), err)
}

const projectColumns = "id, slug, name, settings, created_at, org_id"

func scanProject(row interface{ Scan(...any) error }) (*store.Project, error) {
	var p store.Project
	var settings string
	var created int64
	if err := row.Scan(&p.ID, &p.Slug, &p.Name, &settings, &created, &p.OrgID); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &p.Settings); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	p.CreatedAt = fromMicros(created)
	return &p, nil
}

// Project returns a project by id or slug.
func (s *Store) Project(ctx context.Context, idOrSlug string) (*store.Project, error) {
	q, arg := "SELECT "+projectColumns+" FROM projects WHERE slug = ?", idOrSlug
	if _, ok := batch.ParseUUID(idOrSlug); ok {
		q, arg = "SELECT "+projectColumns+" FROM projects WHERE id = ?", canonical(idOrSlug)
	}
	p, err := scanProject(s.r.QueryRowContext(ctx, q, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project %q: %w", idOrSlug, store.ErrNotFound)
	}
	return p, wrap(fmt.Sprintf("project %q", idOrSlug), err)
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]*store.Project, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+projectColumns+" FROM projects ORDER BY created_at, slug")
	if err != nil {
		return nil, wrap("list projects", err)
	}
	ps, err := collect(rows, scanProject)
	return ps, wrap("list projects", err)
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// UpdateProjectSettings replaces a project's settings.
func (s *Store) UpdateProjectSettings(ctx context.Context, id string, ps store.ProjectSettings) error {
	settings, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("update project %q: %w", id, err)
	}
	res, err := s.w.ExecContext(ctx, "UPDATE projects SET settings = ? WHERE id = ?", settings, canonical(id))
	if err != nil {
		return wrap(fmt.Sprintf("update project %q", id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update project %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// CreateAPIKey stores k: ErrNotFound if its project does not exist,
// ErrConflict if its id or hash is taken. A zero CreatedAt is set to now.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	if _, ok := batch.ParseUUID(k.ID); !ok {
		return fmt.Errorf("create api key: id %q is not a UUID", k.ID)
	}
	k.ID, k.ProjectID = canonical(k.ID), canonical(k.ProjectID)
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	var revoked sql.NullInt64
	if k.RevokedAt != nil {
		revoked = sql.NullInt64{Int64: micros(*k.RevokedAt), Valid: true}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (id, project_id, name, prefix, hash, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, k.ID, k.ProjectID, k.Name, k.Prefix, k.Hash, micros(k.CreatedAt), revoked)
	switch {
	case isConflict(err):
		return fmt.Errorf("create api key: %w", store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("create api key: project %q: %w", k.ProjectID, store.ErrNotFound)
	}
	return wrap("create api key", err)
}

const keyColumns = "id, project_id, name, prefix, hash, created_at, revoked_at"

func scanKey(row interface{ Scan(...any) error }) (*store.APIKey, error) {
	var k store.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Prefix, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		k.RevokedAt = &t
	}
	return &k, nil
}

// APIKeyByHash returns the key with that hash, revoked or not.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*store.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("api key: %w", store.ErrNotFound)
	}
	return k, wrap("api key", err)
}

// ListAPIKeys returns a project's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]*store.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE project_id = ? ORDER BY created_at, id",
		canonical(projectID))
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	ks, err := collect(rows, scanKey)
	return ks, wrap("list api keys", err)
}

// RevokeAPIKey marks a key revoked at at; a key already revoked keeps its
// first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
		micros(at), canonical(id))
	if err != nil {
		return wrap(fmt.Sprintf("revoke api key %q", id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke api key %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// GetMeta returns the value stored under key.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("meta %q: %w", key, store.ErrNotFound)
	}
	return v, wrap(fmt.Sprintf("meta %q", key), err)
}

// SetMetaIfAbsent stores value unless key exists, and returns the value
// stored under key afterwards.
func (s *Store) SetMetaIfAbsent(ctx context.Context, key, value string) (string, error) {
	var v string
	err := s.w.QueryRowContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = value RETURNING value`, key, value).Scan(&v)
	return v, wrap(fmt.Sprintf("set meta %q", key), err)
}
