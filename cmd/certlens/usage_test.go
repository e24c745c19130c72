package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// TestUsageErrorsExitTwo runs the binary with the mistakes a new user makes
// on the command line: each exits 2 with one line saying what and what to
// do, nothing on stdout.
func TestUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	caDir := filepath.Join(dir, "ca")
	if _, _, code := run(t, nil, "ca", "init", "--dir", caDir); code != 0 {
		t.Fatalf("ca init exit %d", code)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"nosuch"}, `certlens: unknown command "nosuch" for "certlens" (certlens --help lists the commands)`},
		{"misspelt command", nil, []string{"sevre"}, `unknown command "sevre" for "certlens"; did you mean serve?`},
		{"extra argument to serve", nil, []string{"serve", "now"}, `certlens: serve takes no arguments, got "now"; options are flags (see certlens serve --help)`},
		{"extra argument to version", nil, []string{"version", "x"}, `version takes no arguments, got "x"`},
		{"passwd without a name", nil, []string{"passwd"}, "passwd takes one user NAME, got 0 arguments"},
		{"passwd with two names", nil, []string{"passwd", "alice", "bob"}, "passwd takes one user NAME, got 2 arguments"},
		{"unknown ca subcommand", nil, []string{"ca", "nosuch"}, `unknown command "nosuch" for "certlens ca"`},
		{"misspelt ca subcommand", nil, []string{"ca", "exprot"}, `did you mean export?`},
		{"extra argument to ca init", nil, []string{"ca", "init", "x"}, `ca init takes no arguments, got "x"`},
		{"ca export without a CA", nil, []string{"ca", "export", "--dir", filepath.Join(dir, "none")}, "ca export: no certlens CA in " + filepath.Join(dir, "none") + "; create it with certlens ca init"},
		{"ca init over an existing CA", nil, []string{"ca", "init", "--dir", caDir}, "already exists; use --force to replace it"},
		{"health with two URLs", nil, []string{"health", "a", "b"}, "health takes one URL at most, got 2 arguments"},
		{"health with no URL", nil, []string{"health", "healthz"}, `health: "healthz" is not an http:// URL`},
		{"help on no command", nil, []string{"help", "nosuch"}, `unknown command "nosuch" for "certlens"`},
		{"completion for no shell", nil, []string{"completion", "tcsh"}, `unknown command "tcsh" for "certlens completion"`},
		{"log file in a missing directory", nil, []string{"serve", "--log-file", "/nonexistent/dir/x"}, `config: log.file: cannot create "/nonexistent/dir/x": directory /nonexistent/dir: no such file or directory; create the directory or give another path (from --log-file)`},
		{"log file that is a directory", []string{"CERTLENS_LOG_FILE=" + dir}, []string{"serve"}, `config: log.file: "` + dir + `" is a directory; give a file name (from CERTLENS_LOG_FILE)`},
		{"listen address taken", nil, []string{"serve", "--listen", busy.Addr().String(), "--admin-listen="}, "config: listen: cannot listen on " + busy.Addr().String() + ": bind: address already in use; set another address with --listen"},
		{"admin address taken", nil, []string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)), "--admin-listen", busy.Addr().String()}, "config: admin_listen: cannot listen on " + busy.Addr().String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantExit2(t, tc.env, tc.args, tc.want) })
	}
}

// TestEveryCommandRejectsWrongUse walks the command tree, so that a command
// added later is held to the same rule: an unknown flag, or an argument
// where none is taken, exits 2 with one line.
func TestEveryCommandRejectsWrongUse(t *testing.T) {
	var walk func(c *cobra.Command)
	var paths [][]string
	walk = func(c *cobra.Command) {
		if c.Args == nil {
			t.Errorf("%s has no Args check: cobra would take any argument and ignore it", c.CommandPath())
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	if len(paths) < 10 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"certlens"}, p...), " "), func(t *testing.T) {
			wantExit2(t, nil, append(p, "--no-such-flag"), "unknown flag: --no-such-flag")
		})
	}
}

// TestVersionFlag: --version prints exactly what certlens version prints.
func TestVersionFlag(t *testing.T) {
	want, _, code := run(t, nil, "version")
	if code != 0 {
		t.Fatalf("version exit %d", code)
	}
	for _, flag := range []string{"--version", "-v"} {
		got, stderr, code := run(t, nil, flag)
		if code != 0 || got != want || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", flag, code, got, stderr, want)
		}
	}
}

// TestRootWithoutCommand prints the help and exits 0: not a mistake.
func TestRootWithoutCommand(t *testing.T) {
	out, stderr, code := run(t, nil)
	if code != 0 || !strings.Contains(out, "certlens serve") || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestMisspeltVariableWarns: a CERTLENS_ variable that sets nothing is
// named with the one meant, as a warn event from serve and a line on
// stderr from the other commands; the command still runs.
func TestMisspeltVariableWarns(t *testing.T) {
	misspelt := "CERTLENS_" + "LOG_FROMAT=console"
	want := "is not a certlens setting and is ignored; did you mean CERTLENS_LOG_FORMAT (log.format)?"
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServeEnv(t, []string{misspelt, "CERTLENS_PFX_PASSWORD=x"}, "serve", "--listen", listen, "--admin-listen=")
	if w := sp.next("config warning"); !strings.Contains(fmt.Sprint(w["warning"]), want) || w["level"] != "warn" {
		t.Errorf("warning event %v", w)
	}
	if l := sp.next("listening"); l["addr"] != listen {
		t.Errorf("listening %v", l)
	}

	caDir := t.TempDir()
	if _, _, code := run(t, nil, "ca", "init", "--dir", caDir); code != 0 {
		t.Fatalf("ca init exit %d", code)
	}
	out, stderr, code := run(t, []string{misspelt, "CERTLENS_INTERCEPT_CA_DIR=" + caDir}, "ca", "export")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN CERTIFICATE") {
		t.Errorf("ca export: exit %d, stdout %q", code, out)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "certlens: warning: CERTLENS_") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q, want one warning line", stderr)
	}
}

// TestHelpPointsIntoTheRepository: every document a --help names is in the
// repository, and the certificate flags say every form they take.
func TestHelpPointsIntoTheRepository(t *testing.T) {
	docRef := regexp.MustCompile(`[A-Za-z0-9_.-]+\.(?:md|yaml)\b`)
	var walk func(c *cobra.Command)
	var helps []string
	walk = func(c *cobra.Command) {
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		out, _, code := run(t, nil, args...)
		if code != 0 {
			t.Errorf("%s: exit %d", strings.Join(args, " "), code)
		}
		helps = append(helps, out)
		for _, ref := range docRef.FindAllString(out, -1) {
			if ref == "certlens.yaml" { // the user's own file
				continue
			}
			if _, err := os.Stat(filepath.Join("..", "..", ref)); err != nil {
				t.Errorf("%s names %s, which is not in the repository", strings.Join(args, " "), ref)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	all := strings.Join(helps, "\n")
	for _, want := range []string{
		"--expect-cert stringArray        client certificate file (PEM, DER or PKCS#12 without a password)",
		"CA certificates FILE (PEM, DER or PKCS#12 without a password)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no help says %q", want)
		}
	}
}
