package proxy

// Faults: peers that reset, half-close, fall silent, split records into
// single bytes, send the largest issuer list TLS allows, garbage, or
// something that is not TLS at all, and upstreams that do not resolve.
// Each runs in observe and sidecar mode against one proxy that must live
// through all of them: after each, a good mutual-TLS connection must still
// be served and logged, and the fault's own connections must have logged
// exactly the events they should.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// faultIdle is the rig's idle timeout: short, so the silent-server fault
// ends quickly, long enough that no busy tunnel ever hits it.
const faultIdle = 2 * time.Second

// rig is one proxy under faults, in observe mode (every target through one
// CONNECT proxy) or sidecar mode (one sidecar per upstream, all logging to
// one event stream), with a healthy mutual-TLS server to check that it
// still serves after each fault.
type rig struct {
	t        *testing.T
	mode     string
	ev       *events
	proxy    string            // observe mode
	sidecars map[string]string // sidecar mode: upstream -> listen address
	mu       sync.Mutex

	serverCA, clientCA *pkitest.Cert
	server, client     *pkitest.Cert
	healthyAddr        string
	// before holds the conn_ids logged before the current fault: a port
	// freed by an earlier fault may be handed to this one's server.
	before map[string]bool
}

// startFault marks the events logged so far as an earlier fault's.
func (r *rig) startFault(t *testing.T) {
	r.before = map[string]bool{}
	for _, h := range r.ev.handshakes(t) {
		r.before[h.ConnID] = true
	}
	for _, c := range r.ev.closed(t) {
		r.before[c.ConnID] = true
	}
}

// since is forTarget without the earlier faults' events.
func since[T loggedEvent](t *testing.T, r *rig, target string) []*T {
	var out []*T
	for _, e := range forTarget[T](t, r.ev, target) {
		if id, _ := connOf(e); !r.before[id] {
			out = append(out, e)
		}
	}
	return out
}

func newRig(t *testing.T, mode string) *rig {
	r := &rig{t: t, mode: mode, ev: &events{}, sidecars: map[string]string{}}
	r.serverCA = pkitest.NewCA(t, "certlens faults server CA")
	r.clientCA = pkitest.NewCA(t, "certlens faults client CA")
	r.server = r.serverCA.NewServer(t, "127.0.0.1")
	r.client = r.clientCA.NewClient(t, "carol@faults.test")
	if mode == "observe" {
		r.proxy, _ = startServerInto(t, Options{WatchRenegotiation: true, IdleTimeout: faultIdle}, r.ev)
	}
	pool := x509.NewCertPool()
	pool.AddCert(r.clientCA.Cert)
	r.healthyAddr = tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{r.server.TLSCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: pool, MaxVersion: tls.VersionTLS12,
	}, func(c *tls.Conn) { _, _ = c.Write([]byte("ok\n")) })
	return r
}

// clientConn is the client's end of a tunnel: reads go through whatever
// the CONNECT reply left buffered.
type clientConn struct {
	net.Conn
	br  *bufio.Reader
	tcp *net.TCPConn
}

func (c *clientConn) Read(b []byte) (int, error) { return c.br.Read(b) }
func (c *clientConn) CloseWrite() error          { return c.tcp.CloseWrite() }
func (c *clientConn) SetLinger(sec int) error    { return c.tcp.SetLinger(sec) }

// connect opens a tunnel to target: a CONNECT through the proxy, or a
// connection to target's sidecar. It returns the CONNECT status (200 in
// sidecar mode) and, when 200, the open connection.
func (r *rig) connect(t *testing.T, target string) (*clientConn, int) {
	t.Helper()
	addr := r.proxy
	if r.mode == "sidecar" {
		addr = r.sidecar(target)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial the %s listener: %v", r.mode, err)
	}
	c := &clientConn{Conn: raw, br: bufio.NewReader(raw), tcp: raw.(*net.TCPConn)}
	if r.mode == "sidecar" {
		return c, 200
	}
	fmt.Fprintf(raw, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	_ = raw.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
	_ = raw.SetReadDeadline(time.Time{})
	if err != nil {
		raw.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != 200 {
		raw.Close()
		return nil, resp.StatusCode
	}
	return c, 200
}

// sidecar returns the address of the sidecar in front of upstream,
// starting it the first time.
func (r *rig) sidecar(upstream string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.sidecars[upstream]; ok {
		return a
	}
	a, _ := startServerInto(r.t, Options{Mode: event.ModeSidecar, Sidecar: SidecarOptions{Upstream: upstream},
		WatchRenegotiation: true, IdleTimeout: faultIdle}, r.ev)
	r.sidecars[upstream] = a
	return a
}

// expect waits until target has logged conns "connection closed" and hs
// "handshake" events, then checks that no more come: exactly one of each
// per connection and per handshake.
func (r *rig) expect(t *testing.T, target string, conns, hs int) (handshakes []*event.Handshake, closed []*event.Closed) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		handshakes, closed = since[event.Handshake](t, r, target), since[event.Closed](t, r, target)
		if len(handshakes) >= hs && len(closed) >= conns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited for %d connection closed and %d handshake events, got %d and %d", target, conns, hs, len(closed), len(handshakes))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	handshakes, closed = since[event.Handshake](t, r, target), since[event.Closed](t, r, target)
	if len(handshakes) != hs || len(closed) != conns {
		t.Errorf("%s: %d connection closed and %d handshake events, want exactly %d and %d", target, len(closed), len(handshakes), conns, hs)
	}
	for _, c := range closed {
		if string(c.Mode) != r.mode {
			t.Errorf("connection closed in mode %v, want %s", c.Mode, r.mode)
		}
	}
	return handshakes, closed
}

// healthy makes one good mutual TLS 1.2 connection and checks its events:
// the proxy survived the fault before it.
func (r *rig) healthy(t *testing.T) {
	t.Helper()
	c, _ := r.connect(t, r.healthyAddr)
	if c == nil {
		t.Fatal("CONNECT to the healthy server refused")
	}
	tc := tls.Client(c, r.clientTLS(tls.VersionTLS12))
	_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(tc)
	tc.Close()
	if err != nil || string(got) != "ok\n" {
		t.Fatalf("the next connection after the fault: %q %v", got, err)
	}
	// startFault set aside the earlier runs' events: this one is alone.
	hs, closed := r.expect(t, r.healthyAddr, 1, 1)
	h, c2 := hs[len(hs)-1], closed[len(closed)-1]
	if h.Visibility != "clear" || h.End != "finished" || h.Verdict != "ok" || h.ClientCert == nil || !h.ClientCert.Sent ||
		h.CertRequest == nil || h.CertRequest.IssuerCount != 1 {
		t.Errorf("healthy handshake: visibility %v end %v verdict %v client_cert %+v cert_request %+v",
			h.Visibility, h.End, h.Verdict, h.ClientCert, h.CertRequest)
	}
	if c2.ConnID != h.ConnID || c2.Handshakes != 1 {
		t.Errorf("healthy connection closed %+v for handshake %v", c2, h.ConnID)
	}
}

func (r *rig) clientTLS(version uint16) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(r.serverCA.Cert)
	cert := r.client.TLSCertificate()
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
}

// tlsServer runs a Go TLS server on a free port: serve runs after each
// successful handshake, then the connection is closed.
func tlsServer(t *testing.T, cfg *tls.Config, serve func(*tls.Conn)) string {
	return tcpServer(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if tc.Handshake() == nil {
			serve(tc)
		}
	})
}

// reason returns a connection closed event's reason.
func reason(c *event.Closed) string { return c.Reason }

func TestFaults(t *testing.T) {
	peertest.Require(t, "openssl")
	faults := []struct {
		name string
		run  func(t *testing.T, r *rig)
	}{
		{"client resets mid-handshake", faultClientReset},
		{"server resets mid-handshake", faultServerReset},
		{"client half-closes while the server sends", faultClientHalfClose},
		{"server half-closes while the client sends", faultServerHalfClose},
		{"server accepts and never answers", faultSilentServer},
		{"records split into 1-byte TCP segments", faultOneByteSegments},
		{"64 KiB issuer list", faultLargestIssuerList},
		{"issuer list over 64 KiB", faultOversizeIssuerList},
		{"10 MB of garbage", faultGarbage},
		{"SSH banner", faultSSH},
		{"plain HTTP", faultPlainHTTP},
		{"upstream name does not resolve", faultDNS},
	}
	for _, mode := range []string{"observe", "sidecar"} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode)
			for _, f := range faults {
				t.Run(f.name, func(t *testing.T) {
					r.startFault(t)
					f.run(t, r)
					r.healthy(t)
				})
			}
		})
	}
}

// partial checks a handshake the connection died in the middle of.
func partial(t *testing.T, h *event.Handshake) {
	t.Helper()
	if h.Visibility != "partial" || h.End != "eof" || h.Verdict != "unknown" {
		t.Errorf("handshake: visibility %v end %v verdict %v, want partial, eof, unknown", h.Visibility, h.End, h.Verdict)
	}
}

func faultClientReset(t *testing.T, r *rig) {
	addr := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{r.server.TLSCertificate()}}, func(*tls.Conn) {})
	c, _ := r.connect(t, addr)
	// The client sends its ClientHello and resets as the server's flight arrives.
	if err := tls.Client(resetAfterFirstRead{c}, r.clientTLS(tls.VersionTLS12)).Handshake(); err == nil {
		t.Fatal("handshake completed on a reset connection")
	}
	hs, closed := r.expect(t, addr, 1, 1)
	partial(t, hs[0])
	if hs[0].TLSVersion != "TLS 1.2" {
		t.Errorf("tls_version %q: the ServerHello crossed the tunnel before the reset", hs[0].TLSVersion)
	}
	if !strings.HasPrefix(reason(closed[0]), "client error: ") || !strings.Contains(reason(closed[0]), "reset") {
		t.Errorf("reason %q, want a client reset", reason(closed[0]))
	}
}

func faultServerReset(t *testing.T, r *rig) {
	addr := tcpServer(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 4096)) // the ClientHello
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	c, _ := r.connect(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := tls.Client(c, r.clientTLS(tls.VersionTLS12)).Handshake(); err == nil {
		t.Fatal("handshake completed against a server that resets")
	}
	hs, closed := r.expect(t, addr, 1, 1)
	partial(t, hs[0])
	if !strings.HasPrefix(reason(closed[0]), "server error: ") || !strings.Contains(reason(closed[0]), "reset") {
		t.Errorf("reason %q, want a server reset", reason(closed[0]))
	}
}

const halfCloseBytes = 1 << 20

// faultClientHalfClose: the client sends its request and closes its
// sending side (close_notify, FIN); the server reads to the end, then
// answers with a megabyte that must all arrive.
func faultClientHalfClose(t *testing.T, r *rig) {
	addr := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{r.server.TLSCertificate()}}, func(c *tls.Conn) {
		// To its close_notify, then to the FIN: the proxy passed the
		// half-close on before the answer starts.
		if _, err := io.Copy(io.Discard, c); err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, c.NetConn()); err != nil {
			return
		}
		_, _ = c.Write(bytes.Repeat([]byte("d"), halfCloseBytes))
	})
	c, _ := r.connect(t, addr)
	tc := tls.Client(c, r.clientTLS(tls.VersionTLS12))
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := tc.Write([]byte("send me a megabyte")); err != nil {
		t.Fatal(err)
	}
	// close_notify, then the TCP half-close tls.Conn.CloseWrite leaves out.
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, tc)
	if err != nil || n != halfCloseBytes {
		t.Fatalf("after the client's half-close, read %d bytes (%v), want %d", n, err, halfCloseBytes)
	}
	hs, closed := r.expect(t, addr, 1, 1)
	if hs[0].Visibility != "clear" || hs[0].End != "finished" {
		t.Errorf("visibility %v end %v", hs[0].Visibility, hs[0].End)
	}
	if reason(closed[0]) != "client closed" || closed[0].BytesDown < halfCloseBytes {
		t.Errorf("reason %q, %v bytes down", reason(closed[0]), closed[0].BytesDown)
	}
}

// faultServerHalfClose: the server greets and closes its sending side; the
// client then uploads a megabyte that the server must receive whole.
func faultServerHalfClose(t *testing.T, r *rig) {
	received := make(chan int64, 1)
	addr := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{r.server.TLSCertificate()}}, func(c *tls.Conn) {
		_, _ = c.Write([]byte("hello, now upload"))
		if c.CloseWrite() != nil || c.NetConn().(*net.TCPConn).CloseWrite() != nil {
			received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		received <- n
	})
	c, _ := r.connect(t, addr)
	tc := tls.Client(c, r.clientTLS(tls.VersionTLS12))
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if greeting, err := io.ReadAll(tc); err != nil || string(greeting) != "hello, now upload" {
		t.Fatalf("greeting %q %v", greeting, err)
	}
	// close_notify ends the TLS stream before the server's FIN crosses the
	// proxy: wait for the FIN, so that the server closed first here too.
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after close_notify: %d bytes, %v", len(rest), err)
	}
	if _, err := tc.Write(bytes.Repeat([]byte("u"), halfCloseBytes)); err != nil {
		t.Fatalf("upload after the server's half-close: %v", err)
	}
	_ = tc.CloseWrite()
	_ = c.CloseWrite()
	select {
	case n := <-received:
		if n != halfCloseBytes {
			t.Fatalf("server received %d bytes after its half-close, want %d", n, halfCloseBytes)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not receive the upload")
	}
	hs, closed := r.expect(t, addr, 1, 1)
	if hs[0].Visibility != "clear" || hs[0].End != "finished" {
		t.Errorf("visibility %v end %v", hs[0].Visibility, hs[0].End)
	}
	if reason(closed[0]) != "server closed" || closed[0].BytesUp < halfCloseBytes {
		t.Errorf("reason %q, %v bytes up", reason(closed[0]), closed[0].BytesUp)
	}
}

func faultSilentServer(t *testing.T, r *rig) {
	addr := tcpServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	c, _ := r.connect(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * faultIdle))
	start := time.Now()
	err := tls.Client(c, r.clientTLS(tls.VersionTLS12)).Handshake()
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the proxy did not close a tunnel to a silent server: %v", err)
	}
	if d := time.Since(start); d < faultIdle {
		t.Errorf("closed after %v, before the idle timeout %v", d, faultIdle)
	}
	hs, closed := r.expect(t, addr, 1, 1)
	partial(t, hs[0])
	if reason(closed[0]) != "idle timeout" {
		t.Errorf("reason %q", reason(closed[0]))
	}
}

// byteWriter writes every byte in a TCP segment of its own (Go sets
// TCP_NODELAY on its connections; the test sets it again to say so).
type byteWriter struct{ net.Conn }

func (w byteWriter) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := w.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

// slicer relays to upstream, passing the server's bytes on one per segment.
func slicer(t *testing.T, upstream string) string {
	return tcpServer(t, func(c net.Conn) {
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer up.Close()
		_ = c.(*net.TCPConn).SetNoDelay(true)
		go func() {
			_, _ = io.Copy(up, c)
			_ = up.(*net.TCPConn).CloseWrite()
		}()
		_, _ = io.Copy(byteWriter{c}, up)
	})
}

// faultOneByteSegments: the same mutual TLS 1.2 exchange with openssl
// s_server, once as it comes and once with every byte both ways in its own
// segment; certlens must read the same request and certificate from both.
func faultOneByteSegments(t *testing.T, r *rig) {
	cas := []*pkitest.Cert{pkitest.NewCA(t, "certlens faults other CA one"), r.clientCA, pkitest.NewCA(t, "certlens faults other CA two")}
	server, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: r.server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true})
	split := slicer(t, server)
	var seen []*event.Handshake
	for _, target := range []string{server, split} {
		c, _ := r.connect(t, target)
		var conn net.Conn = c
		if target == split {
			_ = c.tcp.SetNoDelay(true)
			conn = byteWriter{c}
		}
		tc := tls.Client(conn, r.clientTLS(tls.VersionTLS12))
		_ = tc.SetDeadline(time.Now().Add(60 * time.Second))
		_, err := tc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		page, _ := io.ReadAll(tc)
		tc.Close()
		if err != nil || !bytes.Contains(page, []byte("s_server")) {
			t.Fatalf("via %s: %v %q", target, err, page)
		}
		hs, _ := r.expect(t, target, 1, 1)
		seen = append(seen, hs[0])
	}
	whole, split1 := seen[0], seen[1]
	if whole.CertRequest == nil || whole.CertRequest.IssuerCount != 3 || whole.ClientCert == nil || !whole.ClientCert.Sent || whole.Verdict != "ok" {
		t.Errorf("unsplit run: cert_request %+v client_cert %+v verdict %v", whole.CertRequest, whole.ClientCert, whole.Verdict)
	}
	compared := func(h *event.Handshake) []any {
		return []any{h.CertRequest, h.ClientCert, h.Visibility, h.End, h.Verdict, h.Findings, h.TLSVersion, h.CipherSuite}
	}
	for i, k := range []string{"cert_request", "client_cert", "visibility", "end", "verdict", "findings", "tls_version", "cipher_suite"} {
		if w, s := fmt.Sprintf("%+v", compared(whole)[i]), fmt.Sprintf("%+v", compared(split1)[i]); w != s {
			t.Errorf("%s: split into bytes %s, unsplit %s", k, s, w)
		}
	}
}

// largestList is the largest prefix of cas whose issuer list fits the
// 65,535 bytes a CertificateRequest can carry.
func largestList(cas []*pkitest.Cert) []*pkitest.Cert {
	n := 0
	for n < len(cas) && pkitest.IssuerListSize(cas[:n+1]) <= 0xffff {
		n++
	}
	return cas[:n]
}

func faultLargestIssuerList(t *testing.T, r *rig) {
	cas := append(largestList(pkitest.ManyCAs(t, 300)[:299]), r.clientCA)
	cas = largestList(cas)
	if cas[len(cas)-1] != r.clientCA {
		cas = append(cas[:len(cas)-2], r.clientCA)
	}
	size := pkitest.IssuerListSize(cas)
	if size < 0xffff-512 {
		t.Fatalf("the list is %d bytes, not near 64 KiB", size)
	}
	server, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: r.server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true})
	// Not a Go client: crypto/tls refuses handshake messages over 64 KiB,
	// and this one is 65,561 bytes.
	cfg := peertest.OpenSSLClientConfig{Connect: server, Proxy: r.proxy, Cert: r.client, ServerCAs: []*pkitest.Cert{r.serverCA}, TLS12: true}
	if r.mode == "sidecar" {
		cfg.Connect, cfg.Proxy = r.sidecar(server), ""
	}
	if out, err := peertest.OpenSSLClient(t, cfg); err != nil || !strings.Contains(out, "s_server") {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	hs, _ := r.expect(t, server, 1, 1)
	h := hs[0]
	cr := h.CertRequest
	if cr == nil {
		t.Fatalf("no cert_request; visibility %v end %v", h.Visibility, h.End)
	}
	if cr.IssuerCount != len(cas) || cr.IssuerBytes != size ||
		len(cr.Issuers) != len(cas) || cr.Issuers[len(cr.Issuers)-1] != r.clientCA.Cert.Subject.String() {
		t.Errorf("issuer_count %v (want %d), issuer_bytes %v (want %d), last issuer %v",
			cr.IssuerCount, len(cas), cr.IssuerBytes, size, cr.Issuers[max(len(cr.Issuers)-1, 0):])
	}
	if cr.Records < 4 {
		t.Errorf("a %d-byte request in %v records", size, cr.Records)
	}
	if h.ClientCert == nil || !h.ClientCert.Sent || h.Visibility != "clear" {
		t.Errorf("client_cert %+v visibility %v", h.ClientCert, h.Visibility)
	}
	if ids := findingIDs(h); !strings.Contains(strings.Join(ids, ","), "issuer-list-too-large") {
		t.Errorf("findings %v", ids)
	}
	t.Logf("%d DNs, %d bytes, %v records", len(cas), size, cr.Records)
}

// faultOversizeIssuerList: 700 CAs make a list of about 160 KB, more than
// a CertificateRequest can carry. OpenSSL then sends no request but a
// fatal internal_error alert, which is what certlens must report.
func faultOversizeIssuerList(t *testing.T, r *rig) {
	cas := pkitest.ManyCAs(t, 700)
	server, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: r.server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true})
	cfg := peertest.OpenSSLClientConfig{Connect: server, Proxy: r.proxy, Cert: r.client, TLS12: true}
	if r.mode == "sidecar" {
		cfg.Connect, cfg.Proxy = r.sidecar(server), ""
	}
	if out, err := peertest.OpenSSLClient(t, cfg); err == nil || !strings.Contains(out, "alert internal error") {
		t.Fatalf("s_client against a %d-byte list: %v\n%s", pkitest.IssuerListSize(cas), err, out)
	}
	hs, _ := r.expect(t, server, 1, 1)
	h := hs[0]
	alerts := h.Alerts
	if h.Visibility != "clear" || h.End != "alert" || h.Verdict != "handshake_failed" || h.CertRequest != nil || len(alerts) != 1 ||
		alerts[0].Description != "internal_error" || alerts[0].From != "server" {
		t.Errorf("visibility %v end %v verdict %v cert_request %+v alerts %v", h.Visibility, h.End, h.Verdict, h.CertRequest, alerts)
	}
}

// faultGarbage sends 10 MB of random bytes through a tunnel to an echo
// server: every byte must come back unchanged, and certlens must say the
// stream is not TLS and log no handshake.
func faultGarbage(t *testing.T, r *rig) {
	const size = 10 << 20
	addr := tcpServer(t, echo)
	garbage := make([]byte, size)
	_, _ = rand.Read(garbage)
	garbage[0] = 0x80 // not a TLS content type, whatever the draw
	c, _ := r.connect(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		_, _ = c.Write(garbage)
		_ = c.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	want := sha256.Sum256(garbage)
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echoed %d of %d bytes (%v), the same bytes: %v", n, size, err, bytes.Equal(h.Sum(nil), want[:]))
	}
	_, closed := r.expect(t, addr, 1, 0)
	c0 := closed[0]
	if c0.NotTLS == "" || c0.Handshakes != 0 || c0.BytesUp != size || c0.BytesDown != size {
		t.Errorf("not_tls %q handshakes %v bytes %v/%v", c0.NotTLS, c0.Handshakes, c0.BytesUp, c0.BytesDown)
	}
}

// faultSSH: an SSH server speaks first; the banners cross the tunnel and
// certlens names what it saw instead of a handshake.
func faultSSH(t *testing.T, r *rig) {
	const banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
	addr := tcpServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, banner)
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "Protocol mismatch for "+line)
	})
	c, _ := r.connect(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := c.br.ReadString('\n')
	if err != nil || got != banner {
		t.Fatalf("banner %q %v", got, err)
	}
	_, _ = io.WriteString(c, "SSH-2.0-certlens_faults\r\n")
	rest, _ := io.ReadAll(c)
	if string(rest) != "Protocol mismatch for SSH-2.0-certlens_faults\r\n" {
		t.Errorf("server answered %q", rest)
	}
	c.Close()
	_, closed := r.expect(t, addr, 1, 0)
	if nt := closed[0].NotTLS; !strings.Contains(nt, "SSH-2") {
		t.Errorf("not_tls %q", nt)
	}
}

func faultPlainHTTP(t *testing.T, r *rig) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "plain page") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	c, _ := r.connect(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "plain page" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	c.Close()
	_, closed := r.expect(t, addr, 1, 0)
	if nt := closed[0].NotTLS; !strings.Contains(nt, "GET") {
		t.Errorf("not_tls %q", nt)
	}
}

// faultDNS: an upstream under .invalid (RFC 6761: never resolves). Observe
// mode answers the CONNECT 502; the sidecar closes the client. Both log one
// connection closed event naming the failure.
func faultDNS(t *testing.T, r *rig) {
	const target = "certlens-faults.invalid:443"
	c, status := r.connect(t, target)
	if r.mode == "observe" && status != http.StatusBadGateway {
		t.Errorf("CONNECT to a name that does not resolve: %d, want 502", status)
	}
	if c != nil {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("the client was not closed: %v", err)
		}
		c.Close()
	}
	_, closed := r.expect(t, target, 1, 0)
	if rs := reason(closed[0]); !strings.HasPrefix(rs, "dial failed: ") || !strings.Contains(rs, "no such host") {
		t.Errorf("reason %q", rs)
	}
}
