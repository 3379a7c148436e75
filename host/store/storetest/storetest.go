// Package storetest is the conformance suite of store.Store: every backend's
// tests call Run, so that PostgreSQL and the embedded store mean the same
// thing by each method.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mesher-dev/mesher/host/store"
)

// Run runs the suite against the stores open returns. open must return a
// new, empty store (a fresh database); Run closes it when the test that
// opened it ends. Run calls open once per group of tests, a handful of
// times.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Projects", testProjects},
		{"Keys", testKeys},
		{"Modules", testModules},
		{"Pipelines", testPipelines},
		{"Meta", testMeta},
		{"Commit", testCommit},
		{"CommitAtomic", testCommitAtomic},
		{"CommitHammer", testCommitHammer},
		{"Lookups", testLookups},
		{"Triage", testTriage},
		{"Search", testSearch},
		{"Dashboards", testDashboards},
		{"Spikes", testSpikes},
		{"Orgs", testOrgs},
		{"Members", testMembers},
		{"AlertRules", testAlertRules},
		{"AlertClaims", testAlertClaims},
		{"AlertFiring", testAlertFiring},
		{"CountEvents", testCountEvents},
		{"Retention", testRetention},
		{"Usage", testUsage},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			g.run(t, s)
		})
	}
}

// NewID returns a random UUID (version 4).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// utc returns t as a store returns it: UTC, to the microsecond.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// base is a time with nanoseconds, in a zone other than UTC, near now (so
// that it falls in a partition that exists).
var base = time.Now().Truncate(time.Second).Add(123456789 * time.Nanosecond).In(time.FixedZone("UTC+5", 5*3600))

func newProject(t *testing.T, s store.Store) *store.Project {
	t.Helper()
	id := NewID()
	p := &store.Project{ID: id, Slug: "p-" + id[:8], Name: "Project " + id[:8], CreatedAt: base}
	if err := s.CreateProject(context.Background(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func checkUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s: got location %v, want UTC", what, tm.Location())
	}
}

func testProjects(t *testing.T, s store.Store) {
	ctx := context.Background()
	settings := store.ProjectSettings{RetentionDays: 30, SampleRate: 0.5, RateLimit: 10, RateBurst: 20}
	p := &store.Project{ID: NewID(), Slug: "alpha", Name: "Alpha", Settings: settings, CreatedAt: base}
	noErr(t, "CreateProject", s.CreateProject(ctx, p))
	q := &store.Project{ID: NewID(), Slug: "beta", Name: "Beta", CreatedAt: base.Add(time.Second)}
	noErr(t, "CreateProject", s.CreateProject(ctx, q))

	t.Run("lookup", func(t *testing.T) {
		cases := []struct {
			name    string
			key     string
			want    *store.Project
			wantErr error
		}{
			{"by id", p.ID, p, nil},
			{"by slug", "alpha", p, nil},
			{"other by id", q.ID, q, nil},
			{"unknown id", NewID(), nil, store.ErrNotFound},
			{"unknown slug", "gamma", nil, store.ErrNotFound},
			{"empty", "", nil, store.ErrNotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, err := s.Project(ctx, c.key)
				if c.wantErr != nil {
					wantErr(t, "Project", err, c.wantErr)
					return
				}
				noErr(t, "Project", err)
				want := *c.want
				want.CreatedAt = utc(want.CreatedAt)
				checkUTC(t, "CreatedAt", got.CreatedAt)
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("Project(%q): got %+v, want %+v", c.key, *got, want)
				}
			})
		}
	})
	t.Run("slug conflict", func(t *testing.T) {
		err := s.CreateProject(ctx, &store.Project{ID: NewID(), Slug: "alpha", Name: "Other"})
		wantErr(t, "CreateProject with a taken slug", err, store.ErrConflict)
		got, err := s.Project(ctx, "alpha")
		noErr(t, "Project", err)
		if got.ID != p.ID {
			t.Errorf("slug alpha: got project %s, want %s", got.ID, p.ID)
		}
	})
	t.Run("list", func(t *testing.T) {
		ps, err := s.ListProjects(ctx)
		noErr(t, "ListProjects", err)
		var slugs []string
		for _, p := range ps {
			slugs = append(slugs, p.Slug)
		}
		if want := []string{"alpha", "beta"}; !reflect.DeepEqual(slugs, want) {
			t.Errorf("ListProjects: got %v, want %v", slugs, want)
		}
	})
	t.Run("update settings", func(t *testing.T) {
		next := store.ProjectSettings{RetentionDays: 7}
		noErr(t, "UpdateProjectSettings", s.UpdateProjectSettings(ctx, q.ID, next))
		got, err := s.Project(ctx, q.ID)
		noErr(t, "Project", err)
		if got.Settings != next {
			t.Errorf("settings: got %+v, want %+v", got.Settings, next)
		}
		wantErr(t, "UpdateProjectSettings of an unknown project", s.UpdateProjectSettings(ctx, NewID(), next), store.ErrNotFound)
	})
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	k1 := &store.APIKey{ID: NewID(), ProjectID: p.ID, Name: "ci", Prefix: "msk_1234", Hash: "hash-1", CreatedAt: base}
	k2 := &store.APIKey{ID: NewID(), ProjectID: p.ID, Prefix: "msk_5678", Hash: "hash-2", CreatedAt: base.Add(time.Second)}
	k3 := &store.APIKey{ID: NewID(), ProjectID: q.ID, Prefix: "msk_9abc", Hash: "hash-3", CreatedAt: base}
	for _, k := range []*store.APIKey{k1, k2, k3} {
		noErr(t, "CreateAPIKey", s.CreateAPIKey(ctx, k))
	}

	t.Run("create errors", func(t *testing.T) {
		cases := []struct {
			name string
			key  *store.APIKey
			want error
		}{
			{"taken hash", &store.APIKey{ID: NewID(), ProjectID: q.ID, Prefix: "x", Hash: "hash-1"}, store.ErrConflict},
			{"unknown project", &store.APIKey{ID: NewID(), ProjectID: NewID(), Prefix: "x", Hash: "hash-9"}, store.ErrNotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantErr(t, "CreateAPIKey", s.CreateAPIKey(ctx, c.key), c.want)
			})
		}
	})
	t.Run("by hash", func(t *testing.T) {
		got, err := s.APIKeyByHash(ctx, "hash-1")
		noErr(t, "APIKeyByHash", err)
		want := *k1
		want.CreatedAt = utc(want.CreatedAt)
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("APIKeyByHash: got %+v, want %+v", *got, want)
		}
		checkUTC(t, "CreatedAt", got.CreatedAt)
		_, err = s.APIKeyByHash(ctx, "no-such-hash")
		wantErr(t, "APIKeyByHash of an unknown hash", err, store.ErrNotFound)
	})
	t.Run("list", func(t *testing.T) {
		ks, err := s.ListAPIKeys(ctx, p.ID)
		noErr(t, "ListAPIKeys", err)
		var ids []string
		for _, k := range ks {
			ids = append(ids, k.ID)
		}
		if want := []string{k1.ID, k2.ID}; !reflect.DeepEqual(ids, want) {
			t.Errorf("ListAPIKeys: got %v, want %v", ids, want)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		at := base.Add(time.Hour)
		noErr(t, "RevokeAPIKey", s.RevokeAPIKey(ctx, k2.ID, at))
		noErr(t, "RevokeAPIKey again", s.RevokeAPIKey(ctx, k2.ID, at.Add(time.Hour)))
		got, err := s.APIKeyByHash(ctx, "hash-2")
		noErr(t, "APIKeyByHash", err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(utc(at)) {
			t.Errorf("RevokedAt: got %v, want %v (the first revocation)", got.RevokedAt, utc(at))
		} else {
			checkUTC(t, "RevokedAt", *got.RevokedAt)
		}
		other, err := s.APIKeyByHash(ctx, "hash-1")
		noErr(t, "APIKeyByHash", err)
		if other.RevokedAt != nil {
			t.Errorf("RevokedAt of another key: got %v, want nil", other.RevokedAt)
		}
		wantErr(t, "RevokeAPIKey of an unknown key", s.RevokeAPIKey(ctx, NewID(), at), store.ErrNotFound)
	})
}

func sha(s string) string {
	b := []byte(s)
	out := make([]byte, 32)
	copy(out, b)
	return hex.EncodeToString(out)
}

func testModules(t *testing.T, s store.Store) {
	ctx := context.Background()
	put := func(name, content string, at time.Time) *store.Module {
		t.Helper()
		m := &store.Module{Name: name, SHA256: sha(content), Size: len(content),
			Manifest: json.RawMessage(`{"name":"` + name + `","version":"` + content + `"}`), CreatedAt: at, Wasm: []byte(content)}
		noErr(t, "PutModule", s.PutModule(ctx, m))
		return m
	}
	current := func(name string) string {
		t.Helper()
		m, err := s.Module(ctx, name)
		noErr(t, "Module", err)
		if m.Wasm != nil {
			t.Errorf("Module(%q): got %d bytes of Wasm, want none", name, len(m.Wasm))
		}
		return m.SHA256
	}
	v1 := put("scrub", "v1", base)
	put("scrub", "v2", base.Add(time.Minute))
	put("enrich", "e1", base)

	t.Run("current is the last upload", func(t *testing.T) {
		if got, want := current("scrub"), sha("v2"); got != want {
			t.Errorf("current scrub: got %s, want %s", got, want)
		}
	})
	t.Run("version with bytes", func(t *testing.T) {
		m, err := s.ModuleVersion(ctx, "scrub", sha("v1"))
		noErr(t, "ModuleVersion", err)
		if string(m.Wasm) != "v1" || m.Size != 2 || m.Name != "scrub" {
			t.Errorf("ModuleVersion: got name %q size %d wasm %q, want scrub 2 v1", m.Name, m.Size, m.Wasm)
		}
		var man map[string]string
		if err := json.Unmarshal(m.Manifest, &man); err != nil || man["version"] != "v1" {
			t.Errorf("manifest: got %s (%v), want version v1", m.Manifest, err)
		}
		if !m.CreatedAt.Equal(utc(base)) {
			t.Errorf("CreatedAt: got %v, want %v", m.CreatedAt, utc(base))
		}
		checkUTC(t, "CreatedAt", m.CreatedAt)
	})
	t.Run("re-upload makes current again", func(t *testing.T) {
		again := put("scrub", "v1", base.Add(time.Hour))
		if got, want := current("scrub"), sha("v1"); got != want {
			t.Errorf("current scrub: got %s, want %s", got, want)
		}
		if !again.CreatedAt.Equal(utc(v1.CreatedAt)) {
			t.Errorf("CreatedAt after re-upload: got %v, want the first upload's %v", again.CreatedAt, utc(v1.CreatedAt))
		}
	})
	t.Run("by sha", func(t *testing.T) {
		m, err := s.ModuleBySHA(ctx, sha("v2"))
		noErr(t, "ModuleBySHA", err)
		if string(m.Wasm) != "v2" || m.Name != "scrub" {
			t.Errorf("ModuleBySHA: got %q %q, want scrub v2", m.Name, m.Wasm)
		}
	})
	t.Run("list", func(t *testing.T) {
		ms, err := s.ListModules(ctx)
		noErr(t, "ListModules", err)
		var got []string
		for _, m := range ms {
			got = append(got, m.Name+"@"+m.SHA256[:4])
		}
		want := []string{"enrich@" + sha("e1")[:4], "scrub@" + sha("v1")[:4]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ListModules: got %v, want %v", got, want)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := s.Module(ctx, "nope")
		wantErr(t, "Module", err, store.ErrNotFound)
		_, err = s.ModuleVersion(ctx, "scrub", sha("v9"))
		wantErr(t, "ModuleVersion", err, store.ErrNotFound)
		_, err = s.ModuleBySHA(ctx, sha("v9"))
		wantErr(t, "ModuleBySHA", err, store.ErrNotFound)
		wantErr(t, "DeleteModule", s.DeleteModule(ctx, "nope"), store.ErrNotFound)
	})
	t.Run("delete refused while used", func(t *testing.T) {
		p := newProject(t, s)
		pl := &store.Pipeline{ProjectID: p.ID, Steps: []store.Step{{Processor: "enrich"}, {Processor: "scrub"}}}
		noErr(t, "PutPipeline", s.PutPipeline(ctx, pl))
		wantErr(t, "DeleteModule of a processor in use", s.DeleteModule(ctx, "scrub"), store.ErrConflict)
		if got, want := current("scrub"), sha("v1"); got != want {
			t.Errorf("current scrub after a refused delete: got %s, want %s", got, want)
		}
		pl.Steps = []store.Step{{Processor: "enrich"}}
		noErr(t, "PutPipeline", s.PutPipeline(ctx, pl))
		noErr(t, "DeleteModule", s.DeleteModule(ctx, "scrub"))
		_, err := s.Module(ctx, "scrub")
		wantErr(t, "Module after delete", err, store.ErrNotFound)
		_, err = s.ModuleVersion(ctx, "scrub", sha("v2"))
		wantErr(t, "ModuleVersion after delete", err, store.ErrNotFound)
		if got, want := current("enrich"), sha("e1"); got != want {
			t.Errorf("current enrich: got %s, want %s", got, want)
		}
	})
}

func testPipelines(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, q := newProject(t, s), newProject(t, s)
	for _, name := range []string{"scrub", "enrich"} {
		noErr(t, "PutModule", s.PutModule(ctx, &store.Module{Name: name, SHA256: sha(name), Size: 1, Manifest: json.RawMessage(`{}`), Wasm: []byte{0}}))
	}

	t.Run("empty default", func(t *testing.T) {
		got, err := s.Pipeline(ctx, p.ID)
		noErr(t, "Pipeline", err)
		if got.Revision != 0 || len(got.Steps) != 0 || got.ProjectID != p.ID {
			t.Errorf("Pipeline of a project without one: got %+v, want project %s, no steps, revision 0", got, p.ID)
		}
	})
	t.Run("revision increments", func(t *testing.T) {
		steps := []store.Step{
			{Processor: "scrub", Config: map[string]json.RawMessage{"fields": json.RawMessage(`["password"]`)}},
			{Processor: "enrich", Version: sha("enrich")},
		}
		for want := int64(1); want <= 3; want++ {
			pl := &store.Pipeline{ProjectID: p.ID, Steps: steps[:want%2+1], UpdatedAt: base}
			noErr(t, "PutPipeline", s.PutPipeline(ctx, pl))
			if pl.Revision != want {
				t.Errorf("PutPipeline #%d: got revision %d, want %d", want, pl.Revision, want)
			}
			got, err := s.Pipeline(ctx, p.ID)
			noErr(t, "Pipeline", err)
			if got.Revision != want || !jsonEqual(got.Steps, pl.Steps) || !got.UpdatedAt.Equal(utc(base)) {
				t.Errorf("Pipeline #%d: got %+v, want revision %d, steps %+v, updated %v", want, got, want, pl.Steps, utc(base))
			}
		}
	})
	t.Run("list", func(t *testing.T) {
		noErr(t, "PutPipeline", s.PutPipeline(ctx, &store.Pipeline{ProjectID: q.ID, Steps: []store.Step{}}))
		pls, err := s.ListPipelines(ctx)
		noErr(t, "ListPipelines", err)
		revs := map[string]int64{}
		for _, pl := range pls {
			revs[pl.ProjectID] = pl.Revision
		}
		if want := map[string]int64{p.ID: 3, q.ID: 1}; !reflect.DeepEqual(revs, want) {
			t.Errorf("ListPipelines revisions: got %v, want %v", revs, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name string
			pl   *store.Pipeline
		}{
			{"unknown project", &store.Pipeline{ProjectID: NewID()}},
			{"unknown processor", &store.Pipeline{ProjectID: q.ID, Steps: []store.Step{{Processor: "nope"}}}},
			{"unknown version", &store.Pipeline{ProjectID: q.ID, Steps: []store.Step{{Processor: "scrub", Version: sha("v9")}}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantErr(t, "PutPipeline", s.PutPipeline(ctx, c.pl), store.ErrNotFound)
			})
		}
		_, err := s.Pipeline(ctx, NewID())
		wantErr(t, "Pipeline of an unknown project", err, store.ErrNotFound)
		got, err := s.Pipeline(ctx, q.ID)
		noErr(t, "Pipeline", err)
		if got.Revision != 1 {
			t.Errorf("revision after refused puts: got %d, want 1", got.Revision)
		}
	})
}

func testMeta(t *testing.T, s store.Store) {
	ctx := context.Background()
	t.Run("missing", func(t *testing.T) {
		_, err := s.GetMeta(ctx, "nope")
		wantErr(t, "GetMeta", err, store.ErrNotFound)
	})
	t.Run("first wins", func(t *testing.T) {
		got, err := s.SetMetaIfAbsent(ctx, "k", "one")
		noErr(t, "SetMetaIfAbsent", err)
		if got != "one" {
			t.Errorf("first SetMetaIfAbsent: got %q, want %q", got, "one")
		}
		got, err = s.SetMetaIfAbsent(ctx, "k", "two")
		noErr(t, "SetMetaIfAbsent", err)
		if got != "one" {
			t.Errorf("second SetMetaIfAbsent: got %q, want %q", got, "one")
		}
		got, err = s.GetMeta(ctx, "k")
		noErr(t, "GetMeta", err)
		if got != "one" {
			t.Errorf("GetMeta: got %q, want %q", got, "one")
		}
	})
	t.Run("race", func(t *testing.T) {
		const n = 8
		got := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		done := make(chan int)
		for i := range n {
			go func() {
				<-start
				got[i], errs[i] = s.SetMetaIfAbsent(ctx, "token", fmt.Sprintf("value-%d", i))
				done <- i
			}()
		}
		close(start)
		for range n {
			<-done
		}
		stored, err := s.GetMeta(ctx, "token")
		noErr(t, "GetMeta", err)
		for i := range n {
			if errs[i] != nil {
				t.Errorf("caller %d: %v", i, errs[i])
			} else if got[i] != stored {
				t.Errorf("caller %d: got %q, want the stored winner %q", i, got[i], stored)
			}
		}
	})
}

// jsonEqual reports whether a and b encode to the same JSON value; a
// database may rewrite JSON (spacing, key order) without changing it.
func jsonEqual(a, b any) bool {
	var x, y any
	return json.Unmarshal(mustJSON(a), &x) == nil && json.Unmarshal(mustJSON(b), &y) == nil && reflect.DeepEqual(x, y)
}

func mustJSON(v any) []byte {
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
