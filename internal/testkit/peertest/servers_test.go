package peertest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// testPKI is a root for servers and clients, a server certificate and a
// client certificate it issued.
type testPKI struct {
	root, server, client *pkitest.Cert
	pool                 *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	root := pkitest.NewCA(t, "peertest root")
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	return testPKI{root: root, server: root.NewServer(t, "localhost"), client: root.NewClient(t, "peertest client"), pool: pool}
}

// get fetches https://addr+path with Go's client, offering cert (if any)
// when asked, and returns the status, the body and the issuer lists of
// every CertificateRequest (renegotiation included).
func (p testPKI) get(t *testing.T, addr, path string, cert *pkitest.Cert) (int, string, [][]string) {
	t.Helper()
	var requests [][]string
	conf := &tls.Config{
		RootCAs:       p.pool,
		ServerName:    "localhost",
		MaxVersion:    tls.VersionTLS12,
		Renegotiation: tls.RenegotiateOnceAsClient,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			var cas []string
			for _, raw := range cri.AcceptableCAs {
				name, err := dnString(raw)
				if err != nil {
					return nil, err
				}
				cas = append(cas, name)
			}
			requests = append(requests, cas)
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			c := cert.TLSCertificate()
			return &c, nil
		},
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	resp, err := client.Get("https://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: body: %v", addr, path, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), requests
}

func TestNginx(t *testing.T) {
	p := newTestPKI(t)
	other := pkitest.NewCA(t, "peertest other CA")
	optional := Nginx(t, NginxConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{other, p.root}, VerifyClient: "optional", Protocols: "TLSv1.2"})
	on := Nginx(t, NginxConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{p.root}, VerifyClient: "on"})
	off := Nginx(t, NginxConfig{Cert: p.server})
	tests := []struct {
		name     string
		addr     string
		cert     *pkitest.Cert
		status   int
		body     string
		requests string
	}{
		{"optional with a certificate", optional, p.client, 200, "verify=SUCCESS", "[[CN=peertest other CA CN=peertest root]]"},
		{"optional without one answers 403", optional, nil, 403, "verify=NONE", "[[CN=peertest other CA CN=peertest root]]"},
		{"on with a certificate", on, p.client, 200, "verify=SUCCESS", "[[CN=peertest root]]"},
		{"on without one answers nginx's 400", on, nil, 400, "No required SSL certificate was sent", "[[CN=peertest root]]"},
		{"off asks for nothing", off, p.client, 200, "verify=NONE", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, requests := p.get(t, tt.addr, "/", tt.cert)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
			if got := fmt.Sprint(requests); got != tt.requests {
				t.Errorf("certificate requests %s, want %s", got, tt.requests)
			}
		})
	}
}

func TestApacheAsksBySecureLocation(t *testing.T) {
	p := newTestPKI(t)
	addr := Apache(t, ApacheConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{p.root}, TLS12Only: true})
	tests := []struct {
		name, path string
		body       string
		requests   string
	}{
		{"public page asks for nothing", "/", "verify=NONE subject=(none)", "[]"},
		// Go's client answers the renegotiation: the request comes after
		// the first handshake.
		{"secure location asks by renegotiation", ApacheSecurePath, "verify=SUCCESS subject=CN=peertest client", "[[CN=peertest root]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, requests := p.get(t, addr, tt.path, p.client)
			if status != 200 || body != tt.body {
				t.Errorf("got %d %q, want 200 %q", status, body, tt.body)
			}
			if got := fmt.Sprint(requests); got != tt.requests {
				t.Errorf("certificate requests %s, want %s", got, tt.requests)
			}
		})
	}
}

func TestChromiumSendsItsCertificate(t *testing.T) {
	p := newTestPKI(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.server.TLSCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    p.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Chromium opens connections it never uses; the server's complaints
	// about them are noise.
	quiet := log.New(io.Discard, "", 0)
	srv := &http.Server{ErrorLog: quiet, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			fmt.Fprint(w, "no certificate")
			return
		}
		fmt.Fprintf(w, "certificate %s", r.TLS.PeerCertificates[0].Subject)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	dom := Chromium(t, ChromiumConfig{
		// localhost rather than 127.0.0.1: the policy's origin must match
		// the URL as typed, which this also checks.
		URL:        "https://localhost:" + port + "/",
		ClientCert: p.client, ServerCAs: []*pkitest.Cert{p.root},
	})
	if !strings.Contains(dom, "certificate CN=peertest client") {
		t.Errorf("page does not show the client certificate:\n%s", dom)
	}
}

func TestOpenSSLClient(t *testing.T) {
	p := newTestPKI(t)
	addr, srv := OpenSSLServer(t, OpenSSLServerConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{p.root}, Verify: 1, TLS12: true, WWW: true})
	out, err := OpenSSLClient(t, OpenSSLClientConfig{Connect: addr, Cert: p.client, ServerCAs: []*pkitest.Cert{p.root}, ServerName: "localhost"})
	if err != nil || !strings.Contains(out, "HTTP/1.0 200 ok") || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	if !srv.WaitOutput("depth=0 CN = peertest client", 5*time.Second) {
		t.Errorf("s_server saw no client certificate:\n%s", srv.Output())
	}
	// A server certificate that does not verify fails the client.
	other := pkitest.NewCA(t, "peertest unrelated CA")
	if out, err := OpenSSLClient(t, OpenSSLClientConfig{Connect: addr, ServerCAs: []*pkitest.Cert{other}}); err == nil {
		t.Errorf("s_client accepted an unverifiable server:\n%s", out)
	}
}

// TestPeerVersions logs the version of every peer the integration tests
// run, for the README's "Verified against" table.
func TestPeerVersions(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "tshark", "nginx", "apache2", "chromium"} {
		t.Logf("%-8s %s", bin, Version(t, bin))
	}
}
