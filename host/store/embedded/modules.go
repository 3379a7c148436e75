package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mesher-dev/mesher/host/store"
)

// PutModule stores a version of processor m.Name and makes it current;
// storing bytes already stored makes that version current again. m.CreatedAt
// is set to when these bytes were first stored.
func (s *Store) PutModule(ctx context.Context, m *store.Module) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	manifest := string(m.Manifest)
	if manifest == "" {
		manifest = "{}"
	}
	wasm := m.Wasm
	if wasm == nil {
		wasm = []byte{}
	}
	var created int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO modules (name, sha256, size, manifest, wasm, created_at, upload_seq)
		VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(upload_seq), 0) + 1 FROM modules))
		ON CONFLICT (name, sha256) DO UPDATE SET upload_seq = (SELECT max(upload_seq) + 1 FROM modules)
		RETURNING created_at`, m.Name, m.SHA256, m.Size, manifest, wasm, micros(m.CreatedAt)).Scan(&created)
	if err != nil {
		return wrap(fmt.Sprintf("put processor %q", m.Name), err)
	}
	m.CreatedAt = fromMicros(created)
	return nil
}

const moduleColumns = "name, sha256, size, manifest, created_at"

func scanModule(row interface{ Scan(...any) error }, withWasm bool) (*store.Module, error) {
	var m store.Module
	var manifest string
	var created int64
	dest := []any{&m.Name, &m.SHA256, &m.Size, &manifest, &created}
	if withWasm {
		dest = append(dest, &m.Wasm)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	m.Manifest = json.RawMessage(manifest)
	m.CreatedAt = fromMicros(created)
	if withWasm && m.Wasm == nil {
		m.Wasm = []byte{}
	}
	return &m, nil
}

func (s *Store) module(ctx context.Context, what, q string, withWasm bool, args ...any) (*store.Module, error) {
	m, err := scanModule(s.r.QueryRowContext(ctx, q, args...), withWasm)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return m, wrap(what, err)
}

// Module returns the current version of a processor, without its bytes.
func (s *Store) Module(ctx context.Context, name string) (*store.Module, error) {
	return s.module(ctx, fmt.Sprintf("processor %q", name),
		"SELECT "+moduleColumns+" FROM modules WHERE name = ? ORDER BY upload_seq DESC LIMIT 1", false, name)
}

// ModuleVersion returns one version of a processor with its bytes.
func (s *Store) ModuleVersion(ctx context.Context, name, sha256 string) (*store.Module, error) {
	return s.module(ctx, fmt.Sprintf("processor %q version %s", name, sha256),
		"SELECT "+moduleColumns+", wasm FROM modules WHERE name = ? AND sha256 = ?", true, name, sha256)
}

// ModuleBySHA returns a module with these bytes, under any name, with its
// bytes.
func (s *Store) ModuleBySHA(ctx context.Context, sha256 string) (*store.Module, error) {
	return s.module(ctx, fmt.Sprintf("module %s", sha256),
		"SELECT "+moduleColumns+", wasm FROM modules WHERE sha256 = ? ORDER BY upload_seq DESC LIMIT 1", true, sha256)
}

// ListModules returns the current version of every processor, by name.
func (s *Store) ListModules(ctx context.Context) ([]*store.Module, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+moduleColumns+` FROM modules m
		WHERE upload_seq = (SELECT max(upload_seq) FROM modules WHERE name = m.name) ORDER BY name`)
	if err != nil {
		return nil, wrap("list processors", err)
	}
	ms, err := collect(rows, func(r interface{ Scan(...any) error }) (*store.Module, error) { return scanModule(r, false) })
	return ms, wrap("list processors", err)
}

// errRollback makes write roll back after the function has set the error
// to return.
var errRollback = errors.New("rollback")

// DeleteModule deletes a processor and all its versions: ErrConflict if a
// pipeline uses it.
func (s *Store) DeleteModule(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete processor %q", name)
	var result error
	err := s.write(ctx, func(tx *sql.Tx) error {
		var user string
		err := tx.QueryRowContext(ctx, `SELECT p.project_id FROM pipelines p, json_each(p.steps) j
			WHERE json_extract(j.value, '$.name') = ? LIMIT 1`, name).Scan(&user)
		if err == nil {
			result = fmt.Errorf("%s: the pipeline of project %s uses it: %w", op, user, store.ErrConflict)
			return errRollback
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM modules WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			result = fmt.Errorf("%s: %w", op, store.ErrNotFound)
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return result
	}
	return wrap(op, err)
}

// PutPipeline replaces a project's pipeline and sets p.Revision (and a zero
// p.UpdatedAt to now). ErrNotFound if the project does not exist, or a step
// names a processor, or pins a version, that is not stored.
func (s *Store) PutPipeline(ctx context.Context, p *store.Pipeline) error {
	op := fmt.Sprintf("put pipeline of project %q", p.ProjectID)
	p.ProjectID = canonical(p.ProjectID)
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
	var result error
	err = s.write(ctx, func(tx *sql.Tx) error {
		for i, st := range steps {
			q, args := "SELECT 1 FROM modules WHERE name = ? LIMIT 1", []any{st.Processor}
			what := fmt.Sprintf("processor %q", st.Processor)
			if st.Version != "" {
				q, args = "SELECT 1 FROM modules WHERE name = ? AND sha256 = ?", []any{st.Processor, st.Version}
				what += " version " + st.Version
			}
			var one int
			err := tx.QueryRowContext(ctx, q, args...).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				result = fmt.Errorf("%s: step %d: %s: %w", op, i, what, store.ErrNotFound)
				return errRollback
			}
			if err != nil {
				return err
			}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO pipelines (project_id, steps, revision, updated_at) VALUES (?, ?, 1, ?)
			ON CONFLICT (project_id) DO UPDATE
			SET steps = excluded.steps, revision = revision + 1, updated_at = excluded.updated_at
			RETURNING revision`, p.ProjectID, string(stepsJSON), micros(p.UpdatedAt)).Scan(&p.Revision)
		if isForeignKey(err) {
			result = fmt.Errorf("%s: %w", op, store.ErrNotFound)
			return errRollback
		}
		return err
	})
	if errors.Is(err, errRollback) {
		return result
	}
	return wrap(op, err)
}

func scanPipeline(row interface{ Scan(...any) error }) (*store.Pipeline, error) {
	var p store.Pipeline
	var steps string
	var updated int64
	if err := row.Scan(&p.ProjectID, &steps, &p.Revision, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(steps), &p.Steps); err != nil {
		return nil, fmt.Errorf("steps: %w", err)
	}
	if p.Steps == nil {
		p.Steps = []store.Step{}
	}
	p.UpdatedAt = fromMicros(updated)
	return &p, nil
}

// Pipeline returns a project's pipeline; a project that never had one has
// an empty pipeline at revision 0. ErrNotFound if the project does not
// exist.
func (s *Store) Pipeline(ctx context.Context, projectID string) (*store.Pipeline, error) {
	op := fmt.Sprintf("pipeline of project %q", projectID)
	pid := canonical(projectID)
	p, err := scanPipeline(s.r.QueryRowContext(ctx,
		"SELECT project_id, steps, revision, updated_at FROM pipelines WHERE project_id = ?", pid))
	if !errors.Is(err, sql.ErrNoRows) {
		return p, wrap(op, err)
	}
	var one int
	err = s.r.QueryRowContext(ctx, "SELECT 1 FROM projects WHERE id = ?", pid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &store.Pipeline{ProjectID: pid, Steps: []store.Step{}}, nil
}

// ListPipelines returns every stored pipeline, by project id.
func (s *Store) ListPipelines(ctx context.Context) ([]*store.Pipeline, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT project_id, steps, revision, updated_at FROM pipelines ORDER BY project_id")
	if err != nil {
		return nil, wrap("list pipelines", err)
	}
	ps, err := collect(rows, scanPipeline)
	return ps, wrap("list pipelines", err)
}
