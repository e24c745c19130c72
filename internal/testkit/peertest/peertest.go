// Package peertest starts real TLS peers (openssl s_server and s_client,
// nginx, Apache, headless Chromium) and loopback captures (tshark) for
// integration tests, on free loopback ports with files in the test's temp
// dir. A missing peer skips
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
	"strconv"
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
	"apache2ctl":         "apache2",
	"apachectl":          "apache2",
	"cat":                "coreutils",
	"certutil":           "libnss3-tools",
	"editcap":            "wireshark-common",
	"initdb":             "postgresql",
	"mariadb":            "mariadb-client",
	"mariadb-install-db": "mariadb-server",
	"mergecap":           "wireshark-common",
	"pk12util":           "libnss3-tools",
	"script":             "bsdutils",
	"sh":                 "dash",
	"sleep":              "coreutils",
	"timeout":            "coreutils",
}

// Require returns the path of binary name on PATH. When it is missing the
// test is skipped, or fails if CERTLENS_REQUIRE_PEERS=1.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	missingPeer(tb, name, packageOf(name))
	return ""
}

// Optional reports whether the part of a test that needs binary name should
// run: when it is installed, and always under CERTLENS_REQUIRE_PEERS=1 (where
// Require then fails). A part left out is logged with its install line, so
// that a pass that ran less says so.
func Optional(tb testing.TB, name string) bool {
	tb.Helper()
	if _, err := exec.LookPath(name); err == nil || os.Getenv(RequireEnv) == "1" {
		return true
	}
	tb.Logf("%s; the part of this test that needs it is left out", installLine(name, packageOf(name)))
	return false
}

func packageOf(name string) string {
	if pkg := debianPackage[name]; pkg != "" {
		return pkg
	}
	return name
}

func installLine(what, pkg string) string {
	return fmt.Sprintf("%s not installed: apt-get install -y %s", what, pkg)
}

// missingPeer skips the test because what is not installed, or fails it
// when CERTLENS_REQUIRE_PEERS=1.
func missingPeer(tb testing.TB, what, pkg string) {
	tb.Helper()
	msg := installLine(what, pkg)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s (%s=1 requires every peer)", msg, RequireEnv)
	}
	tb.Skip(msg)
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

// Port is the port of a peer's host:port address, for a capture filter.
func Port(tb testing.TB, addr string) int {
	tb.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("peertest: %v", err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatalf("peertest: port of %s: %v", addr, err)
	}
	return n
}

// WaitTCP waits until addr accepts a TCP connection. The probe connection is
// closed at once; servers that count connections (-naccept) see it.
func WaitTCP(tb testing.TB, addr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := probe(addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("peertest: %s not accepting after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe opens and closes one TCP connection to addr.
func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
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
	switch {
	case binary == "chromium":
		// Debian's /usr/bin/chromium is a shell wrapper whose own noise can
		// come first; ask the browser itself.
		path = chromiumBinary(tb)
	case !strings.ContainsRune(binary, os.PathSeparator):
		path = Require(tb, binary)
	}
	args, ok := versionArgs[filepath.Base(path)]
	if !ok {
		args = []string{"--version"}
	}
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("peertest: %s %s: %v\n%s%s", path, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	// nginx prints its version on stderr only; tshark prints it on stdout
	// and, as root, a warning on stderr.
	if len(bytes.TrimSpace(out)) == 0 {
		out = stderr.Bytes()
	}
	line, _, _ := strings.Cut(string(bytes.TrimSpace(out)), "\n")
	return strings.TrimSpace(line)
}

// TCPServer accepts on a free loopback port and runs handle on each
// connection, closing it afterwards; it stops with the test. It stands in
// for servers no real peer can play (one that resets, one that echoes).
func TCPServer(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
