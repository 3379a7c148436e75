package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// CreateProject stores p; ErrConflict if its slug or id is taken. A zero
// CreatedAt is set to now.
func (s *Store) CreateProject(ctx context.Context, p *store.Project) error {
	if _, ok := batch.ParseUUID(p.ID); !ok {
		return fmt.Errorf("create project: id %q is not a UUID", p.ID)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now()
	}
	if p.OrgID == "" {
		p.OrgID = store.DefaultOrgID
	}
	org, ok := batch.ParseUUID(p.OrgID)
	if !ok {
		return fmt.Errorf("create project %q: organisation %q: %w", p.Slug, p.OrgID, store.ErrNotFound)
	}
	p.OrgID = batch.FormatUUID(org)
	settings, err := json.Marshal(p.Settings)
	if err != nil {
		return fmt.Errorf("create project %q: %w", p.Slug, err)
	}
	_, err = s.pool.Exec(ctx, "INSERT INTO projects (id, slug, name, settings, created_at, org_id) VALUES ($1, $2, $3, $4, $5, $6)",
		p.ID, p.Slug, p.Name, settings, p.CreatedAt, org)
	switch pgCode(err) {
	case codeUniqueViolation:
		return fmt.Errorf("create project %q: %w", p.Slug, store.ErrConflict)
	case codeForeignKeyViolation:
		return fmt.Errorf("create project %q: organisation %q: %w", p.Slug, p.OrgID, store.ErrNotFound)
	}
	return wrap(fmt.Sprintf("create project %q", p.Slug), err)
}

const projectColumns = "id, slug, name, settings, created_at, org_id"

func scanProject(row pgx.Row) (*store.Project, error) {
	var p store.Project
	var settings []byte
	if err := row.Scan(&p.ID, &p.Slug, &p.Name, &settings, &p.CreatedAt, &p.OrgID); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(settings, &p.Settings); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return &p, nil
}

// Project returns a project by id or slug.
func (s *Store) Project(ctx context.Context, idOrSlug string) (*store.Project, error) {
	q := "SELECT " + projectColumns + " FROM projects WHERE slug = $1"
	var arg any = idOrSlug
	if id, ok := batch.ParseUUID(idOrSlug); ok {
		q = "SELECT " + projectColumns + " FROM projects WHERE id = $1"
		arg = id
	}
	p, err := scanProject(s.pool.QueryRow(ctx, q, arg))
	if isNoRows(err) {
		return nil, fmt.Errorf("project %q: %w", idOrSlug, store.ErrNotFound)
	}
	return p, wrap(fmt.Sprintf("project %q", idOrSlug), err)
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]*store.Project, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+projectColumns+" FROM projects ORDER BY created_at, slug")
	if err != nil {
		return nil, wrap("list projects", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Project, error) { return scanProject(r) })
	return ps, wrap("list projects", err)
}

// UpdateProjectSettings replaces a project's settings.
func (s *Store) UpdateProjectSettings(ctx context.Context, id string, ps store.ProjectSettings) error {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("update project %q: %w", id, store.ErrNotFound)
	}
	settings, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("update project %q: %w", id, err)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE projects SET settings = $2 WHERE id = $1", uid, settings)
	if err != nil {
		return wrap(fmt.Sprintf("update project %q", id), err)
	}
	if tag.RowsAffected() == 0 {
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
	pid, ok := batch.ParseUUID(k.ProjectID)
	if !ok {
		return fmt.Errorf("create api key: project %q: %w", k.ProjectID, store.ErrNotFound)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, project_id, name, prefix, hash, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, k.ID, pid, k.Name, k.Prefix, k.Hash, k.CreatedAt, k.RevokedAt)
	switch pgCode(err) {
	case codeUniqueViolation:
		return fmt.Errorf("create api key: %w", store.ErrConflict)
	case codeForeignKeyViolation:
		return fmt.Errorf("create api key: project %q: %w", k.ProjectID, store.ErrNotFound)
	}
	return wrap("create api key", err)
}

const keyColumns = "id, project_id, name, prefix, hash, created_at, revoked_at"

func scanKey(row pgx.Row) (*store.APIKey, error) {
	var k store.APIKey
	if err := row.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Prefix, &k.Hash, &k.CreatedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

// APIKeyByHash returns the key with that hash, revoked or not.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*store.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE hash = $1", hash))
	if isNoRows(err) {
		return nil, fmt.Errorf("api key: %w", store.ErrNotFound)
	}
	return k, wrap("api key", err)
}

// ListAPIKeys returns a project's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]*store.APIKey, error) {
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE project_id = $1 ORDER BY created_at, id", pid)
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.APIKey, error) { return scanKey(r) })
	return ks, wrap("list api keys", err)
}

// RevokeAPIKey marks a key revoked at at; a key already revoked keeps its
// first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	uid, ok := batch.ParseUUID(id)
	if !ok {
		return fmt.Errorf("revoke api key %q: %w", id, store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", uid, at)
	if err != nil {
		return wrap(fmt.Sprintf("revoke api key %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke api key %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// GetMeta returns the value stored under key.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&v)
	if isNoRows(err) {
		return "", fmt.Errorf("meta %q: %w", key, store.ErrNotFound)
	}
	return v, wrap(fmt.Sprintf("meta %q", key), err)
}

// SetMetaIfAbsent stores value unless key exists, and returns the value
// stored under key afterwards. Concurrent callers, on any node, all get the
// same value.
func (s *Store) SetMetaIfAbsent(ctx context.Context, key, value string) (string, error) {
	// Two statements, not one: INSERT … ON CONFLICT waits for a concurrent
	// insert of the same key to commit, but a SELECT in the same statement
	// would read the snapshot taken before it and miss the winner.
	if _, err := s.pool.Exec(ctx, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, value); err != nil {
		return "", wrap(fmt.Sprintf("set meta %q", key), err)
	}
	return s.GetMeta(ctx, key)
}
