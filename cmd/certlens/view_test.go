//go:build unix

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// viewEnv fixes the time zone: view prints event times in local time.
var viewEnv = []string{"TZ=UTC", "NO_COLOR=1"}

// analyzedLog writes the JSON events analyze makes of transcripts recorded
// from real peers (a 261-CA list; no certificate sent; TLS 1.3 inferred; a
// renegotiation; no request) to a log file, as serve --log-file writes
// them, and returns its path.
func analyzedLog(t *testing.T) string {
	t.Helper()
	var args []string
	for _, name := range []string{"tls12-260ca-curl-cert.pcap", "tls12-3ca-curl-nocert.pcap", "tls13-3ca-curl-nocert.pcap", "tls12-renegotiation-sclient.pcap", "tls12-norequest-curl.pcap"} {
		args = append(args, abs(t, transcripts+name))
	}
	stdout, stderr, code := run(t, nil, append([]string{"analyze", "--json"}, args...)...)
	if code != 1 || strings.Count(stdout, "\n") != 11 {
		t.Fatalf("analyze --json: exit %d, %d lines, stderr %s", code, strings.Count(stdout, "\n"), stderr)
	}
	path := filepath.Join(t.TempDir(), "handshakes.jsonl")
	if err := os.WriteFile(path, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var summaryLine = regexp.MustCompile(`(?m)^2026-11-25 \d\d:\d\d:\d\d\.\d{3} (INFO |WARN |ERROR) handshake  (.*)  verdict (\S+)`)

// shownVerdicts lists the verdicts of the handshake summary lines in out.
func shownVerdicts(out string) string {
	var vs []string
	for _, m := range summaryLine.FindAllStringSubmatch(out, -1) {
		vs = append(vs, m[3])
	}
	return strings.Join(vs, " ")
}

// TestViewLog reads a log as a user would, with the lines a log collects
// that are not certlens's: each handshake is a summary line with its CA
// names folded after ten and its findings and remedies; every other event
// one line; the strangers are counted on stderr.
func TestViewLog(t *testing.T) {
	path := analyzedLog(t)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "certlens starting\n{\"hello\":\"world\"}\n\n{\"level\":\"info\",\"ts\":\"2026-11-25T09:00:00Z\",\"msg\":\"handshake\",\"verdict\":7}\n")
	fmt.Fprint(f, `{"level":"warn","ts":"2026-11-25T09:00:01Z","msg":"connect refused","client_addr":"127.0.0.1:5","target":"127.0.0.1:25","reason":"port 25 is not in allow_ports (443)"}`) // no final newline
	f.Close()

	stdout, stderr, code := run(t, viewEnv, "view", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if want := "certlens: view: " + path + ": skipped 3 lines that are not certlens JSON events (the first is line 12)\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if got := shownVerdicts(stdout); got != "ok 403.7 403.7 ok ok ok" {
		t.Errorf("verdicts shown %q", got)
	}
	for _, want := range []string{
		"2026-11-25 08:54:55.005 INFO  handshake  127.0.0.1:443 (localhost)  TLS 1.2 (clear)  261 CA names, 60,693 bytes  certificate sent: CN=certlens golden client,O=certlens test  verdict ok (certain)  conn tls12-260ca-curl-cert.pcap#0\n    CA names asked for\n       1  CN=certlens test CA 001,",
		"\n      10  CN=certlens test CA 010,OU=Client Certificate Issuer List Size Test,O=certlens Interoperability Test Authority 010 Inc,L=Cambridge\\, Middlesex Co,ST=Commonwealth of Massachusetts,C=US\n          ... and 251 more\n    Findings\n      WARNING issuer-list-too-large: ",
		"  TLS 1.2 (clear)  3 CA names, 339 bytes  no certificate sent  verdict 403.7 (predicted)  conn tls12-3ca-curl-nocert.pcap#0\n",
		"      ERROR   client-cert-not-sent: The server asked for a client certificate and the client sent\n              none [predicts 403.7]\n",
		"              Remedy: Check that the client has a certificate with its private key, issued under one\n",
		"  TLS 1.3 (inferred)  certificate requested (inferred, request of 390 bytes)  no certificate sent (inferred)  verdict 403.7 (predicted)",
		"  TLS 1.2 renegotiation (inferred)  certificate requested (inferred, request of 391 bytes)  certificate sent (inferred)  verdict ok (predicted)  conn tls12-renegotiation-sclient.pcap#0 #1\n",
		"INFO  connection closed conn_id=tls12-3ca-curl-nocert.pcap#0 mode=analyze client_addr=127.0.0.1:40000 target=127.0.0.1:443 ",
		"2026-11-25 09:00:01.000 WARN  connect refused client_addr=127.0.0.1:5 target=127.0.0.1:25 reason=\"port 25 is not in allow_ports (443)\"\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	if strings.Contains(stdout, "CA 011") || strings.Contains(stdout, "\x1b[") || strings.Contains(stdout, `"level"`) {
		t.Errorf("an 11th CA name, colour or JSON in:\n%s", stdout)
	}

	// The same log on standard input, named or not.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"view", "-"}, {"view"}} {
		out, errOut, code := runIn(t, data, viewEnv, args...)
		if code != 0 || out != stdout || !strings.Contains(errOut, "certlens: view: standard input: skipped 3 lines") {
			t.Errorf("%v on stdin: exit %d, stderr %q, output equal to the file's: %v", args, code, errOut, out == stdout)
		}
	}
}

func TestViewFilters(t *testing.T) {
	path := analyzedLog(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--verdict", "403.7"}, "403.7 403.7"},
		// The renegotiation is read from its record sizes (ok, predicted):
		// no handshake of this log is unknown.
		{[]string{"--verdict", "ok,unknown"}, "ok ok ok ok"},
		{[]string{"--verdict", "ok", "--verdict", "unknown"}, "ok ok ok ok"},
		{[]string{"--problems"}, "403.7 403.7"},
		{[]string{"--verdict", "403.16"}, ""},
		{[]string{"--target", "127.0.0.1:443", "--verdict", "ok"}, "ok ok ok ok"},
		{[]string{"--target", "LOCALHOST"}, "ok 403.7 403.7 ok ok"}, // a renegotiation has no SNI
		{[]string{"--target", "*.corp.example"}, ""},
		{[]string{"--since", "2026-11-25T08:54:57Z"}, "403.7 ok ok"},
		{[]string{"--since", "2026-11-25T08:54:57Z", "--problems"}, "403.7"},
		{[]string{"--since", "1h"}, ""}, // the capture is older
	} {
		stdout, stderr, code := run(t, viewEnv, append(append([]string{"view"}, tc.args...), path)...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
		if got := shownVerdicts(stdout); got != tc.want {
			t.Errorf("%v: shows %q, want %q", tc.args, got, tc.want)
		}
		// A connection closed event carries its connection's verdict: a
		// verdict filter shows it only when that verdict matches.
		for _, line := range strings.Split(stdout, "\n") {
			if len(tc.args) > 0 && tc.args[0] == "--verdict" && strings.Contains(line, "connection closed") && !strings.Contains(line, "verdict=") {
				t.Errorf("%v: a connection closed event without a verdict is shown: %s", tc.args, line)
			}
		}
	}
}

func TestViewUsageErrors(t *testing.T) {
	path := analyzedLog(t)
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"view", missing}, "certlens: view: " + missing + ": no such file"},
		{[]string{"view", "-f", missing}, "certlens: view: " + missing + ": no such file"},
		{[]string{"view", filepath.Dir(missing)}, "is a directory, not a log file"},
		{[]string{"view", "--verdict", "403.8", path}, `--verdict "403.8" is not a verdict; use one of ok, 403.7, 403.13`},
		{[]string{"view", "--since", "yesterday", path}, `--since "yesterday" is neither a duration`},
		{[]string{"view", "--target", "[", path}, `--target "["`},
		{[]string{"view", path, path}, "view reads one log, not 2"},
		{[]string{"view", "--follow=maybe", path}, "invalid argument"},
	} {
		wantExit2(t, nil, tc.args, tc.want)
	}
}

// TestViewFollow follows a log the way tail -f does while it is written
// to: half lines wait for their end, a truncated log is read from its
// start, a rotated one from the new file; Ctrl-C ends it with the count of
// lines skipped.
func TestViewFollow(t *testing.T) {
	events := strings.SplitAfter(strings.TrimSpace(mustRead(t, analyzedLog(t))), "\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "handshakes.jsonl")
	write := func(name, text string, flag int) {
		t.Helper()
		f, err := os.OpenFile(name, flag|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write(path, events[0], os.O_TRUNC) // the 261-CA handshake

	cmd := exec.Command(binary, "view", "-f", "--verdict", "403.7,ok,unknown", path)
	cmd.Env = viewEnv
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// next waits for the next summary line and returns it.
	next := func(what string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("view ended before %s; stderr %s", what, stderr.String())
				}
				if summaryLine.MatchString(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("no summary line for %s; stderr %s", what, stderr.String())
			}
		}
	}
	if l := next("the first event"); !strings.Contains(l, "261 CA names") {
		t.Errorf("first line %q", l)
	}

	// Appended half a line at a time, and a line that is not an event.
	half := len(events[2]) / 2
	write(path, "not json\n"+events[2][:half], os.O_APPEND)
	time.Sleep(300 * time.Millisecond)
	write(path, events[2][half:], os.O_APPEND)
	if l := next("a line written in two halves"); !strings.Contains(l, "3 CA names, 339 bytes") {
		t.Errorf("appended line %q", l)
	}

	// Truncated, then written anew (shorter than what was read).
	write(path, events[4], os.O_TRUNC)
	if l := next("the truncated log"); !strings.Contains(l, "TLS 1.3 (inferred)") {
		t.Errorf("after truncation %q", l)
	}

	// Rotated: the log kept as .1, a new file renamed into its place.
	if err := os.Link(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(path+".new", events[6]+events[7], os.O_TRUNC)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	l1, l2 := next("the rotated log"), next("the rotated log's second event")
	if !strings.Contains(l1, "verdict ok") || !strings.Contains(l2, "renegotiation (inferred)") {
		t.Errorf("after rotation %q, %q", l1, l2)
	}

	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("view -f after Ctrl-C: %v; stderr %s", err, stderr.String())
	}
	for _, want := range []string{
		"certlens: view: " + path + " was truncated; reading from its start\n",
		"certlens: view: " + path + " was replaced (rotated); reading the new file\n",
		"certlens: view: " + path + ": skipped 1 line that is not a certlens JSON event (line 2)\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConsoleFormatIsView runs serve with --log-format console and a log
// file, sends it a refused CONNECT and a tunnel to a TLS server that asks
// for a client certificate with 261 CA names: standard output is what
// certlens view prints of the log file, line for line.
func TestConsoleFormatIsView(t *testing.T) {
	cas := append(pkitest.ManyCAs(t, 260), pkitest.NewCA(t, "certlens view client CA"))
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	serverCA := pkitest.NewCA(t, "certlens view server CA")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCA.NewServer(t, "127.0.0.1").TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool, MaxVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	logFile := filepath.Join(t.TempDir(), "handshakes.jsonl")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	cmd := exec.Command(binary, "serve", "--listen", listen, "--admin-listen=", "--allow-ports", port, "--log-format", "console", "--log-file", logFile)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}, viewEnv...)
	var console, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &console, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	peertest.WaitTCP(t, listen, 10*time.Second)

	if status := tunnel(t, listen, "127.0.0.1:25", nil); !strings.Contains(status, "403") {
		t.Errorf("CONNECT to port 25: %s", status)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	if status := tunnel(t, listen, ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}); !strings.HasPrefix(status, "200") {
		t.Errorf("CONNECT to the TLS server: %s", status)
	}
	time.Sleep(500 * time.Millisecond) // the tunnel's events
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v; stderr %s", err, stderr.String())
	}

	viewed, errOut, code := run(t, viewEnv, "view", logFile)
	if code != 0 || errOut != "" {
		t.Errorf("view: exit %d, stderr %q", code, errOut)
	}
	if console.String() != viewed {
		t.Errorf("console and view of the log file differ:\n--- console\n%s\n--- view\n%s", console.String(), viewed)
	}
	for _, want := range []string{
		" INFO  listening addr=" + listen + " mode=observe ",
		" WARN  connect refused client_addr=127.0.0.1:",
		"  TLS 1.2 (clear)  261 CA names, ",
		"          ... and 251 more\n",
		" INFO  connection closed conn_id=",
	} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}
	if m := summaryLine.FindString(console.String()); m != "" {
		t.Errorf("an event dated in 2026-11-25: %q", m)
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} (WARN |ERROR) handshake  ` + regexp.QuoteMeta(ln.Addr().String()) + `  TLS 1.2 \(clear\)  261 CA names, [\d,]+ bytes  no certificate sent  verdict \S+ \(certain\)  conn \S+$`).MatchString(console.String()) {
		t.Errorf("no summary line for the 261-CA handshake:\n%s", console.String())
	}
}

// tunnel opens a CONNECT tunnel through the proxy and returns the proxy's
// status line; with cfg, it then makes a TLS handshake in the tunnel.
func tunnel(t *testing.T, proxyAddr, target string, cfg *tls.Config) string {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cfg != nil && resp.StatusCode == http.StatusOK {
		// The server wants a certificate this client does not have: the
		// handshake fails, as the test means it to.
		_ = tls.Client(c, cfg).Handshake()
	}
	return resp.Status
}

// TestColourOnATerminal runs view and serve --log-format console on a
// pseudo-terminal (script from util-linux): colour there, none with
// NO_COLOR (and none in a file or pipe: the tests above).
func TestColourOnATerminal(t *testing.T) {
	scriptBin := peertest.Require(t, "script")
	timeoutBin := peertest.Require(t, "timeout")
	path := analyzedLog(t)
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	for _, tc := range []struct {
		cmdline string
		colour  string
	}{
		{binary + " view --problems " + path, "\x1b[31m\x1b[1m403.7\x1b[0m (predicted)"},
		{timeoutBin + " -s INT 1 " + binary + " serve --admin-listen= --log-format console --listen " + listen, "\x1b[1mlistening\x1b[0m"},
	} {
		for _, noColor := range []bool{false, true} {
			c := exec.Command(scriptBin, "-qec", tc.cmdline, "/dev/null")
			c.Dir = t.TempDir()
			c.Env = []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir(), "TERM=xterm", "PATH=/usr/bin:/bin"}
			if noColor {
				c.Env = append(c.Env, "NO_COLOR=1")
			}
			out, _ := c.CombinedOutput()
			if !strings.Contains(string(out), "listening") && !strings.Contains(string(out), "client-cert-not-sent") {
				t.Fatalf("%s: no output:\n%s", tc.cmdline, out)
			}
			if has := strings.Contains(string(out), tc.colour); has == noColor {
				t.Errorf("%s (NO_COLOR %v): colour %v:\n%q", tc.cmdline, noColor, has, out)
			}
			if noColor && strings.Contains(string(out), "\x1b[") {
				t.Errorf("%s: colour codes with NO_COLOR:\n%q", tc.cmdline, out)
			}
		}
	}

	// `certlens view` typed alone at a terminal would wait for a pipe
	// that is not there: it says what to give instead.
	c := exec.Command(scriptBin, "-qec", binary+" view", "/dev/null")
	c.Env = []string{"HOME=" + t.TempDir(), "TERM=xterm", "PATH=/usr/bin:/bin"}
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "certlens: view: give the log file to read") {
		t.Errorf("view on a terminal without a file: %v\n%s", err, out)
	}
}
