package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// TestEventDurationsCarryTheirUnit: the events that state a duration name
// its unit ("grace_ms":10000, not "grace":10000).
func TestEventDurationsCarryTheirUnit(t *testing.T) {
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	keys := filepath.Join(t.TempDir(), "keys.log")
	sp := startServe(t, "serve", "--listen", listen, "--admin-listen=", "--decrypt-keylog", keys)
	if ev := sp.next("decrypting handshakes with a key log"); ev["wait_ms"] != float64(1000) || ev["wait"] != nil {
		t.Errorf("key log event %v, want wait_ms 1000", ev)
	}
	sp.next("listening")
	if err := sp.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if ev := sp.next("shutting down"); ev["grace_ms"] != float64(10000) || ev["grace"] != nil {
		t.Errorf("shutting down event %v, want grace_ms 10000", ev)
	}
}

// TestNoZapDuration keeps it so: zap.Duration writes a bare number in JSON
// (milliseconds with the encoder certlens uses) under whatever name it is
// given, so product code writes durations as zap.Int64("..._ms", ...).
func TestNoZapDuration(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join("..", ".."), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Duration" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "zap" {
					t.Errorf("%s: zap.Duration; write zap.Int64(\"NAME_ms\", d.Milliseconds())", fset.Position(sel.Pos()))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
