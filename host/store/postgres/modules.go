package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mesher-dev/mesher/host/store"
	"github.com/mesher-dev/mesher/host/store/internal/batch"
)

// PutModule stores a version of processor m.Name and makes it current;
// storing bytes already stored makes that version current again. m.CreatedAt
// is set to when these bytes were first stored (now, if m.CreatedAt is zero
// and they are new).
func (s *Store) PutModule(ctx context.Context, m *store.Module) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	manifest := []byte(m.Manifest)
	if len(manifest) == 0 {
		manifest = []byte("{}")
	}
	wasm := m.Wasm
	if wasm == nil {
		wasm = []byte{}
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO modules (name, sha256, size, manifest, wasm, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name, sha256) DO UPDATE SET upload_seq = nextval('modules_upload_seq')
		RETURNING created_at`, m.Name, m.SHA256, m.Size, manifest, wasm, m.CreatedAt).Scan(&m.CreatedAt)
	m.CreatedAt = m.CreatedAt.UTC()
	return wrap(fmt.Sprintf("put processor %q", m.Name), err)
}

const moduleColumns = "name, sha256, size, manifest, created_at"

func scanModule(row pgx.Row, withWasm bool) (*store.Module, error) {
	var m store.Module
	var manifest []byte
	dest := []any{&m.Name, &m.SHA256, &m.Size, &manifest, &m.CreatedAt}
	if withWasm {
		dest = append(dest, &m.Wasm)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	m.Manifest = manifest
	m.CreatedAt = m.CreatedAt.UTC()
	return &m, nil
}

// Module returns the current version of a processor, without its bytes.
func (s *Store) Module(ctx context.Context, name string) (*store.Module, error) {
	m, err := scanModule(s.pool.QueryRow(ctx, "SELECT "+moduleColumns+
		" FROM modules WHERE name = $1 ORDER BY upload_seq DESC LIMIT 1", name), false)
	if isNoRows(err) {
		return nil, fmt.Errorf("processor %q: %w", name, store.ErrNotFound)
	}
	return m, wrap(fmt.Sprintf("processor %q", name), err)
}

// ModuleVersion returns one version of a processor with its bytes.
func (s *Store) ModuleVersion(ctx context.Context, name, sha256 string) (*store.Module, error) {
	m, err := scanModule(s.pool.QueryRow(ctx, "SELECT "+moduleColumns+
		", wasm FROM modules WHERE name = $1 AND sha256 = $2", name, sha256), true)
	if isNoRows(err) {
		return nil, fmt.Errorf("processor %q version %s: %w", name, sha256, store.ErrNotFound)
	}
	return m, wrap(fmt.Sprintf("processor %q version %s", name, sha256), err)
}

// ModuleBySHA returns a module with these bytes, under any name, with its
// bytes.
func (s *Store) ModuleBySHA(ctx context.Context, sha256 string) (*store.Module, error) {
	m, err := scanModule(s.pool.QueryRow(ctx, "SELECT "+moduleColumns+
		", wasm FROM modules WHERE sha256 = $1 ORDER BY upload_seq DESC LIMIT 1", sha256), true)
	if isNoRows(err) {
		return nil, fmt.Errorf("module %s: %w", sha256, store.ErrNotFound)
	}
	return m, wrap(fmt.Sprintf("module %s", sha256), err)
}

// ListModules returns the current version of every processor, by name.
func (s *Store) ListModules(ctx context.Context) ([]*store.Module, error) {
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT ON (name) "+moduleColumns+
		" FROM modules ORDER BY name, upload_seq DESC")
	if err != nil {
		return nil, wrap("list processors", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Module, error) { return scanModule(r, false) })
	return ms, wrap("list processors", err)
}

// DeleteModule deletes a processor and all its versions: ErrConflict if a
// pipeline uses it.
//
// It deletes first and looks for pipelines second: the delete waits for a
// PutPipeline that has locked the processor's rows, and the look that
// follows sees that pipeline.
func (s *Store) DeleteModule(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete processor %q", name)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	tag, err := tx.Exec(ctx, "DELETE FROM modules WHERE name = $1", name)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	var user string
	err = tx.QueryRow(ctx, `SELECT project_id::text FROM pipelines
		WHERE steps @> jsonb_build_array(jsonb_build_object('name', $1::text)) LIMIT 1`, name).Scan(&user)
	if err == nil {
		return fmt.Errorf("%s: the pipeline of project %s uses it: %w", op, user, store.ErrConflict)
	}
	if !isNoRows(err) {
		return wrap(op, err)
	}
	return wrap(op, tx.Commit(ctx))
}

// PutPipeline replaces a project's pipeline and sets p.Revision (and a zero
// p.UpdatedAt to now). ErrNotFound if the project does not exist, or a step
// names a processor, or pins a version, that is not stored.
func (s *Store) PutPipeline(ctx context.Context, p *store.Pipeline) error {
	op := fmt.Sprintf("put pipeline of project %q", p.ProjectID)
	pid, ok := batch.ParseUUID(p.ProjectID)
	if !ok {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = s.now()
	}
	steps := p.Steps
	if steps == nil {
		steps = []store.Step{}
	}
	stepsJSON, err := json.Marshal(steps)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	names := make([]string, len(steps))
	for i, st := range steps {
		names[i] = st.Processor
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Lock the versions the pipeline uses, so that a DeleteModule waits
	// for this transaction and then sees the pipeline.
	rows, err := tx.Query(ctx, "SELECT name, sha256 FROM modules WHERE name = ANY($1) FOR KEY SHARE", names)
	if err != nil {
		return wrap(op, err)
	}
	type version struct{ name, sha string }
	have := make(map[version]bool)
	var v version
	_, err = pgx.ForEachRow(rows, []any{&v.name, &v.sha}, func() error {
		have[v] = true
		have[version{name: v.name}] = true
		return nil
	})
	if err != nil {
		return wrap(op, err)
	}
	for i, st := range steps {
		if !have[version{st.Processor, st.Version}] {
			what := fmt.Sprintf("processor %q", st.Processor)
			if st.Version != "" {
				what += " version " + st.Version
			}
			return fmt.Errorf("%s: step %d: %s: %w", op, i, what, store.ErrNotFound)
		}
	}
	err = tx.QueryRow(ctx, `INSERT INTO pipelines (project_id, steps, revision, updated_at) VALUES ($1, $2, 1, $3)
		ON CONFLICT (project_id) DO UPDATE
		SET steps = excluded.steps, revision = pipelines.revision + 1, updated_at = excluded.updated_at
		RETURNING revision`, pid, stepsJSON, p.UpdatedAt).Scan(&p.Revision)
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return wrap(op, err)
	}
	return wrap(op, tx.Commit(ctx))
}

func scanPipeline(row pgx.Row) (*store.Pipeline, error) {
	var p store.Pipeline
	var steps []byte
	if err := row.Scan(&p.ProjectID, &steps, &p.Revision, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(steps, &p.Steps); err != nil {
		return nil, fmt.Errorf("steps: %w", err)
	}
	if p.Steps == nil {
		p.Steps = []store.Step{}
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return &p, nil
}

// Pipeline returns a project's pipeline; a project that never had one has
// an empty pipeline at revision 0. ErrNotFound if the project does not
// exist.
func (s *Store) Pipeline(ctx context.Context, projectID string) (*store.Pipeline, error) {
	op := fmt.Sprintf("pipeline of project %q", projectID)
	pid, ok := batch.ParseUUID(projectID)
	if !ok {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	p, err := scanPipeline(s.pool.QueryRow(ctx,
		"SELECT project_id, steps, revision, updated_at FROM pipelines WHERE project_id = $1", pid))
	if !isNoRows(err) {
		return p, wrap(op, err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)", pid).Scan(&exists); err != nil {
		return nil, wrap(op, err)
	}
	if !exists {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return &store.Pipeline{ProjectID: batch.FormatUUID(pid), Steps: []store.Step{}}, nil
}

// ListPipelines returns every stored pipeline, by project id.
func (s *Store) ListPipelines(ctx context.Context) ([]*store.Pipeline, error) {
	rows, err := s.pool.Query(ctx, "SELECT project_id, steps, revision, updated_at FROM pipelines ORDER BY project_id")
	if err != nil {
		return nil, wrap("list pipelines", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Pipeline, error) { return scanPipeline(r) })
	return ps, wrap("list pipelines", err)
}
