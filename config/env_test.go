package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestUnknownEnvNamesTheClosest(t *testing.T) {
	// The misspelt names are built, not written out, so that the scan of
	// the repository below does not take them for variables in use.
	p := "CERTLENS_"
	tests := []struct {
		name string
		want string // "" when the variable is known
	}{
		{p + "LOG_FROMAT", p + "LOG_FROMAT is not a certlens setting and is ignored; did you mean CERTLENS_LOG_FORMAT (log.format)?"},
		{p + "MAXCONNS", "did you mean CERTLENS_LIMITS_MAX_CONNS (limits.max_conns)?"},
		{p + "MAX_CONNS", "did you mean CERTLENS_LIMITS_MAX_CONNS (limits.max_conns)?"},
		{p + "IDLE_TIMEOUT", "did you mean CERTLENS_TUNNEL_IDLE_TIMEOUT (tunnel.idle_timeout)?"},
		{p + "EXPECT_CERT", "did you mean CERTLENS_EXPECT_CERTS (expect_certs)?"},
		{p + "ALLOW_PORT", "did you mean CERTLENS_ALLOW_PORTS (allow_ports)?"},
		{p + "DECRYPT_KEYLOG", "did you mean CERTLENS_DECRYPT_KEYLOG_FILE (decrypt.keylog_file)?"},
		{p + "PFX_PASWORD", "did you mean CERTLENS_PFX_PASSWORD?"},
		{p + "CONFG", "did you mean CERTLENS_CONFIG?"},
		{"CERTLENS_LOG_FORMAT", ""},
		{"CERTLENS_LIMITS_MAX_CONNS", ""},
		{"CERTLENS_PFX_PASSWORD", ""},
		{"CERTLENS_CONFIG", ""},
		{"CERTLENS_REQUIRE_PEERS", ""},
		{"CERTLENS_LOAD", ""},
		{"CERTLENS_BENCH_PPROF", ""},
		{"HOME", ""},
		{"X" + p + "LOG_FROMAT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unknownEnv([]string{tt.name + "=x"})
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("warned about a variable certlens uses: %q", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("got %q, want one warning containing %q", got, tt.want)
			}
		})
	}
}

// Every key's own variable is known: none of them warns.
func TestEveryKeyVariableIsKnown(t *testing.T) {
	var env []string
	for _, k := range keys {
		env = append(env, envVar(k.name)+"=1")
	}
	if got := unknownEnv(env); len(got) > 0 {
		t.Errorf("key variables warned about: %q", got)
	}
}

func TestLoadWarnsAboutUnknownVariables(t *testing.T) {
	isolate(t)
	t.Setenv("CERTLENS_"+"LOG_FROMAT", "console")
	c := mustLoad(t)
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "CERTLENS_LOG_FORMAT") {
		t.Errorf("warnings %q", c.Warnings)
	}
	if c.Log.Format != "json" {
		t.Errorf("the misspelt variable set log.format to %q", c.Log.Format)
	}
}

// TestRepositoryVariablesAreKnown scans the repository for CERTLENS_
// variables: each must be a key's, a section's (which Load refuses with
// the keys to set instead), or in otherEnv, so that a variable a test or
// tool starts to read is not reported to users as a misspelling.
func TestRepositoryVariablesAreKnown(t *testing.T) {
	known := slices.Clone(otherEnv)
	for _, k := range keys {
		known = append(known, envVar(k.name))
		if section, _, nested := strings.Cut(k.name, "."); nested {
			known = append(known, envVar(section))
		}
	}
	re := regexp.MustCompile(`CERTLENS_[A-Z0-9_]*[A-Z0-9]`)
	seen := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 1<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, name := range re.FindAllString(string(b), -1) {
			seen[name] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d variables: is the scan looking at the repository?", len(seen))
	}
	for name, path := range seen {
		if !slices.Contains(known, name) {
			t.Errorf("%s (in %s) is neither a key's variable nor in otherEnv: add it there, or certlens will warn about it", name, path)
		}
	}
}
