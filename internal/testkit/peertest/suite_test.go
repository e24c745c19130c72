package peertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// bareEnv marks the run that TestSuiteSkipsWithoutPeers starts, so that
// the test does not start itself again inside it.
const bareEnv = "CERTLENS_BARE_SUITE"

// The skip messages of TestSuiteSkipsWithoutPeers: outside CI, and inside
// the run it started.
const (
	onlyInCI = "runs the whole suite again without peers: only with " + RequireEnv + "=1, as in CI"
	inside   = "inside the run " + bareEnv + "=1 started"
)

// nonPeerSkips are the reasons a test may skip on a bare machine other than
// a missing peer; each names what the machine lacks that is not a package.
var nonPeerSkips = regexp.MustCompile(strings.Join([]string{
	regexp.QuoteMeta(onlyInCI),
	regexp.QuoteMeta(inside),
	`Docker engine|docker not installed`, // TestDockerfileBuilds: an engine, not a package, is what is missing
	`no IPv6 loopback`,
	`no /dev/full`,
	`not with -short`,                  // the suite runs with -short below
	`CERTLENS_EVENTS_CHECK is not set`, // the invariant check runs after the suite, in its own step
}, "|"))

// TestSuiteSkipsWithoutPeers runs `go test -short -count=1 ./...` on the
// whole module with a PATH that holds the go command and nothing else, as on
// a machine where no peer is installed and CERTLENS_REQUIRE_PEERS is unset:
// the suite must pass, every test that needs a peer skipping with the
// apt-get line that installs it. It runs in CI, where the peers are all
// installed and would otherwise hide a test that fails without them.
func TestSuiteSkipsWithoutPeers(t *testing.T) {
	if os.Getenv(bareEnv) == "1" {
		t.Skip(inside)
	}
	if os.Getenv(RequireEnv) != "1" {
		t.Skip(onlyInCI)
	}
	if testing.Short() {
		t.Skip("the whole suite is not short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	if goBin, err = filepath.EvalSymlinks(goBin); err != nil {
		t.Fatal(err)
	}
	// A link to the go binary is all go needs: it finds its GOROOT from
	// the link's target, and without a C compiler it builds with cgo off.
	bare := t.TempDir()
	if err := os.Symlink(goBin, filepath.Join(bare, "go")); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}

	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		// Leave time to report what the suite printed before the test
		// binary's own timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bare, "go"), "test", "-short", "-count=1", "-p", "1", "-json", "./...")
	cmd.Dir = root
	cmd.Env = append(withoutEnv(os.Environ(), "PATH", RequireEnv, bareEnv, "CGO_ENABLED"),
		"PATH="+bare, bareEnv+"=1", "CGO_ENABLED=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// On a timeout, stop the test binaries go started too.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { signalGroup(cmd, true); return nil }
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// In CI this runs beside the real suite, whose tests time idle
	// timeouts and resets on the same 2 cores: -p 1, at a lower priority.
	lowerPriority(cmd.Process.Pid)
	runErr := cmd.Wait()
	took := time.Since(start).Round(time.Second)

	r := readTestJSON(t, stdout.Bytes())
	t.Logf("go test -short -count=1 ./... with PATH=%s: %v, %d passed, %d skipped", bare, took, r.passed, len(r.skips))
	if runErr != nil {
		t.Errorf("go test ./... without peers: %v\n%s", runErr, stderr.Bytes())
	}
	for _, name := range r.failed {
		t.Errorf("without peers, %s failed:\n%s", name, r.output[name])
	}
	if len(r.failed) == 0 {
		for _, l := range r.failLines {
			t.Errorf("without peers: %s", l)
		}
	}
	var names []string
	for name := range r.skips {
		names = append(names, name)
	}
	sort.Strings(names)
	sawOpenSSL := false
	for _, name := range names {
		reason := r.skips[name]
		switch {
		case strings.Contains(reason, "not installed: apt-get install -y "):
			sawOpenSSL = sawOpenSSL || strings.Contains(reason, "apt-get install -y openssl")
		case nonPeerSkips.MatchString(reason):
		default:
			t.Errorf("%s skipped without its apt-get install -y line: %q", name, reason)
		}
		t.Logf("skipped %s: %s", name, strings.TrimSpace(reason))
	}
	if !sawOpenSSL {
		t.Errorf("no test skipped for want of openssl: the run still found the peers (PATH=%s)", bare)
	}
}

// testRun is what readTestJSON gathered from go test -json.
type testRun struct {
	passed    int
	failed    []string          // "pkg TestName" of each failed test, or "pkg" for a package
	skips     map[string]string // "pkg TestName" -> its output
	output    map[string]string // "pkg TestName" -> its output
	failLines []string          // FAIL or panic lines from anywhere
}

var failLine = regexp.MustCompile(`^(--- )?FAIL\b|^panic: `)

func readTestJSON(t *testing.T, out []byte) testRun {
	t.Helper()
	r := testRun{skips: map[string]string{}, output: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Action, Package, Test, Output string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("go test -json printed %q: %v", sc.Text(), err)
		}
		name := e.Package
		if e.Test != "" {
			name += " " + e.Test
		}
		switch e.Action {
		case "output", "build-output":
			r.output[name] += e.Output
			if failLine.MatchString(strings.TrimSpace(e.Output)) {
				r.failLines = append(r.failLines, name+": "+strings.TrimSpace(e.Output))
			}
		case "pass":
			if e.Test != "" {
				r.passed++
			}
		case "skip":
			if e.Test != "" {
				r.skips[name] = skipReason(r.output[name])
			}
		case "fail", "build-fail":
			r.failed = append(r.failed, name)
		}
	}
	return r
}

// skipReason is a skipped test's output without go test's own lines.
func skipReason(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "=== ") && !strings.HasPrefix(s, "--- ") {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// withoutEnv returns env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	var kept []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			kept = append(kept, kv)
		}
	}
	return kept
}
