package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestAll(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatalf("All: %v", err)
	}
	if len(all) == 0 || all[0].Name != "0001_init.sql" {
		t.Fatalf("All: got %d migrations, want 0001_init.sql first", len(all))
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Errorf("migration %d: got version %d, want %d", i, m.Version, i+1)
		}
		if strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %s: empty", m.Name)
		}
	}
}

func TestLoad(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	cases := []struct {
		name    string
		files   []string
		want    []string // names in order; nil when an error is wanted
		wantErr string
	}{
		{"ordered by version", []string{"0002_b.sql", "0010_j.sql", "0001_a.sql", "0003_c.sql", "0004_d.sql",
			"0005_e.sql", "0006_f.sql", "0007_g.sql", "0008_h.sql", "0009_i.sql"},
			[]string{"0001_a.sql", "0002_b.sql", "0003_c.sql", "0004_d.sql", "0005_e.sql", "0006_f.sql", "0007_g.sql",
				"0008_h.sql", "0009_i.sql", "0010_j.sql"}, ""},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, nil, "version 3, want 2"},
		{"duplicate version", []string{"0001_a.sql", "0001_b.sql"}, nil, "want 2"},
		{"no number", []string{"init.sql"}, nil, "NNNN_name.sql"},
		{"short number", []string{"1_init.sql"}, nil, "NNNN_name.sql"},
		{"version zero", []string{"0000_init.sql"}, nil, "NNNN > 0"},
		{"none", nil, []string{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{"README.md": file}
			for _, n := range c.files {
				fsys[n] = file
			}
			got, err := load(fsys)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("load: got error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			names := []string{}
			for _, m := range got {
				names = append(names, m.Name)
			}
			if strings.Join(names, " ") != strings.Join(c.want, " ") {
				t.Errorf("load: got %v, want %v", names, c.want)
			}
		})
	}
}
