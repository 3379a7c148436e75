// Package migrations holds Mesher's PostgreSQL schema as ordered SQL files,
// embedded in the binary. The PostgreSQL store applies them at start, each
// in its own transaction, under an advisory lock, and records each applied
// version in schema_migrations.
//
// A file is named NNNN_name.sql; NNNN is its version. Versions start at 1
// and have no gaps. A released file is never edited: a change to the schema
// is a new file.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed *.sql
var files embed.FS

// Migration is one schema change.
type Migration struct {
	Version int    // from the file name: 0001_init.sql is version 1
	Name    string // the file name, such as "0001_init.sql"
	SQL     string // one or more statements, run in one transaction
}

// All returns every migration, by version.
func All() ([]Migration, error) { return all() }

var all = sync.OnceValues(func() ([]Migration, error) { return load(files) })

func load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql with NNNN > 0", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: version %d, want %d (versions start at 1 and have no gaps)", m.Name, m.Version, i+1)
		}
	}
	return out, nil
}
