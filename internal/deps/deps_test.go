package deps

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Standard   bool
	GoFiles    []string
	Error      *struct{ Err string }
}

const module = "github.com/mesher-dev/mesher"

func list(t *testing.T, env []string, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, patterns...)...)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
			continue
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func standard(t *testing.T) map[string]bool {
	std := map[string]bool{}
	for _, p := range list(t, nil, "std") {
		std[p.ImportPath] = true
	}
	return std
}

// TestImportRules checks the package map of DESIGN.md: abi is the guest
// contract and imports only the standard library; the guest SDK imports
// only abi; cluster and host never import each other (cmd wires them).
func TestImportRules(t *testing.T) {
	std := standard(t)
	rules := []struct {
		pattern string
		allowed func(imp string) bool
		what    string
	}{
		{module + "/abi", func(imp string) bool { return std[imp] }, "the standard library"},
		{module + "/migrations", func(imp string) bool { return std[imp] }, "the standard library"},
		{module + "/abi/guest", func(imp string) bool { return std[imp] || imp == module+"/abi" }, "the standard library and abi"},
		{module + "/host/...", func(imp string) bool { return !strings.HasPrefix(imp, module+"/cluster") }, "anything but cluster"},
		{module + "/cluster/...", func(imp string) bool { return !strings.HasPrefix(imp, module+"/host") }, "anything but host"},
	}
	for _, r := range rules {
		for _, p := range list(t, nil, r.pattern) {
			for _, imp := range p.Imports {
				if !r.allowed(imp) {
					t.Errorf("%s imports %s; it may import only %s", p.ImportPath, imp, r.what)
				}
			}
		}
	}
}

// TestGuestSDKBuildsForWasm checks the SDK and plugins build for wasip1
// with only the allowed imports.
func TestGuestSDKBuildsForWasm(t *testing.T) {
	std := standard(t)
	for _, p := range list(t, []string{"GOOS=wasip1", "GOARCH=wasm"}, module+"/abi/guest", module+"/plugins/...") {
		for _, imp := range p.Imports {
			if !std[imp] && !strings.HasPrefix(imp, module+"/abi") && !strings.HasPrefix(imp, module+"/plugins/internal") {
				t.Errorf("%s (wasip1) imports %s", p.ImportPath, imp)
			}
		}
	}
}

// TestPackagesDocumented checks every package has a doc comment.
func TestPackagesDocumented(t *testing.T) {
	for _, p := range list(t, nil, module+"/...") {
		if len(p.GoFiles) > 0 && strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}
