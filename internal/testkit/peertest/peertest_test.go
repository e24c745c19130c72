package peertest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// fakeTB records how Require ended without ending the real test.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	fatal   string
	logged  string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	f.logged += fmt.Sprintf(format, args...)
	f.mu.Unlock()
}
func (f *fakeTB) Skip(args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func runFake(f *fakeTB, fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

func TestRequire(t *testing.T) {
	if got := Require(t, "sh"); !strings.HasSuffix(got, "/sh") {
		t.Errorf("Require(sh) = %q", got)
	}
	const missing = "certlens-no-such-peer"
	tests := []struct {
		name      string
		env       string
		wantSkip  bool
		wantFatal bool
	}{
		{"missing peer skips by default", "", true, false},
		{"missing peer fails when peers are required", "1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.env)
			f := &fakeTB{}
			runFake(f, func(tb testing.TB) { Require(tb, missing) })
			want := missing + " not installed: apt-get install -y " + missing
			if tt.wantSkip && f.skipped != want {
				t.Errorf("skip message %q, want %q", f.skipped, want)
			}
			if tt.wantFatal != strings.HasPrefix(f.fatal, want) {
				t.Errorf("fatal %q, want fatal %v", f.fatal, tt.wantFatal)
			}
		})
	}
}

func TestOptional(t *testing.T) {
	// go is on PATH wherever tests run, TestSuiteSkipsWithoutPeers' run
	// included.
	if !Optional(t, "go") {
		t.Error("Optional(go) = false with go installed")
	}
	const missing = "certlens-no-such-peer"
	t.Setenv(RequireEnv, "")
	f := &fakeTB{}
	if Optional(f, missing) || !strings.Contains(f.logged, "apt-get install -y "+missing) {
		t.Errorf("missing peer: Optional true or no install line logged (%q)", f.logged)
	}
	t.Setenv(RequireEnv, "1")
	if !Optional(&fakeTB{}, missing) {
		t.Errorf("missing peer with %s=1: Optional false, want true so that Require fails", RequireEnv)
	}
}

func TestFreePortAndWaitTCP(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("FreePort %d is not free: %v", port, err)
	}
	defer ln.Close()
	WaitTCP(t, ln.Addr().String(), time.Second)
}

func TestProcessOutputWaitAndGroupStop(t *testing.T) {
	p := Start(t, "sh", []string{"-c", "echo out; echo err >&2; exit 3"})
	if err := p.Wait(5 * time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if out := p.Output(); !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Errorf("output %q lacks stdout or stderr", out)
	}

	// A forked grandchild must die with the process group.
	p = Start(t, "sh", []string{"-c", "sleep 60 & echo child $!; wait"})
	if !p.WaitOutput("child ", 5*time.Second) {
		t.Fatalf("no child pid in %q", p.Output())
	}
	line, _, _ := strings.Cut(strings.TrimPrefix(p.Output(), "child "), "\n")
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	if !p.Exited() {
		t.Fatal("process still running after stop")
	}
	deadline := time.Now().Add(3 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived the group stop", child)
		}
		time.Sleep(10 * time.Millisecond)
	}

	p = Start(t, "sleep", []string{"60"})
	if err := p.Wait(50 * time.Millisecond); err == nil {
		t.Error("Wait on a sleeping process returned nil")
	}
}

func TestStdinPipe(t *testing.T) {
	p := Start(t, "cat", nil, WithStdinPipe())
	io.WriteString(p.Stdin, "typed\n")
	if !p.WaitOutput("typed", 5*time.Second) {
		t.Errorf("stdin not delivered: %q", p.Output())
	}
	p.Stdin.Close()
	if err := p.Wait(5 * time.Second); err != nil {
		t.Errorf("cat did not end at end of file: %v", err)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(t, "openssl"); !strings.HasPrefix(v, "OpenSSL ") {
		t.Errorf("Version(openssl) = %q", v)
	}
}

func TestOpenSSLServer(t *testing.T) {
	root := pkitest.NewCA(t, "peertest root")
	inter := root.NewIntermediate(t, "peertest intermediate")
	other := pkitest.NewCA(t, "peertest other CA")
	srv := inter.NewServer(t, "localhost")
	cli := root.NewClient(t, "peertest client")

	tests := []struct {
		name    string
		cfg     OpenSSLServerConfig
		wantCAs []string
		asked   bool
	}{
		{"TLS 1.2 lists both CAs in CAfile order",
			OpenSSLServerConfig{Verify: 1, TLS12: true, ClientCAs: []*pkitest.Cert{other, root}},
			[]string{"CN=peertest other CA", "CN=peertest root"}, true},
		{"TLS 1.3 sends the list too",
			OpenSSLServerConfig{Verify: 1, TLS13: true, ClientCAs: []*pkitest.Cert{root}},
			[]string{"CN=peertest root"}, true},
		{"no_ca_names sends an empty list",
			OpenSSLServerConfig{Verify: 1, TLS12: true, NoCANames: true, ClientCAs: []*pkitest.Cert{root}},
			nil, true},
		{"no verify asks for nothing", OpenSSLServerConfig{TLS12: true}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Cert, cfg.WWW = srv, true
			addr, _ := OpenSSLServer(t, cfg)
			pool := x509.NewCertPool()
			pool.AddCert(root.Cert)
			var asked bool
			var cas []string
			conf := &tls.Config{
				RootCAs:    pool,
				ServerName: "localhost",
				GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
					asked = true
					for _, raw := range cri.AcceptableCAs {
						name, err := dnString(raw)
						if err != nil {
							return nil, err
						}
						cas = append(cas, name)
					}
					c := cli.TLSCertificate()
					return &c, nil
				},
			}
			conn, err := tls.Dial("tcp", addr, conf)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().PeerCertificates; len(got) != 2 || got[0].Equal(got[1]) {
				t.Errorf("server sent %d certificates, want leaf and intermediate", len(got))
			}
			io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.HasPrefix(status, "HTTP/1.0 200") {
				t.Fatalf("status %q, %v", status, err)
			}
			if asked != tt.asked || strings.Join(cas, "|") != strings.Join(tt.wantCAs, "|") {
				t.Errorf("asked %v with CAs %q, want %v with %q", asked, cas, tt.asked, tt.wantCAs)
			}
		})
	}
}

// dnString turns a DER Name from a CertificateRequest into RFC 4514 text.
func dnString(der []byte) (string, error) {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil || len(rest) > 0 {
		return "", fmt.Errorf("bad DN (%d trailing bytes): %v", len(rest), err)
	}
	var name pkix.Name
	name.FillFromRDNSequence(&seq)
	return name.String(), nil
}
