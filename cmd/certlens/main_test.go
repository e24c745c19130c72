package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/peertest"
	"github.com/certlens/certlens/internal/pkitest"
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
		{"expect-cert that is no certificate", nil, []string{"serve", "--expect-cert", notACert}, "config: expect_certs: " + notACert + ": neither PEM, DER nor a password-less PKCS#12 file"},
		{"unreadable intercept client cert", []string{"CERTLENS_INTERCEPT_CLIENT_CERTS=*.corp.example=/nonexistent/alice.pem"}, []string{"serve", "--mode", "intercept"}, "config: intercept.client_certs: cannot read"},
		{"intercept client cert without pattern", []string{"CERTLENS_INTERCEPT_CLIENT_CERTS=alice.pem"}, []string{"serve", "--mode", "intercept"}, `intercept.client_certs: "alice.pem" is not HOST_PATTERN=FILE`},
		{"unknown key in file", nil, []string{"serve", "--config", bad}, "config: lisen: unknown key"},
		{"unknown flag", nil, []string{"serve", "--lissen", "x"}, "unknown flag: --lissen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tc.env, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
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
	hs := next("handshake")
	if hs["verdict"] != "403.7" || hs["tls_version"] != "TLS 1.2" || hs["target"] != addr {
		t.Errorf("handshake event %v", hs)
	}
	closed := next("connection closed")
	if closed["conn_id"] != hs["conn_id"] {
		t.Errorf("conn_id %v vs %v", closed["conn_id"], hs["conn_id"])
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
	if !strings.Contains(string(data), `"msg":"handshake"`) || !strings.Contains(string(data), hs["conn_id"].(string)) {
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
	lines  chan map[string]any
	t      *testing.T
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &serveProc{cmd: cmd, stderr: &strings.Builder{}, lines: make(chan map[string]any, 100), t: t}
	cmd.Stderr = sp.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("stdout line is not JSON: %s", sc.Bytes())
				continue
			}
			sp.lines <- m
		}
		close(sp.lines)
	}()
	return sp
}

// next returns the next event with msg, skipping others.
func (sp *serveProc) next(msg string) map[string]any {
	sp.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-sp.lines:
			if !ok {
				sp.t.Fatalf("certlens exited before %q; stderr: %s", msg, sp.stderr.String())
			}
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			sp.t.Fatalf("no %q event; stderr: %s", msg, sp.stderr.String())
		}
	}
}
