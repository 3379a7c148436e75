package api_test

import (
	"bufio"
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mesher-dev/mesher/host/api"
)

// openAPIPaths reads the paths of an OpenAPI document written as
// openapi.yaml is: each path a key indented two spaces under "paths:",
// each operation a method key indented four. It returns, for each path,
// its methods and the names of the parameters it declares (inline, or by
// reference to components/parameters).
func openAPIPaths(t *testing.T, doc []byte) map[string]struct {
	methods []string
	params  map[string]bool
} {
	t.Helper()
	type item = struct {
		methods []string
		params  map[string]bool
	}
	// components/parameters: key → name.
	refNames := map[string]string{}
	var section, sub, key string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "components:"):
			section = "components"
		case !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":"):
			section = ""
		case section == "components" && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			sub = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case section == "components" && sub == "parameters" && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			key = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case section == "components" && sub == "parameters" && strings.HasPrefix(line, "      name: "):
			refNames[key] = strings.TrimSpace(strings.TrimPrefix(line, "      name: "))
		}
	}

	out := map[string]item{}
	methodRE := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):\s*$`)
	refRE := regexp.MustCompile(`\$ref: "#/components/parameters/([a-z_]+)"`)
	nameRE := regexp.MustCompile(`^\s*- name: (\S+)`)
	inPaths := false
	var cur string
	sc = bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && line != "" {
			inPaths = line == "paths:"
			continue
		}
		if !inPaths {
			continue
		}
		if strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":") {
			cur = strings.TrimSuffix(strings.TrimSpace(line), ":")
			if _, dup := out[cur]; dup {
				t.Errorf("openapi.yaml: path %s appears twice", cur)
			}
			out[cur] = item{params: map[string]bool{}}
			continue
		}
		if cur == "" {
			continue
		}
		it := out[cur]
		if m := methodRE.FindStringSubmatch(line); m != nil {
			it.methods = append(it.methods, strings.ToUpper(m[1]))
		}
		if m := refRE.FindStringSubmatch(line); m != nil {
			name, ok := refNames[m[1]]
			if !ok {
				t.Errorf("openapi.yaml: %s refers to parameter %q, which components/parameters lacks", cur, m[1])
			}
			it.params[name] = true
		}
		if m := nameRE.FindStringSubmatch(line); m != nil {
			it.params[m[1]] = true
		}
		out[cur] = it
	}
	return out
}

// TestOpenAPIMatchesRoutes holds the OpenAPI document and the router to
// each other: every route is documented with its method, every documented
// operation is a route, and every path parameter is declared.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := openAPIPaths(t, api.OpenAPI)
	if len(doc) == 0 {
		t.Fatal("openapi.yaml: no paths found")
	}
	routes := api.New(api.Config{}).Routes()
	have := map[string]bool{}
	for _, r := range routes {
		p := r.OpenAPIPath()
		have[r.Method+" "+p] = true
		it, ok := doc[p]
		if !ok {
			t.Errorf("route %s %s: path %s missing from openapi.yaml", r.Method, r.Path, p)
			continue
		}
		if !slices.Contains(it.methods, r.Method) {
			t.Errorf("route %s %s: openapi.yaml documents %s with %v only", r.Method, r.Path, p, it.methods)
		}
		for _, seg := range strings.Split(p, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				if !it.params[name] {
					t.Errorf("openapi.yaml: %s does not declare its path parameter %q", p, name)
				}
			}
		}
	}
	for p, it := range doc {
		if len(it.methods) == 0 {
			t.Errorf("openapi.yaml: path %s has no operation", p)
		}
		for _, m := range it.methods {
			if !have[m+" "+p] {
				t.Errorf("openapi.yaml documents %s %s, which the router does not have", m, p)
			}
		}
	}
}

func TestRouteOpenAPIPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/healthz", "/healthz"},
		{"/api/v1/projects/:project", "/api/v1/projects/{project}"},
		{"/api/v1/orgs/:org/members/:id/role", "/api/v1/orgs/{org}/members/{id}/role"},
	}
	for _, c := range cases {
		if got := (api.Route{Method: "GET", Path: c.in}).OpenAPIPath(); got != c.want {
			t.Errorf("OpenAPIPath(%q): got %q, want %q", c.in, got, c.want)
		}
	}
}
