package certlens_test

// The dependency arrows DESIGN.md's layout promises, read from the build
// itself (go list), so that a new import that breaks one fails here rather
// than in a review: handshake and rules are pure (fed bytes and structs,
// tested without sockets), the event contract sits on rules, config is
// cmd's, and nothing the product ships reaches the test-only packages.

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/certlens/certlens"

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath string
	Imports    []string // its own non-test imports
	Deps       []string // everything it links, transitively
}

// rel is a project path without the module prefix ("rules"), or "" for an
// outside package.
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return ""
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-json=ImportPath,Imports,Deps", "./...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if r := rel(p.ImportPath); r != "" {
			pkgs[r] = p
		}
	}
	for _, want := range []string{"handshake", "rules", "internal/event", "proxy", "proxy/probe", "internal/capture", "config", "cmd/certlens"} {
		if _, ok := pkgs[want]; !ok {
			t.Fatalf("go list did not report %s: the test no longer sees the module", want)
		}
	}
	return pkgs
}

// projectImports are p's direct imports inside the module.
func projectImports(p pkg) []string {
	var out []string
	for _, i := range p.Imports {
		if r := rel(i); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// testOnly reports whether a package exists for tests alone: the test kit.
func testOnly(r string) bool {
	return r == "internal/testkit" || strings.HasPrefix(r, "internal/testkit/")
}

// impure is what a pure package may not import itself: sockets, files,
// processes, a logger. crypto/tls and crypto/x509 link net for their own
// reasons; what a package imports directly is what it does.
func impure(imp string) bool {
	for _, p := range []string{"net", "os", "syscall", "log", "go.uber.org/zap", "github.com/elazarl/goproxy", "github.com/prometheus"} {
		if imp == p || strings.HasPrefix(imp, p+"/") {
			return true
		}
	}
	return false
}

// neverLinked is what a pure package may not reach even transitively.
var neverLinked = []string{"net/http", "log", "log/slog", "go.uber.org/zap", "github.com/elazarl/goproxy", "testing"}

func TestArchitecture(t *testing.T) {
	pkgs := listPackages(t)

	// Each package's project imports must be among these.
	allowed := map[string][]string{
		"handshake":      nil,
		"rules":          {"handshake"},
		"internal/event": {"handshake", "rules"},
		"config":         nil,
	}
	for name, ok := range allowed {
		for _, imp := range projectImports(pkgs[name]) {
			if !slices.Contains(ok, imp) {
				t.Errorf("%s imports %s: it may import only %v of the project (DESIGN.md, layout)", name, imp, ok)
			}
		}
	}

	for _, name := range []string{"handshake", "rules"} {
		p := pkgs[name]
		for _, imp := range p.Imports {
			if impure(imp) {
				t.Errorf("%s imports %s: handshake and rules touch no network, file or logger; the caller passes bytes and structs in", name, imp)
			}
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") && rel(imp) == "" && !strings.HasPrefix(imp, "golang.org/x/crypto/") {
				t.Errorf("%s imports %s: handshake and rules use the standard library and x/crypto only (files are read by internal/certfile)", name, imp)
			}
		}
		for _, d := range neverLinked {
			if slices.Contains(p.Deps, d) {
				t.Errorf("%s links %s (through %v): it must stay pure", name, d, p.Imports)
			}
		}
	}

	for name, p := range pkgs {
		if testOnly(name) {
			continue
		}
		for _, imp := range projectImports(p) {
			switch {
			case testOnly(imp):
				t.Errorf("%s imports %s, a test-only package: only _test.go files may", name, imp)
			case imp == "config" && !strings.HasPrefix(name, "cmd/"):
				t.Errorf("%s imports config: config is the commands'; they turn it into the package's own options", name)
			case strings.HasPrefix(imp, "cmd/"):
				t.Errorf("%s imports %s: arrows point from cmd down, never up", name, imp)
			}
		}
	}

	// The modes that own connections stand side by side: the probe is a
	// client, not part of the proxy; analyze reads files.
	sides := []string{"proxy", "proxy/probe", "internal/capture"}
	for _, name := range sides {
		for _, imp := range projectImports(pkgs[name]) {
			if imp != name && slices.Contains(sides, imp) {
				t.Errorf("%s imports %s: the modes share code through internal packages, not through each other", name, imp)
			}
		}
	}

	// The shipped binary carries no test code.
	for _, d := range pkgs["cmd/certlens"].Deps {
		if d == "testing" || testOnly(rel(d)) {
			t.Errorf("the certlens binary links %s", d)
		}
	}
}
