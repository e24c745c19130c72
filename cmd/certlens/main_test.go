package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

var binary string

// TestMain builds the real binary once: these tests run certlens as a user
// does, flags, exit codes, signals and all.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "certlens-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "certlens")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, nil, env, args...)
}

// wantExit2 runs certlens and checks that it exits 2 with one line on
// stderr containing want, and nothing on stdout.
func wantExit2(t *testing.T, env, args []string, want string) {
	t.Helper()
	stdout, stderr, code := run(t, env, args...)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q, want one line containing %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
}

func TestBadConfigExitsTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("lisen: 127.0.0.1:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notACert := filepath.Join(dir, "alice.pem")
	if err := os.WriteFile(notACert, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown mode", nil, []string{"serve", "--mode", "mirror"}, `certlens: config: mode: "mirror" is not a mode`},
		{"bad address", nil, []string{"serve", "--listen", "localhost"}, "certlens: config: listen:"},
		{"bad port list", []string{"CERTLENS_ALLOW_PORTS=443,abc"}, []string{"serve"}, `allow_ports: "abc" is not a port or range (from CERTLENS_ALLOW_PORTS)`},
		{"unreadable expect-cert", nil, []string{"serve", "--expect-cert", "/nonexistent/alice.pem"}, "expect_certs:"},
		{"expect-cert that is no certificate", nil, []string{"serve", "--expect-cert", notACert}, "config: expect_certs: " + notACert + ": not a certificate: a text file without a -----BEGIN CERTIFICATE----- line"},
		{"unreadable intercept client cert", []string{"CERTLENS_INTERCEPT_CLIENT_CERTS=*.corp.example=/nonexistent/alice.pem"}, []string{"serve", "--mode", "intercept"}, "config: intercept.client_certs: cannot read"},
		{"intercept client cert without pattern", []string{"CERTLENS_INTERCEPT_CLIENT_CERTS=alice.pem"}, []string{"serve", "--mode", "intercept"}, `intercept.client_certs: "alice.pem" is not HOST_PATTERN=FILE`},
		{"unknown key in file", nil, []string{"serve", "--config", bad}, "config: lisen: unknown key"},
		{"unknown flag", nil, []string{"serve", "--lissen", "x"}, "unknown flag: --lissen"},
		{"open relay", nil, []string{"serve", "--listen", "0.0.0.0:8080", "--admin-listen", ""}, "config: listen: 0.0.0.0:8080 is reachable from other machines and nothing limits who may use the proxy"},
		{"password instead of a hash", []string{"CERTLENS_ACCESS_USERS=alice:hunter2"}, []string{"serve"}, `config: access.users: user "alice": the password is not a bcrypt hash`},
		{"passwd without a password", nil, []string{"passwd", "alice"}, "passwd: no password on standard input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantExit2(t, tc.env, tc.args, tc.want) })
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "certlens ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %d %q", code, out)
	}
}

// TestServeEndToEnd runs `certlens serve` with real peers: openssl s_server
// asking for a certificate, curl through the proxy, events on stdout and in
// --log-file, and a clean stop on SIGTERM.
func TestServeEndToEnd(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	ca := pkitest.NewCA(t, "certlens cli CA")
	dir := t.TempDir()
	pkitest.WritePEM(t, filepath.Join(dir, "ca.pem"), ca)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: ca.NewServer(t, "127.0.0.1"), ClientCAs: []*pkitest.Cert{ca}, Verify: 1, TLS12: true, WWW: true,
	})
	_, port, _ := strings.Cut(addr, ":")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	logFile := filepath.Join(dir, "events.jsonl")

	sp := startServe(t, "serve", "--listen", listen, "--admin-listen=", "--allow-ports", port, "--log-file", logFile)
	cmd, next, stderr := sp.cmd, sp.next, sp.stderr
	if l := next("listening"); l["addr"] != listen {
		t.Errorf("listening on %v", l["addr"])
	}

	out, err := exec.Command(curlBin, "-sS", "--noproxy", "", "-x", "http://"+listen, "--cacert", filepath.Join(dir, "ca.pem"), "https://"+addr+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	hs := sp.nextHandshake()
	if hs.Verdict != "403.7" || hs.TLSVersion != "TLS 1.2" || hs.Target != addr {
		t.Errorf("handshake event %+v", hs)
	}
	closed := sp.nextClosed()
	if closed.ConnID != hs.ConnID {
		t.Errorf("conn_id %v vs %v", closed.ConnID, hs.ConnID)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("stopped")
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}

	info, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("log file mode %o, want 600", perm)
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), `"msg":"handshake"`) || !strings.Contains(string(data), hs.ConnID) {
		t.Errorf("log file lacks the handshake event:\n%s", data)
	}
}

func TestConsoleFormat(t *testing.T) {
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	cmd := exec.Command(binary, "serve", "--listen", listen, "--admin-listen=", "--log-format", "console")
	cmd.Env = []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}
	cmd.Dir = t.TempDir()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peertest.WaitTCP(t, listen, 10*time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	first := strings.SplitN(out.String(), "\n", 2)[0]
	if strings.HasPrefix(first, "{") || !strings.Contains(first, "listening") || !strings.Contains(first, "INFO") {
		t.Errorf("console output %q", first)
	}
}

// serveProc is a running `certlens serve` whose stdout events are read as they come.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	lines  chan []byte
	t      *testing.T
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with more environment variables.
func startServeEnv(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &serveProc{cmd: cmd, stderr: &strings.Builder{}, lines: make(chan []byte, 100), t: t}
	cmd.Stderr = sp.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	src := invariant.NewSource(t)
	go func() {
		sc := bufio.NewScanner(stdout)
		// An event with a 60 KB issuer list is a longer line than the default.
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			src.Line(sc.Bytes())
			if !json.Valid(sc.Bytes()) {
				t.Errorf("stdout line is not JSON: %s", sc.Bytes())
				continue
			}
			sp.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(sp.lines)
	}()
	return sp
}

// nextLine returns the next line with msg, decoded, skipping others.
func (sp *serveProc) nextLine(msg string) eventLine {
	sp.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case raw, ok := <-sp.lines:
			if !ok {
				sp.t.Fatalf("certlens exited before %q; stderr: %s", msg, sp.stderr.String())
			}
			l, err := decodeLine(raw)
			if err != nil {
				sp.t.Fatalf("%v: %s", err, raw)
			}
			if l.Msg == msg {
				return l
			}
		case <-timeout:
			sp.t.Fatalf("no %q event; stderr: %s", msg, sp.stderr.String())
		}
	}
}

// next returns the next line with msg, for lines no event type describes
// ("listening", "config reloaded", ...).
func (sp *serveProc) next(msg string) map[string]any {
	sp.t.Helper()
	if msg == "handshake" || msg == "connection closed" {
		sp.t.Fatalf("%s events have a type: read them with nextHandshake or nextClosed", msg)
	}
	return sp.nextLine(msg).fields(sp.t)
}

// nextHandshake returns the next handshake event.
func (sp *serveProc) nextHandshake() *event.Handshake {
	sp.t.Helper()
	return sp.nextLine("handshake").Handshake
}

// nextClosed returns the next connection closed event.
func (sp *serveProc) nextClosed() *event.Closed {
	sp.t.Helper()
	return sp.nextLine("connection closed").Closed
}

// TestPasswdThenServeWithAuth: the hash certlens passwd prints is what
// access.users takes; a non-loopback listener with users starts.
func TestPasswdThenServeWithAuth(t *testing.T) {
	cmd := exec.Command(binary, "passwd", "alice")
	cmd.Stdin = strings.NewReader("correct horse\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("passwd: %v", err)
	}
	entry := strings.TrimSpace(string(out))
	name, hash, _ := strings.Cut(entry, ":")
	if name != "alice" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
		t.Fatalf("passwd printed %q", entry)
	}
	curlBin := peertest.Require(t, "curl")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }))
	defer upstream.Close()
	conf := filepath.Join(t.TempDir(), "certlens.yaml")
	if err := os.WriteFile(conf, []byte("access:\n  users: ['"+entry+"']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(peertest.FreePort(t))
	_, upPort, _ := net.SplitHostPort(strings.TrimPrefix(upstream.URL, "http://"))
	sp := startServe(t, "serve", "--config", conf, "--listen", "0.0.0.0:"+port, "--admin-listen=", "--allow-http-ports", upPort)
	if l := sp.next("listening"); l["auth"] != true {
		t.Errorf("listening event %v, want auth true", l)
	}
	fetch := func(user string) string {
		args := []string{"-sS", "--noproxy", "", "-x", "http://127.0.0.1:" + port, "-w", "%{http_code}", "-o", "/dev/null"}
		if user != "" {
			args = append(args, "--proxy-user", user)
		}
		out, err := exec.Command(curlBin, append(args, upstream.URL)...).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		return string(out)
	}
	if got := fetch(""); got != "407" {
		t.Errorf("without credentials: %s, want 407", got)
	}
	if got := fetch("alice:correct horse"); got != "200" {
		t.Errorf("with credentials: %s, want 200", got)
	}
}

// TestLogFileUnwritable: with log.file on a full disk (/dev/full) serve
// keeps relaying, stdout keeps the events, stderr says what is lost and
// /metrics counts it.
func TestLogFileUnwritable(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here to stand for a full disk")
	}
	curlBin := peertest.Require(t, "curl")
	upstream := peertest.TCPServer(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	_, upPort, _ := strings.Cut(upstream, ":")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServe(t, "serve", "--listen", listen, "--admin-listen", admin, "--allow-ports", upPort, "--log-file", "/dev/full")
	sp.next("listening")
	for i := range 2 {
		// curl's telnet:// speaks raw TCP through the CONNECT tunnel (-p).
		cmd := exec.Command(curlBin, "-sS", "--noproxy", "", "-p", "-x", "http://"+listen, "--max-time", "5", "telnet://"+upstream)
		cmd.Stdin = strings.NewReader("ping\n")
		out, _ := cmd.Output()
		if string(out) != "ping\n" {
			t.Fatalf("tunnel %d echoed %q", i, out)
		}
		sp.nextClosed()
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var metrics strings.Builder
	_, _ = io.Copy(&metrics, resp.Body)
	if !strings.Contains(metrics.String(), "certlens_log_write_errors_total") || strings.Contains(metrics.String(), "certlens_log_write_errors_total 0\n") {
		t.Errorf("metrics do not count the lost events:\n%s", grepLines(metrics.String(), "log_write"))
	}
	if !strings.Contains(sp.stderr.String(), "certlens: log.file /dev/full:") {
		t.Errorf("stderr does not report the unwritable file: %q", sp.stderr.String())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Observe mode runs on one P unless GOMAXPROCS says otherwise; intercept
// mode keeps every core.
func TestServeGOMAXPROCS(t *testing.T) {
	for _, c := range []struct {
		env  []string
		args []string
		want float64
	}{
		{nil, nil, 1},
		{[]string{"GOMAXPROCS=2"}, nil, 2},
		{[]string{"CERTLENS_INTERCEPT_CA_DIR=" + t.TempDir()}, []string{"--mode", "intercept"}, float64(runtime.NumCPU())},
	} {
		listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
		sp := startServeEnv(t, c.env, append([]string{"serve", "--listen", listen, "--admin-listen="}, c.args...)...)
		if got := sp.next("listening")["gomaxprocs"]; got != c.want {
			t.Errorf("env %v args %v: gomaxprocs %v, want %v", c.env, c.args, got, c.want)
		}
		_ = sp.cmd.Process.Kill()
	}
}
