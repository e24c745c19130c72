package proxy

// Intercept mode against real peers: openssl s_server (TLS 1.3 requiring a
// certificate), Apache (renegotiation for one location), Go servers for
// what only a test server can do (an IIS error page, telling connections
// apart), with curl, Go clients and headless Chromium as browsers.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// icTest is one intercept-mode test's PKI, proxy and events.
type icTest struct {
	ca                        *pkitest.Cert // certlens's own root
	caFile                    string
	serverCA, clientCA, other *pkitest.Cert
	server, client            *pkitest.Cert
	proxy                     string
	ev                        *events
}

// newIntercept starts an intercept-mode proxy trusting serverCA upstream;
// mod adjusts its options (client certificates).
func newIntercept(t *testing.T, mod func(k *icTest, o *InterceptOptions)) *icTest {
	t.Helper()
	k := &icTest{
		ca:       pkitest.NewCA(t, "certlens test intercept CA"),
		serverCA: pkitest.NewCA(t, "certlens intercept test server CA"),
		clientCA: pkitest.NewCA(t, "certlens intercept test client CA"),
		other:    pkitest.NewCA(t, "certlens intercept test unrelated CA"),
	}
	k.server = k.serverCA.NewServer(t, "127.0.0.1")
	k.client = k.clientCA.NewClient(t, "alice@intercept.test")
	k.caFile = filepath.Join(t.TempDir(), "certlens-ca.pem")
	pkitest.WritePEM(t, k.caFile, k.ca)
	roots := x509.NewCertPool()
	roots.AddCert(k.serverCA.Cert)
	o := InterceptOptions{CA: k.ca.TLSCertificate(), UpstreamRoots: roots}
	if mod != nil {
		mod(k, &o)
	}
	k.proxy, _, k.ev = startServer(t, Options{Mode: event.ModeIntercept, Dial: loopbackOnly, Intercept: o})
	return k
}

// withClientCert presents c to every host.
func withClientCert(c *pkitest.Cert) func(*icTest, *InterceptOptions) {
	return func(_ *icTest, o *InterceptOptions) {
		o.ClientCerts = []ClientCert{{Pattern: "*", Source: "test.pem", Cert: c.TLSCertificate()}}
	}
}

// curl fetches url through the proxy, trusting certlens's CA, and returns
// the status (0 when curl failed) and body.
func (k *icTest) curl(t *testing.T, url string) (int, string) {
	t.Helper()
	out, stderr, err := curl(t, k.proxy, "--cacert", k.caFile, "-w", "\n%{http_code}", url)
	if err != nil {
		t.Logf("curl %s: %v\n%s", url, err, stderr)
	}
	i := strings.LastIndexByte(out, '\n')
	status, _ := strconv.Atoi(out[i+1:])
	return status, out[:max(i, 0)]
}

// goClient is a keep-alive HTTP client through the proxy that trusts
// certlens's CA; cert answers certlens's mirrored request (nil: none).
func (k *icTest) goClient(t *testing.T, cert *pkitest.Cert, seen *[][]byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(k.ca.Cert)
	proxyURL, _ := url.Parse("http://" + k.proxy)
	tr := &http.Transport{
		Proxy: http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: pool, GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if seen != nil {
				*seen = append([][]byte(nil), cri.AcceptableCAs...)
			}
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			c := cert.TLSCertificate()
			return &c, nil
		}},
		ForceAttemptHTTP2: false,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func getPage(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func dnStrings(t *testing.T, certs ...*pkitest.Cert) []string {
	t.Helper()
	var out []string
	for _, c := range certs {
		out = append(out, c.Cert.Subject.String())
	}
	return out
}

// leafSubject is the subject of a chain's first certificate, "" when there
// is none.
func leafSubject(c *event.ClientCert) string {
	if c == nil || len(c.Chain) == 0 {
		return ""
	}
	return c.Chain[0].Subject
}

// issuersOf is a handshake's cert_request.issuers, nil without a request.
func issuersOf(h *event.Handshake) []string {
	if h.CertRequest == nil {
		return nil
	}
	return h.CertRequest.Issuers
}

// TestInterceptTLS13RequiredCertificate: openssl s_server -tls1_3 -Verify
// asks in its encrypted handshake; intercept mode reads the list and
// states the outcome, without and with a configured certificate.
func TestInterceptTLS13RequiredCertificate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured bool
	}{{"no certificate configured", false}, {"certificate configured", true}} {
		t.Run(tc.name, func(t *testing.T) {
			k := newIntercept(t, func(kk *icTest, o *InterceptOptions) {
				if tc.configured {
					withClientCert(kk.client)(kk, o)
				}
			})
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA, k.other},
				Require: true, TLS13: true, WWW: true})
			status, body := k.curl(t, "https://"+addr+"/")
			hs := k.ev.settle(t, addr, 1)
			h := hs[0]
			t.Logf("curl: %d; event: %+v", status, h)
			if h.Mode != "intercept" || h.TLSVersion != "TLS 1.3" || h.Visibility != "decrypted" || h.Phase != "initial" {
				t.Errorf("mode %v version %v visibility %v phase %v", h.Mode, h.TLSVersion, h.Visibility, h.Phase)
			}
			if got, want := issuersOf(h), dnStrings(t, k.clientCA, k.other); !slices.Equal(got, want) {
				t.Errorf("issuers %v, want %v", got, want)
			}
			if h.CertRequest == nil {
				t.Fatal("no cert_request")
			}
			wantBytes := 4 + len(k.clientCA.Cert.RawSubject) + len(k.other.Cert.RawSubject)
			// Read from the wire with certlens's own key log: the records
			// are counted, not estimated.
			if got := h.CertRequest.Records; got != 1 || h.Visibility != "decrypted" {
				t.Errorf("records %v visibility %v, want 1 decrypted record", got, h.Visibility)
			}
			if got := h.CertRequest.IssuerBytes; got != wantBytes {
				t.Errorf("issuer_bytes %v, want %d", got, wantBytes)
			}
			if !tc.configured {
				if status != http.StatusBadGateway {
					t.Errorf("status %d, want 502", status)
				}
				if h.ClientCert == nil || h.ClientCert.Sent || h.Intercept == nil || !strings.Contains(h.Intercept.ClientCertSource, "none configured") {
					t.Errorf("client_cert %+v intercept %+v", h.ClientCert, h.Intercept)
				}
				if h.Verdict != "handshake_failed" || !h.VerdictCertain {
					t.Errorf("verdict %v certain %v, want handshake_failed for sure", h.Verdict, h.VerdictCertain)
				}
				if want := []event.Alert{{From: "server", Level: "fatal", Description: "certificate_required"}}; !slices.Equal(h.Alerts, want) {
					t.Errorf("alerts %v", h.Alerts)
				}
				return
			}
			if status != 200 || !strings.Contains(body, "s_server") {
				t.Errorf("status %d body %.200q", status, body)
			}
			if h.ClientCert == nil || !h.ClientCert.Sent || leafSubject(h.ClientCert) != "CN=alice@intercept.test" {
				t.Errorf("client_cert %+v", h.ClientCert)
			}
			if h.Verdict != "ok" || h.HTTPStatus != 200 {
				t.Errorf("verdict %v http_status %v", h.Verdict, h.HTTPStatus)
			}
			if h.Intercept == nil || !h.Intercept.UpstreamVerified {
				t.Errorf("intercept %+v", h.Intercept)
			}
		})
	}
}

// goUpstream is a TLS server for what only a test server can do. It asks
// for a client certificate with cas, in that order (nil: asks for none).
func goUpstream(t *testing.T, k *icTest, cas []*pkitest.Cert, h http.HandlerFunc) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{k.server.TLSCertificate()}, NextProtos: []string{"http/1.1"}}
	if cas != nil {
		cfg.ClientAuth = tls.RequestClientCert
		cfg.ClientCAs = x509.NewCertPool()
		for _, c := range cas {
			cfg.ClientCAs.AddCert(c.Cert)
		}
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestInterceptIISErrorPage: the substatus is read from the error page
// body, and the answer confirms the prediction.
func TestInterceptIISErrorPage(t *testing.T) {
	k := newIntercept(t, nil)
	const page = "<html><head><title>IIS 10.0 Detailed Error - 403.7 - Forbidden</title></head><body><h3>HTTP Error 403.7 - Forbidden</h3>" +
		"<h4>The page you are attempting to access requires your browser to have a Secure Sockets Layer (SSL) client certificate that the Web server recognizes.</h4></body></html>"
	addr := goUpstream(t, k, []*pkitest.Cert{k.clientCA}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, page)
	})
	status, body := k.curl(t, "https://"+addr+"/private/")
	if status != 403 || body != page {
		t.Errorf("the browser got %d %q, want the server's page untouched", status, body)
	}
	h := k.ev.settle(t, addr, 1)[0]
	if h.HTTPStatus != 403 || h.HTTPSubstatus != "403.7" {
		t.Errorf("http_status %v http_substatus %v", h.HTTPStatus, h.HTTPSubstatus)
	}
	if h.Verdict != "403.7" || !h.VerdictCertain || !slices.Contains(findingIDs(h), "http-403-observed") {
		t.Errorf("verdict %v certain %v findings %v", h.Verdict, h.VerdictCertain, findingIDs(h))
	}
	if h.TLSVersion != "TLS 1.3" || h.Visibility != "decrypted" || h.CertRequest == nil || h.CertRequest.IssuerCount != 1 {
		t.Errorf("version %v visibility %v cert_request %+v", h.TLSVersion, h.Visibility, h.CertRequest)
	}
	var line map[string]any // the "http" line: no event type
	for _, m := range k.ev.all(t, "http") {
		if m["conn_id"] == h.ConnID {
			line = m
		}
	}
	if line == nil || line["status"] != float64(403) || line["http_substatus"] != "403.7" || line["path"] != "/private/" {
		t.Errorf("http line %v", line)
	}
	if raw := k.ev.text(); strings.Contains(raw, "requires your browser") {
		t.Error("the response body reached the log")
	}
}

// TestInterceptGzipErrorPage: a compressed error page still yields its
// substatus, and reaches the browser byte for byte.
func TestInterceptGzipErrorPage(t *testing.T) {
	k := newIntercept(t, nil)
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	_, _ = io.WriteString(zw, "<h3>HTTP Error 403.16 - Forbidden</h3>"+strings.Repeat("padding ", 3000))
	_ = zw.Close()
	addr := goUpstream(t, k, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(zbuf.Bytes())
	})
	c := k.goClient(t, nil, nil)
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, zbuf.Bytes()) {
		t.Errorf("body changed: %d bytes, sent %d", len(got), zbuf.Len())
	}
	c.CloseIdleConnections()
	h := k.ev.settle(t, addr, 1)[0]
	if h.HTTPSubstatus != "403.16" || h.Verdict != "403.16" {
		t.Errorf("http_substatus %v verdict %v", h.HTTPSubstatus, h.Verdict)
	}
}

// TestInterceptNoSharedUpstream: each browser connection has its own
// upstream connection, and so its own client certificate: goproxy's
// shared transport would serve one browser's requests on another's.
func TestInterceptNoSharedUpstream(t *testing.T) {
	k := newIntercept(t, nil)
	addr := goUpstream(t, k, nil, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	})
	url := "https://" + addr + "/"
	var mu sync.Mutex
	seen := map[string][]string{} // client -> upstream connections its requests came on
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		c := k.goClient(t, nil, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				_, from := getPage(t, c, url)
				mu.Lock()
				seen[name] = append(seen[name], from)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	owner := map[string]string{}
	for name, froms := range seen {
		for _, from := range froms {
			if from != froms[0] {
				t.Errorf("client %s: requests on upstream connections %v; one browser connection, one upstream connection", name, froms)
			}
			if o, ok := owner[from]; ok && o != name {
				t.Errorf("upstream connection %s served clients %s and %s", from, o, name)
			}
			owner[from] = name
		}
	}
	if len(owner) != 3 {
		t.Errorf("%d upstream connections for 3 clients: %v", len(owner), seen)
	}
}

// TestInterceptMirrorsIssuerList: the first connection learns the host's
// issuer list; the next browser connection is asked with the same DNs,
// byte for byte, and what it answers is in the event.
func TestInterceptMirrorsIssuerList(t *testing.T) {
	k := newIntercept(t, nil)
	cas := []*pkitest.Cert{k.other, k.clientCA, k.other.NewIntermediate(t, "certlens intercept test issuing CA")}
	addr := goUpstream(t, k, cas, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	url := "https://" + addr + "/"

	var first [][]byte
	c1 := k.goClient(t, k.client, &first)
	getPage(t, c1, url)
	c1.CloseIdleConnections()
	if first != nil {
		t.Errorf("asked for a certificate before the list was learned: %d DNs", len(first))
	}
	var asked [][]byte
	c := k.goClient(t, k.client, &asked)
	getPage(t, c, url)
	c.CloseIdleConnections()
	if len(asked) != len(cas) {
		t.Fatalf("mirrored %d DNs, want %d", len(asked), len(cas))
	}
	for i, ca := range cas {
		if !bytes.Equal(asked[i], ca.Cert.RawSubject) {
			t.Errorf("DN %d: %x, want %x", i, asked[i], ca.Cert.RawSubject)
		}
	}
	hs := k.ev.settle(t, addr, 2)
	if hs[0].Intercept == nil || hs[0].Intercept.BrowserAsked != "not_asked" {
		t.Errorf("first connection: %+v", hs[0].Intercept)
	}
	h := hs[1]
	if ic := h.Intercept; ic == nil || ic.BrowserAsked != "mirrored" || ic.BrowserIssuerCount != 3 ||
		leafSubject(ic.BrowserCert) != "CN=alice@intercept.test" {
		t.Errorf("second connection: %+v", h.Intercept)
	}
	if h.ClientCert == nil || h.ClientCert.Sent {
		t.Errorf("certlens sent %+v upstream without a configured certificate", h.ClientCert)
	}
}

// TestInterceptApacheRenegotiation: Apache asks for the certificate of one
// location by TLS 1.2 renegotiation after reading the request, as IIS does.
// Intercept mode reads the renegotiation's issuer list; without a configured
// certificate Apache refuses the handshake, with one the page is served.
func TestInterceptApacheRenegotiation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured bool
	}{{"no certificate configured", false}, {"certificate configured", true}} {
		t.Run(tc.name, func(t *testing.T) {
			k := newIntercept(t, func(kk *icTest, o *InterceptOptions) {
				if tc.configured {
					withClientCert(kk.client)(kk, o)
				}
			})
			addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}, TLS12Only: true})
			status, body := k.curl(t, "https://"+addr+peertest.ApacheSecurePath)
			hs := k.ev.settle(t, addr, 2)
			first, r := hs[0], hs[1]
			if first.Phase != "initial" || first.CertRequest != nil || first.ConnID != r.ConnID {
				t.Errorf("initial handshake: %+v", first)
			}
			if r.Phase != "renegotiation" || r.Visibility != "decrypted" || !slices.Contains(findingIDs(r), "cert-request-by-renegotiation") {
				t.Errorf("renegotiation: phase %v visibility %v findings %v", r.Phase, r.Visibility, findingIDs(r))
			}
			if got, want := issuersOf(r), dnStrings(t, k.clientCA); !slices.Equal(got, want) {
				t.Errorf("issuers %v, want %v", got, want)
			}
			if !tc.configured {
				if status == 200 {
					t.Errorf("Apache served the page without a certificate: %q", body)
				}
				if r.ClientCert == nil || r.ClientCert.Sent || r.Verdict != "handshake_failed" {
					t.Errorf("client_cert %+v verdict %v alerts %v", r.ClientCert, r.Verdict, r.Alerts)
				}
				return
			}
			if want := "verify=SUCCESS subject=CN=alice@intercept.test"; status != 200 || strings.TrimSpace(body) != want {
				t.Errorf("got %d %q, want 200 %q", status, body, want)
			}
			if r.ClientCert == nil || !r.ClientCert.Sent || r.Verdict != "ok" || r.HTTPStatus != 200 {
				t.Errorf("client_cert %+v verdict %v http_status %v", r.ClientCert, r.Verdict, r.HTTPStatus)
			}
		})
	}
}

// TestInterceptChromiumMirror: headless Chromium, trusting certlens's CA
// and holding alice's certificate, is asked with the issuer list the
// server sent; the event names what it chose, and nothing when the list
// excludes alice's CA.
func TestInterceptChromiumMirror(t *testing.T) {
	for _, tc := range []struct {
		name     string
		list     func(k *icTest) []*pkitest.Cert
		wantSent bool
	}{
		{"list names alice's CA", func(k *icTest) []*pkitest.Cert { return []*pkitest.Cert{k.other, k.clientCA} }, true},
		{"list excludes alice's CA", func(k *icTest) []*pkitest.Cert { return []*pkitest.Cert{k.other} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newIntercept(t, nil)
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: tc.list(k), Verify: 1, WWW: true})
			url := "https://" + addr + "/"
			// A first connection learns the list.
			c := k.goClient(t, nil, nil)
			getPage(t, c, url)
			c.CloseIdleConnections()
			before := len(k.ev.settle(t, addr, 1))

			dom := peertest.Chromium(t, peertest.ChromiumConfig{URL: url, Proxy: k.proxy, ClientCert: k.client, ServerCAs: []*pkitest.Cert{k.ca}})
			if !strings.Contains(dom, "s_server") {
				t.Errorf("page:\n%.500s", dom)
			}
			hs := k.ev.settle(t, addr, before+1)[before:]
			for _, h := range hs {
				ic := h.Intercept
				if ic == nil {
					t.Errorf("conn %v: no intercept", h.ConnID)
					continue
				}
				if ic.BrowserAsked != "mirrored" || ic.BrowserIssuerCount != len(tc.list(k)) {
					t.Errorf("conn %v: intercept %+v", h.ConnID, ic)
				}
				if ic.BrowserCert == nil || ic.BrowserCert.Sent != tc.wantSent {
					t.Errorf("conn %v: browser_cert %+v, want sent %v", h.ConnID, ic.BrowserCert, tc.wantSent)
				}
				if tc.wantSent && leafSubject(ic.BrowserCert) != "CN=alice@intercept.test" {
					t.Errorf("conn %v: browser chose %+v", h.ConnID, ic.BrowserCert)
				}
			}
		})
	}
}

// TestInterceptMirrorOnTheWire: what tshark decodes of the CertificateRequest
// certlens sends the browser is byte for byte the server's issuer list
// vector (TLS 1.2 on both sides, so both are in clear).
func TestInterceptMirrorOnTheWire(t *testing.T) {
	k := newIntercept(t, nil)
	cas := append(pkitest.ManyCAs(t, 3), k.clientCA)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true})
	capture := peertest.CaptureLoopback(t, peertest.Port(t, addr), peertest.Port(t, k.proxy))
	url := "https://" + addr + "/"
	for range 2 { // the first connection learns, the second is asked
		c := k.goClient(t, k.client, nil)
		c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
		getPage(t, c, url)
		c.CloseIdleConnections()
	}
	k.ev.settle(t, addr, 2)
	server, browser := k.byPort(t, transcript.TsharkDNames(t, capture.Stop()), addr)
	if len(server) != 2 || len(browser) != 1 {
		t.Fatalf("tshark decoded %d requests from the server and %d from certlens, want 2 and 1", len(server), len(browser))
	}
	if !bytes.Equal(browser[0], server[0]) || len(browser[0]) == 0 {
		t.Errorf("certlens asked the browser with %d bytes of DNs, the server sent %d, and they differ", len(browser[0]), len(server[0]))
	}
	t.Logf("tshark: both lists are the same %d bytes (%d DNs)", len(browser[0]), len(cas))
}

// TestInterceptUntrustedUpstream: a server certlens cannot verify is an
// error event and a 502 saying why, unless insecure_upstream lets it
// through, flagged in its events.
func TestInterceptUntrustedUpstream(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure_upstream=%v", insecure), func(t *testing.T) {
			k := newIntercept(t, func(_ *icTest, o *InterceptOptions) {
				o.UpstreamRoots = x509.NewCertPool() // trusts nothing
				o.InsecureUpstream = insecure
			})
			addr := goUpstream(t, k, nil, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "secret page") })
			status, body := k.curl(t, "https://"+addr+"/")
			h := k.ev.settle(t, addr, 1)[0]
			errs := k.ev.all(t, "upstream certificate not trusted")
			if len(errs) == 0 || errs[0]["level"] != "error" || !strings.Contains(fmt.Sprint(errs[0]["error"]), "unknown authority") {
				t.Errorf("error events %v", errs)
			}
			ic := h.Intercept
			if ic == nil || ic.UpstreamVerified || ic.UpstreamVerifyError == "" {
				t.Fatalf("intercept %+v", ic)
			}
			if insecure {
				if status != 200 || body != "secret page" || !ic.InsecureUpstream {
					t.Errorf("got %d %q, intercept %+v", status, body, ic)
				}
				return
			}
			if status != http.StatusBadGateway || !strings.Contains(body, "intercept.upstream_roots") || strings.Contains(body, "secret") {
				t.Errorf("got %d %q", status, body)
			}
		})
	}
}

// TestInterceptResetAfterRequest: a TLS 1.3 server that asked for nothing
// in its handshake and resets the connection once it has read the request
// is what IIS on Server 2022 does when a certificate is wanted.
func TestInterceptResetAfterRequest(t *testing.T) {
	k := newIntercept(t, nil)
	cfg := &tls.Config{Certificates: []tls.Certificate{k.server.TLSCertificate()}, NextProtos: []string{"http/1.1"}}
	addr := tcpServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(tls.Server(c, cfg))); err == nil {
			// Closed with linger 0 by tcpServer: a reset.
			_ = c.(*net.TCPConn).SetLinger(0)
		}
	})
	status, _ := k.curl(t, "https://"+addr+"/")
	h := k.ev.settle(t, addr, 1)[0]
	if status != http.StatusBadGateway || !slices.Contains(findingIDs(h), "tls13-late-client-cert") || h.Verdict != "500.0" || !h.VerdictCertain {
		t.Errorf("status %d, verdict %v, findings %v, errors %v; event %+v", status, h.Verdict, findingIDs(h), h.Errors, h)
	}
}

// TestInterceptBrowserDistrustsCA: a browser that does not trust
// certlens's root never reaches the server; its connection's event says
// what to do.
func TestInterceptBrowserDistrustsCA(t *testing.T) {
	k := newIntercept(t, nil)
	addr := goUpstream(t, k, nil, func(w http.ResponseWriter, r *http.Request) {})
	if _, stderr, err := curl(t, k.proxy, "https://"+addr+"/"); err == nil {
		t.Fatalf("curl trusted certlens's leaf without its CA: %s", stderr)
	}
	closed := k.ev.waitClosed(t, 1)
	if c := closed[0]; c.Target != addr || !strings.Contains(c.Reason, "certlens ca export") {
		t.Errorf("connection closed event %+v", c)
	}
	// The browser's own connection to certlens is the flow it names.
	if c := closed[0]; c.CommunityID != communityid.FromStrings(0, c.ClientAddr, k.proxy) {
		t.Errorf("community_id %q, want the browser's connection %s -> %s", c.CommunityID, c.ClientAddr, k.proxy)
	}
	if hs := k.ev.handshakes(t); len(hs) != 0 {
		t.Errorf("%d handshake events for a connection that never went upstream", len(hs))
	}
}

// TestInterceptKeylogBothSides: with the key log certlens writes, tshark
// decrypts the TLS 1.3 CertificateRequests of both sides, the server's and
// certlens's mirror of it to the browser, and finds them identical.
func TestInterceptKeylogBothSides(t *testing.T) {
	keylog := filepath.Join(t.TempDir(), "keys.log")
	f, err := os.OpenFile(keylog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	k := newIntercept(t, func(_ *icTest, o *InterceptOptions) { o.KeyLog = f })
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.other, k.clientCA}, Verify: 1, TLS13: true, WWW: true})
	capture := peertest.CaptureLoopback(t, peertest.Port(t, addr), peertest.Port(t, k.proxy))
	for range 2 {
		c := k.goClient(t, k.client, nil)
		getPage(t, c, "https://"+addr+"/")
		c.CloseIdleConnections()
	}
	hs := k.ev.settle(t, addr, 2)
	server, browser := k.byPort(t, transcript.TsharkDNamesKeylog(t, capture.Stop(), keylog), addr)
	if len(server) != 2 || len(browser) != 1 {
		t.Fatalf("tshark decrypted %d requests from the server and %d from certlens, want 2 and 1", len(server), len(browser))
	}
	if !bytes.Equal(browser[0], server[1]) {
		t.Errorf("mirrored list differs from the server's: %x vs %x", browser[0], server[1])
	}
	if cr := hs[1].CertRequest; cr == nil || cr.IssuerBytes != len(server[1]) {
		t.Errorf("event cert_request %+v, tshark %d bytes", cr, len(server[1]))
	}
}

// byPort splits the issuer list vectors tshark decoded into the server's
// (sent from addr) and certlens's to the browser (sent from the proxy).
func (k *icTest) byPort(t *testing.T, reqs []transcript.DNamesSummary, addr string) (server, browser [][]byte) {
	t.Helper()
	for _, r := range reqs {
		switch r.Port {
		case peertest.Port(t, addr):
			server = append(server, r.Vector)
		case peertest.Port(t, k.proxy):
			browser = append(browser, r.Vector)
		}
	}
	return server, browser
}
