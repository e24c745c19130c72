package peertest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// ChromiumPolicyDir is where Debian's Chromium reads mandatory policies.
// It is machine-wide, so the Chromium helper writes a uniquely named file
// there for the length of one run only, and removes it.
const ChromiumPolicyDir = "/etc/chromium/policies/managed"

// ChromiumConfig describes one page load by headless Chromium.
type ChromiumConfig struct {
	// URL is the page to load. Required.
	URL string
	// Proxy is the HOST:PORT of an HTTP proxy that every request goes
	// through, loopback included; "" connects directly.
	Proxy string
	// ClientCert, when set, is imported with its chain into the NSS
	// database of a fresh HOME, and an AutoSelectCertificateForUrls policy
	// for URL's origin lets Chromium send it without a prompt, provided the
	// server's issuer list lets Chromium consider it at all.
	ClientCert *pkitest.Cert
	// ServerCAs are trusted for server certificates in that NSS database.
	// When empty, server certificate errors are ignored instead.
	ServerCAs []*pkitest.Cert
	// Home, when set, is a HOME the test prepared, with its NSS database
	// in .pki/nssdb (NewNSSDB): Chromium offers the certificates in it.
	Home string
	// AutoSelect writes the AutoSelectCertificateForUrls policy for URL's
	// origin even without ClientCert (for the certificates of Home).
	AutoSelect bool
	// Timeout bounds the run; 0 means 90 seconds (a cold start on a busy
	// two-core machine has been seen to take 25).
	Timeout time.Duration
	// Extra command line switches, appended before the URL.
	Extra []string
}

// Chromium loads cfg.URL in headless Chromium with a fresh HOME and
// profile, and returns the page's DOM as --dump-dom prints it (an error
// page's DOM when the load failed). Chromium and everything it spawned is
// stopped when it is done or timed out.
func Chromium(tb testing.TB, cfg ChromiumConfig) string {
	tb.Helper()
	bin := chromiumBinary(tb)
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		tb.Fatalf("peertest: ChromiumConfig.URL %q is not an absolute URL (%v)", cfg.URL, err)
	}
	home := cfg.Home
	if home == "" {
		home = tb.TempDir()
		NewNSSDB(tb, home)
	}
	dir := filepath.Join(home, ".pki", "nssdb")
	nssDB := "sql:" + dir
	certutil := Require(tb, "certutil")
	if cfg.ClientCert != nil {
		importClientCert(tb, dir, cfg.ClientCert)
	}
	for i, ca := range cfg.ServerCAs {
		path := filepath.Join(home, "server-ca-"+strconv.Itoa(i)+".pem")
		pkitest.WritePEM(tb, path, ca)
		// C,,: a trusted CA for TLS servers only.
		runTool(tb, certutil, "-A", "-d", nssDB, "-n", "certlens server CA "+strconv.Itoa(i), "-t", "C,,", "-i", path)
	}

	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-extensions", "--disable-default-apps",
		// No keyring on a test machine: without this Chromium waits for
		// one over D-Bus.
		"--password-store=basic",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}
	if cfg.Proxy != "" {
		// <-loopback> removes Chromium's implicit bypass of localhost and
		// 127.0.0.1, so the test servers are reached through the proxy.
		args = append(args, "--proxy-server=http://"+cfg.Proxy, "--proxy-bypass-list=<-loopback>")
	} else {
		// Whatever Chromium still fetches in the background must not leave
		// the machine: names other than loopback do not resolve.
		args = append(args, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1")
	}
	if len(cfg.ServerCAs) == 0 {
		args = append(args, "--ignore-certificate-errors")
	}
	args = append(args, cfg.Extra...)
	args = append(args, "--dump-dom", cfg.URL)

	if cfg.ClientCert != nil || cfg.AutoSelect {
		// Chromium merges the files of the policy directory, the last one
		// winning a conflict, so concurrent runs (tests of several
		// packages) would select for each other's origins: one at a time.
		unlock := lockFile(tb, filepath.Join(os.TempDir(), "certlens-chromium-policy.lock"))
		defer unlock()
		remove := writeAutoSelectPolicy(tb, u.Scheme+"://"+u.Host)
		defer remove()
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	var dom syncBuffer
	p := Start(tb, bin, args, WithDir(home), WithStdout(&dom),
		// Chromium finds the NSS database under $HOME/.pki/nssdb; its
		// caches and config follow HOME too.
		WithEnv("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache")))
	if err := p.Wait(timeout); err != nil {
		tb.Fatalf("peertest: chromium %s: %v\n%s", cfg.URL, err, p.tail(tailBytes))
	}
	return dom.String()
}

// chromiumBinary returns the browser itself. Debian's /usr/bin/chromium is
// a shell wrapper that sources /etc/chromium.d, which adds switches
// (extensions, remote extensions) a test does not want.
func chromiumBinary(tb testing.TB) string {
	tb.Helper()
	wrapper := Require(tb, "chromium")
	const debian = "/usr/lib/chromium/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	return wrapper
}

// importClientCert imports c's key, c, and its issuers up to the root (so
// that Chromium can match an issuer list naming any of them).
func importClientCert(tb testing.TB, dir string, c *pkitest.Cert) {
	tb.Helper()
	NSSImportIdentity(tb, dir, c, "certlens client", c.Chain()[1:]...)
}

// writeAutoSelectPolicy makes Chromium send, without a prompt, the first
// certificate it considers for origin. It returns the function that
// removes the policy file again.
func writeAutoSelectPolicy(tb testing.TB, origin string) (remove func()) {
	tb.Helper()
	rule, err := json.Marshal(map[string]any{"pattern": origin, "filter": map[string]any{}})
	if err != nil {
		tb.Fatal(err)
	}
	// The policy's value is a list of JSON objects, each written as a string.
	doc, err := json.Marshal(map[string][]string{"AutoSelectCertificateForUrls": {string(rule)}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(ChromiumPolicyDir, 0o755); err != nil {
		cannotRun(tb, "cannot create Chromium's policy directory (run as root): "+err.Error())
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	path := filepath.Join(ChromiumPolicyDir, "certlens-test-"+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:])+".json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		cannotRun(tb, "cannot write a Chromium policy (run as root): "+err.Error())
	}
	tb.Logf("peertest: Chromium policy %s: %s", path, doc)
	removed := false
	remove = func() {
		if !removed {
			removed = true
			_ = os.Remove(path)
		}
	}
	// Also at the end of the test, should the run stop with a panic.
	tb.Cleanup(remove)
	return remove
}

// runTool runs a short command-line tool, failing the test with its output.
func runTool(tb testing.TB, bin string, args ...string) {
	tb.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("peertest: %s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

// cannotRun skips a test that this machine cannot run, or fails it when
// every peer is required.
func cannotRun(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("peertest: %s (%s=1 requires every peer)", why, RequireEnv)
	}
	tb.Skip("peertest: " + why)
}
