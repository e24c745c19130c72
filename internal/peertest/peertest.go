// Package peertest starts real TLS peers (openssl today; nginx, apache,
// curl, chromium helpers belong here too) for integration tests, on free
// loopback ports with files in the test's temp dir. A missing peer skips
// the test with the package to install, unless CERTLENS_REQUIRE_PEERS=1
// (set in CI) turns that into a failure so a broken image cannot pass
// silently.
package peertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireEnv names the environment variable that makes a missing peer fail
// the test instead of skipping it.
const RequireEnv = "CERTLENS_REQUIRE_PEERS"

// debianPackage maps a binary to the Debian package that ships it, for the
// skip message; binaries not listed ship in a package of their own name.
var debianPackage = map[string]string{
	"apache2ctl": "apache2",
	"apachectl":  "apache2",
	"editcap":    "wireshark-common",
	"mergecap":   "wireshark-common",
}

// Require returns the path of binary name on PATH. When it is missing the
// test is skipped, or fails if CERTLENS_REQUIRE_PEERS=1.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	pkg := debianPackage[name]
	if pkg == "" {
		pkg = name
	}
	msg := fmt.Sprintf("%s not installed: apt-get install %s", name, pkg)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s (%s=1 requires every peer)", msg, RequireEnv)
	}
	tb.Skip(msg)
	return ""
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago. Peers
// that cannot listen on port 0 and report it need one chosen for them; the
// small race with other processes is accepted.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("peertest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts a TCP connection. The probe connection is
// closed at once; servers that count connections (-naccept) see it.
func WaitTCP(tb testing.TB, addr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("peertest: %s not accepting after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// versionArgs is how each binary prints its version; the first line of the
// output is the answer.
var versionArgs = map[string][]string{
	"openssl": {"version"},
	"nginx":   {"-v"},
	"apache2": {"-v"},
}

// Version returns the first line of binary's version output, e.g.
// "OpenSSL 3.0.22 25 Aug 2026 (Library: OpenSSL 3.0.22 25 Aug 2026)", for
// transcript metadata and failure messages. binary is a name or a path.
func Version(tb testing.TB, binary string) string {
	tb.Helper()
	path := binary
	if !strings.ContainsRune(binary, os.PathSeparator) {
		path = Require(tb, binary)
	}
	args, ok := versionArgs[filepath.Base(path)]
	if !ok {
		args = []string{"--version"}
	}
	// nginx prints its version on stderr.
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("peertest: %s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
	line, _, _ := strings.Cut(string(bytes.TrimSpace(out)), "\n")
	return strings.TrimSpace(line)
}
