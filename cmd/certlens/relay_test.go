package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// TestCurlCannotReachAdminThroughProxy is the first-hour report as a user
// ran it: `curl -x PROXY http://ADMIN/debug/pprof/cmdline` answered 200
// from certlens's own admin server. Plain HTTP now gets a port policy of
// its own, and certlens never relays to its own listeners, even when the
// port is allowed.
func TestCurlCannotReachAdminThroughProxy(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	adminPort := strconv.Itoa(peertest.FreePort(t))
	admin := "127.0.0.1:" + adminPort
	sp := startServe(t, "serve", "--listen", listen, "--admin-listen", admin, "--pprof",
		"--allow-http-ports", "80,8080,"+adminPort, "--allow-ports", "443,"+adminPort)
	sp.next("admin server listening")

	curl := func(args ...string) (status, body string) {
		out, err := exec.Command(curlBin, append([]string{"-sS", "--noproxy", "", "-x", "http://" + listen,
			"-w", "\n%{http_code}"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		return s[i+1:], s[:max(i, 0)]
	}
	if status, body := curl("http://" + admin + "/debug/pprof/cmdline"); status != "403" || !strings.Contains(body, "own listeners") {
		t.Errorf("through the proxy to its admin server: %s %q, want 403", status, body)
	}
	if ev := sp.next("request refused"); !strings.Contains(ev["reason"].(string), "certlens listens") {
		t.Errorf("refusal event %v", ev)
	}
	// A port outside allow_http_ports is refused before any dial.
	if status, body := curl("http://127.0.0.1:22/"); status != "403" || !strings.Contains(body, "allow_http_ports (80,8080,") {
		t.Errorf("port 22: %s %q, want 403 naming allow_http_ports", status, body)
	}
	// CONNECT to the admin port, allowed by allow_ports, still does not tunnel there.
	out, _ := exec.Command(curlBin, "-sS", "--noproxy", "", "-x", "http://"+listen, "-k", "https://"+admin+"/metrics").CombinedOutput()
	if !strings.Contains(string(out), "403") {
		t.Errorf("CONNECT to the admin server: %s, want a 403 from the proxy", out)
	}
}

// TestKeylogAndHTTPPortsRefusedAtStart: a key log that is a directory would
// hold every TLS 1.3 handshake for a secret that never comes and blame the
// browser; it and an empty plain-HTTP port list stop serve at start.
func TestKeylogAndHTTPPortsRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	wantExit2(t, nil, []string{"serve", "--decrypt-keylog", dir},
		`config: decrypt.keylog_file: "`+dir+`" is a directory; give the file that SSLKEYLOGFILE names`)
	wantExit2(t, nil, []string{"serve", "--decrypt-keylog", dir + "/no/such/keys.log"},
		`config: decrypt.keylog_file: "`+dir+`/no/such/keys.log" cannot be created: its directory `+dir+`/no/such does not exist`)
	wantExit2(t, []string{"CERTLENS_ALLOW_HTTP_PORTS= "}, []string{"serve"}, "config: allow_http_ports: empty")
}
