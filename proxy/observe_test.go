package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

type pki struct {
	serverCA, clientCA, other1, other2 *pkitest.Cert
	server, client                     *pkitest.Cert
	dir                                string
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir()}
	p.serverCA = pkitest.NewCA(t, "certlens test server CA")
	p.clientCA = pkitest.NewCA(t, "certlens test client CA")
	p.other1 = pkitest.NewCA(t, "certlens unrelated CA one")
	p.other2 = pkitest.NewCA(t, "certlens unrelated CA two")
	p.server = p.serverCA.NewServer(t, "127.0.0.1")
	p.client = p.clientCA.NewClient(t, "alice@example.test")
	pkitest.WritePEM(t, filepath.Join(p.dir, "server-ca.pem"), p.serverCA)
	return p
}

func (p *pki) clientFiles(t *testing.T) []string {
	cert, key := p.client.WriteFiles(t, p.dir, "client")
	return []string{"--cert", cert, "--key", key}
}

func TestObserveTLS12MutualAuthOpenSSL(t *testing.T) {
	p := newPKI(t)
	cas := []*pkitest.Cert{p.other1, p.clientCA, p.other2}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: p.server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true,
	})
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	url := "https://" + addr + "/"

	wantBytes := 0
	var wantDNs []string
	for _, ca := range cas {
		wantBytes += 2 + len(ca.Cert.RawSubject)
		wantDNs = append(wantDNs, ca.Cert.Subject.String())
	}

	t.Run("with certificate", func(t *testing.T) {
		args := append([]string{"--cacert", filepath.Join(p.dir, "server-ca.pem"), "--tlsv1.2", "--tls-max", "1.2"}, p.clientFiles(t)...)
		out, stderr, err := curl(t, proxyAddr, append(args, url)...)
		if err != nil || !strings.Contains(out, "s_server") {
			t.Fatalf("curl: %v %s\n%s", err, stderr, out)
		}
		e := ev.waitHandshakes(t, 1)[0]
		cr := e.CertRequest
		if cr == nil {
			t.Fatalf("no cert_request: %+v", e)
		}
		if cr.IssuerCount != 3 {
			t.Errorf("issuer_count %v", cr.IssuerCount)
		}
		if cr.IssuerBytes != wantBytes {
			t.Errorf("issuer_bytes %v, want %d", cr.IssuerBytes, wantBytes)
		}
		if !slices.Equal(cr.Issuers, wantDNs) {
			t.Errorf("issuers %v, want %v", cr.Issuers, wantDNs)
		}
		if e.ClientCert == nil || !e.ClientCert.Sent {
			t.Errorf("client_cert %+v", e.ClientCert)
		}
		if leafSubject(e.ClientCert) != "CN=alice@example.test" {
			t.Errorf("client_cert %+v", e.ClientCert)
		}
		if level := ev.levelOf(t, e); e.Verdict != "ok" || e.Visibility != "clear" || e.TLSVersion != "TLS 1.2" || level != "info" {
			t.Errorf("verdict %v visibility %v version %v level %v", e.Verdict, e.Visibility, e.TLSVersion, level)
		}
		closed := ev.waitClosed(t, 1)[0]
		if closed.ConnID != e.ConnID || closed.Handshakes != 1 {
			t.Errorf("closed %+v", closed)
		}
	})

	t.Run("without certificate", func(t *testing.T) {
		out, stderr, err := curl(t, proxyAddr, "--cacert", filepath.Join(p.dir, "server-ca.pem"), "--tlsv1.2", "--tls-max", "1.2", url)
		if err != nil || !strings.Contains(out, "s_server") {
			t.Fatalf("curl: %v %s", err, stderr)
		}
		e := ev.waitHandshakes(t, 2)[1]
		if level := ev.levelOf(t, e); e.ClientCert == nil || e.ClientCert.Sent || e.Verdict != "403.7" || e.VerdictCertain || level != "warn" {
			t.Errorf("client_cert %+v verdict %v certain %v level %v", e.ClientCert, e.Verdict, e.VerdictCertain, level)
		}
		ids := findingIDs(e)
		if !strings.Contains(strings.Join(ids, ","), "client-cert-not-sent") {
			t.Errorf("findings %v", ids)
		}
	})
}

func TestTunnelIsTransparent(t *testing.T) {
	const size = 50 << 20
	ca := pkitest.NewCA(t, "certlens transparency CA")
	srvCert := ca.NewServer(t, "127.0.0.1")
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + i>>11)
	}
	want := sha256.Sum256(payload)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert.TLSCertificate()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	dir := t.TempDir()
	pkitest.WritePEM(t, filepath.Join(dir, "ca.pem"), ca)
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	outFile := filepath.Join(dir, "download")
	for _, v := range []string{"1.2", "1.3"} {
		_, stderr, err := curl(t, proxyAddr, "--cacert", filepath.Join(dir, "ca.pem"), "--tlsv"+v, "--tls-max", v, "-o", outFile, "https://"+ln.Addr().String()+"/")
		if err != nil {
			t.Fatalf("curl TLS %s: %v %s", v, err, stderr)
		}
		got, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(got); sum != want {
			t.Fatalf("TLS %s: downloaded %d bytes with sha256 %s, want %d bytes %s", v, len(got), hex.EncodeToString(sum[:]), size, hex.EncodeToString(want[:]))
		}
	}
	closed := ev.waitClosed(t, 2)
	for _, c := range closed {
		if c.BytesDown < size {
			t.Errorf("connection closed counts %v bytes down", c.BytesDown)
		}
	}
}

func TestNonTLSTunnelFlows(t *testing.T) {
	addr := tcpServer(t, echo)
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The CONNECT and the first tunnel bytes in one write: they must not be lost.
	msg := "SSH-2.0-OpenSSH_9.2 hello through the tunnel\r\n"
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n%s", addr, addr, msg)
	buf := make([]byte, 0, 256)
	tmp := make([]byte, 256)
	for !strings.Contains(string(buf), msg) {
		n, err := c.Read(tmp)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, buf)
		}
		buf = append(buf, tmp[:n]...)
	}
	if !strings.HasPrefix(string(buf), "HTTP/1.1 200") {
		t.Errorf("reply %q", buf)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
	closed := ev.waitClosed(t, 1)[0]
	if !strings.Contains(closed.NotTLS, `starts with "SSH-2"`) {
		t.Errorf("not_tls %q", closed.NotTLS)
	}
	if n := len(ev.handshakes(t)); n != 0 {
		t.Errorf("%d handshake events for a non-TLS tunnel", n)
	}
}

func TestConnectToDisallowedPort(t *testing.T) {
	proxyAddr, ev := startProxy(t, Options{AllowPort: func(p int) bool { return p == 443 }, AllowPortsText: "443"})
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
	reply, _ := io.ReadAll(io.LimitReader(c, 4096))
	if !strings.HasPrefix(string(reply), "HTTP/1.1 403") || !strings.Contains(string(reply), "port 22 is not in allow_ports (443)") {
		t.Errorf("reply %q", reply)
	}
	refused := ev.wait(t, "connect refused", 1)[0]
	if refused["target"] != "127.0.0.1:22" {
		t.Errorf("event %v", refused)
	}
}

func TestConnectionDiesMidHandshake(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn) {
		// Read the ClientHello, then hang up without a word.
		_, _ = c.Read(make([]byte, 4096))
	})
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	_, _, err := curl(t, proxyAddr, "-k", "https://"+addr+"/")
	if err == nil {
		t.Fatal("curl succeeded against a server that hangs up")
	}
	e := ev.waitHandshakes(t, 1)[0]
	if e.Visibility != "partial" || e.Verdict != "unknown" || e.End != "eof" {
		t.Errorf("visibility %v verdict %v end %v", e.Visibility, e.Verdict, e.End)
	}
	ev.waitClosed(t, 1)
}

func TestIdleTunnelIsClosed(t *testing.T) {
	addr := tcpServer(t, echo)
	proxyAddr, ev := startProxy(t, Options{IdleTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
	// Traffic keeps the tunnel alive past the idle timeout...
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("tunnel closed while in use: %v", err)
		}
	}
	if n := len(ev.closed(t)); n != 0 {
		t.Fatalf("tunnel closed while in use")
	}
	// ...silence ends it, and the client sees the close.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("client side not closed after the idle timeout: %v", err)
	}
	if closed := ev.waitClosed(t, 1)[0]; closed.Reason != "idle timeout" {
		t.Errorf("reason %q", closed.Reason)
	}
}

// A CONNECT whose server cannot be reached is answered 502 with the
// reason, and the proxy connection is closed.
func TestConnectDialFailureSaysWhy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the proxy connection was not closed after the 502: %v", err)
	}
	if !strings.HasPrefix(string(reply), "HTTP/1.1 502") || !strings.Contains(string(reply), "cannot reach "+target) ||
		!strings.Contains(string(reply), "connection refused") {
		t.Errorf("reply %q", reply)
	}
	closed := ev.waitClosed(t, 1)[0]
	if rs := closed.Reason; !strings.HasPrefix(rs, "dial failed: ") {
		t.Errorf("reason %q", rs)
	}
}

// A CONNECT sent as HTTP/1.0 is answered in HTTP/1.0, and the tunnel flows.
func TestConnectHTTP10(t *testing.T) {
	addr := tcpServer(t, echo)
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true})
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.0\r\n\r\n", addr)
	const want = "HTTP/1.0 200 Connection established\r\n\r\n"
	reply := make([]byte, len(want))
	if _, err := io.ReadFull(c, reply); err != nil || string(reply) != want {
		t.Fatalf("reply %q, %v", reply, err)
	}
	fmt.Fprint(c, "ping\n")
	echoed := make([]byte, 5)
	if _, err := io.ReadFull(c, echoed); err != nil || string(echoed) != "ping\n" {
		t.Fatalf("echo %q, %v", echoed, err)
	}
	c.Close()
	ev.waitClosed(t, 1)
}
