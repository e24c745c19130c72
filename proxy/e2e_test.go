package proxy

// End-to-end scenarios: real servers (openssl s_server, nginx, Apache), real
// clients (curl, openssl s_client, headless Chromium) through an observe-mode
// proxy, asserting on the parsed JSON events, and on TLS 1.2 cross-checked
// with what tshark decodes from a capture of the same connections.

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
	"github.com/certlens/certlens/rules"
)

// e2e is one end-to-end test's PKI, proxy and events.
type e2e struct {
	serverCA, clientCA, other1, other2 *pkitest.Cert
	server, client                     *pkitest.Cert
	serverCAFile                       string
	proxy                              string
	ev                                 *events
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	k := &e2e{
		serverCA: pkitest.NewCA(t, "certlens e2e server CA"),
		clientCA: pkitest.NewCA(t, "certlens e2e client CA"),
		other1:   pkitest.NewCA(t, "certlens e2e unrelated CA one"),
		other2:   pkitest.NewCA(t, "certlens e2e unrelated CA two"),
	}
	k.server = k.serverCA.NewServer(t, "127.0.0.1")
	k.client = k.clientCA.NewClient(t, "alice@e2e.test")
	k.serverCAFile = filepath.Join(t.TempDir(), "server-ca.pem")
	pkitest.WritePEM(t, k.serverCAFile, k.serverCA)
	// --expect-cert alice: wherever she is not sent, the events must say why.
	expected := rules.ExpectedCert{Name: "alice.pem", Chain: []*x509.Certificate{k.client.Cert, k.clientCA.Cert}}
	k.proxy, k.ev = startProxy(t, Options{WatchRenegotiation: true, Dial: loopbackOnly,
		Rules: rules.Options{ExpectCerts: []rules.ExpectedCert{expected}}})
	return k
}

// curl fetches url through the proxy, with cert when the server asks (nil:
// none), and returns the HTTP status and body. A failed transfer fails the test.
func (k *e2e) curl(t *testing.T, url string, cert *pkitest.Cert, extra ...string) (int, string) {
	t.Helper()
	args := []string{"--cacert", k.serverCAFile, "-w", "\n%{http_code}"}
	if cert != nil {
		certPath, keyPath := cert.WriteFiles(t, t.TempDir(), "client")
		args = append(args, "--cert", certPath, "--key", keyPath)
	}
	args = append(append(args, extra...), url)
	out, stderr, err := curl(t, k.proxy, args...)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, stderr)
	}
	i := strings.LastIndexByte(out, '\n')
	status, err := strconv.Atoi(out[i+1:])
	if err != nil {
		t.Fatalf("curl %s: no status in %q", url, out)
	}
	return status, out[:i]
}

// chromium loads url through the proxy with cert in its store (nil: none)
// and returns the page's DOM.
func (k *e2e) chromium(t *testing.T, url string, cert *pkitest.Cert) string {
	t.Helper()
	return peertest.Chromium(t, peertest.ChromiumConfig{
		URL: url, Proxy: k.proxy, ClientCert: cert, ServerCAs: []*pkitest.Cert{k.serverCA},
	})
}

// next waits for the handshake events for target after the first skip
// ones, at least one, and returns them once their connections closed.
func (k *e2e) next(t *testing.T, target string, skip int) []*event.Handshake {
	t.Helper()
	return k.ev.settle(t, target, skip+1)[skip:]
}

// answered returns the handshakes in which the client answered a
// CertificateRequest seen in clear with its Certificate message.
//
// Chromium does not answer on the connection that brought the request: it
// closes it (and the preconnected one beside it), picks a certificate, and
// repeats the request on a new connection with its answer. Those abandoned
// handshakes are logged, and must not be judged "ok"; connections that
// resume the session carry no request at all.
func answered(t *testing.T, hs []*event.Handshake) []*event.Handshake {
	t.Helper()
	var out []*event.Handshake
	for _, h := range hs {
		switch {
		case h.CertRequest == nil:
		case h.ClientCert != nil:
			out = append(out, h)
		default:
			t.Logf("conn %v: client left after the CertificateRequest: visibility %v, end %v, alerts %v, verdict %v, findings %v",
				h.ConnID, h.Visibility, h.End, h.Alerts, h.Verdict, findingIDs(h))
			if h.Verdict == "ok" {
				t.Errorf("conn %v: a handshake the client never finished is judged ok", h.ConnID)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no handshake in which the client answered a CertificateRequest among %d", len(hs))
	}
	return out
}

// sentOf is client_cert.sent, or nil when the event has no client_cert.
func sentOf(h *event.Handshake) any {
	if h.ClientCert == nil {
		return nil
	}
	return h.ClientCert.Sent
}

// expect checks one handshake event: client_cert.sent (nil: absent), the
// verdict, and findings that must be among its ids.
func expect(t *testing.T, h *event.Handshake, sent any, verdict string, findings ...string) {
	t.Helper()
	ids := findingIDs(h)
	if got := sentOf(h); got != sent {
		t.Errorf("conn %v: client_cert.sent %v, want %v", h.ConnID, got, sent)
	}
	if h.Verdict != verdict {
		t.Errorf("conn %v: verdict %v, want %s (findings %v)", h.ConnID, h.Verdict, verdict, ids)
	}
	for _, id := range findings {
		if !slices.Contains(ids, id) {
			t.Errorf("conn %v: no finding %s among %v", h.ConnID, id, ids)
		}
	}
}

// inferredAnswers returns the TLS 1.3 handshakes seen without keys in which
// the client answered the server's flight (visibility inferred), after
// checking that none of hs claims what only the keys could show. The
// connections Chromium leaves while it picks a certificate end partial.
func inferredAnswers(t *testing.T, hs []*event.Handshake) []*event.Handshake {
	t.Helper()
	var out []*event.Handshake
	for _, h := range hs {
		// A connection the client closed before the ServerHello has no version.
		if h.TLSVersion != "TLS 1.3" && (h.Visibility != "partial" || h.TLSVersion != "") || h.CertRequest != nil || h.ClientCert != nil || h.VerdictCertain {
			t.Errorf("conn %v: version %v, request %+v, certificate %+v, certain %v: TLS 1.3 without keys claims too much",
				h.ConnID, h.TLSVersion, h.CertRequest, h.ClientCert, h.VerdictCertain)
		}
		switch h.Visibility {
		case "inferred":
			if h.Inferred != nil && h.Inferred.Resumed {
				t.Logf("conn %v: resumed the session: no certificate exchange to judge", h.ConnID)
				continue
			}
			out = append(out, h)
		case "partial":
			t.Logf("conn %v: client left: end %v, inferred %+v, findings %v", h.ConnID, h.End, h.Inferred, findingIDs(h))
			if h.Verdict == "ok" {
				t.Errorf("conn %v: a handshake the client never finished is judged ok", h.ConnID)
			}
		default:
			t.Errorf("conn %v: visibility %v, want inferred (or partial)", h.ConnID, h.Visibility)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inferred handshake among %d", len(hs))
	}
	return out
}

// expectInferred checks what a TLS 1.3 handshake's record sizes said: was a
// certificate requested, was one sent ("yes", "no", "unknown"), the verdict
// (never certain) and findings that must be present.
func expectInferred(t *testing.T, h *event.Handshake, requested, sent, verdict string, findings ...string) {
	t.Helper()
	inf := h.Inferred
	if inf == nil {
		inf = &event.Inferred{}
	}
	if inf.CertRequested != requested {
		t.Errorf("conn %v: inferred.cert_requested %q, want %s (%v)", h.ConnID, inf.CertRequested, requested, inf.Evidence)
	}
	if inf.CertSent != sent {
		t.Errorf("conn %v: inferred.cert_sent %q, want %s (%v)", h.ConnID, inf.CertSent, sent, inf.Evidence)
	}
	if h.Visibility != "inferred" || h.VerdictCertain {
		t.Errorf("conn %v: visibility %v certain %v, want inferred, not certain", h.ConnID, h.Visibility, h.VerdictCertain)
	}
	expect(t, h, nil, verdict, findings...)
}

// agree checks that certlens and tshark read the same from the proxy's
// upstream connections to each server: the issuer list (count and vector
// length) of every CertificateRequest and client_cert.sent of every client
// Certificate. Connections are matched as multisets per server, since the
// events do not name the proxy's upstream port.
func (k *e2e) agree(t *testing.T, pcap string, servers ...string) {
	t.Helper()
	requests := transcript.TsharkDNames(t, pcap)
	certs := transcript.TsharkClientCerts(t, pcap)
	for _, addr := range servers {
		p := peertest.Port(t, addr)
		var ours, theirs, oursSent, theirsSent []string
		for _, h := range k.ev.handshakesFor(t, addr) {
			if h.CertRequest == nil {
				continue
			}
			ours = append(ours, fmt.Sprintf("%v DNs/%v bytes", h.CertRequest.IssuerCount, h.CertRequest.IssuerBytes))
			if h.ClientCert != nil {
				oursSent = append(oursSent, strconv.FormatBool(h.ClientCert.Sent))
			}
		}
		for _, r := range requests {
			if r.Port == p {
				theirs = append(theirs, fmt.Sprintf("%d DNs/%d bytes", r.Count, r.DNamesLen))
			}
		}
		for _, c := range certs {
			if c.Port == p {
				theirsSent = append(theirsSent, strconv.FormatBool(c.Sent()))
			}
		}
		for _, l := range [][]string{ours, theirs, oursSent, theirsSent} {
			slices.Sort(l)
		}
		if len(theirs) == 0 {
			t.Errorf("%s: tshark decoded no CertificateRequest", addr)
		}
		if !slices.Equal(ours, theirs) {
			t.Errorf("%s: issuer lists: certlens %v, tshark %v", addr, ours, theirs)
		}
		if !slices.Equal(oursSent, theirsSent) {
			t.Errorf("%s: client_cert.sent: certlens %v, tshark %v", addr, oursSent, theirsSent)
		}
		t.Logf("%s: certlens and tshark agree on %d requests %v, certificates sent %v", addr, len(ours), slices.Compact(slices.Clone(ours)), oursSent)
	}
}

// TestE2EOpenSSL runs the TLS 1.2 scenarios against openssl s_server, one
// server per issuer list, all captured by one tshark.
func TestE2EOpenSSL(t *testing.T) {
	k := newE2E(t)
	root := pkitest.NewCA(t, "certlens e2e chain root")
	inter := root.NewIntermediate(t, "certlens e2e issuing CA")
	interClient := inter.NewClient(t, "bob@e2e.test")
	many := append(pkitest.ManyCAs(t, 260), k.clientCA)

	serve := func(cfg peertest.OpenSSLServerConfig) string {
		cfg.Cert, cfg.TLS12, cfg.WWW = k.server, true, true
		if cfg.Verify == 0 {
			cfg.Verify = 1
		}
		addr, _ := peertest.OpenSSLServer(t, cfg)
		return addr
	}
	three := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.other1, k.clientCA, k.other2}})
	unrelated := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.other1, k.other2}})
	interOnly := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{inter}, Verify: 2})
	large := serve(peertest.OpenSSLServerConfig{ClientCAs: many})
	empty := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.clientCA}, NoCANames: true})
	servers := []string{three, unrelated, interOnly, large, empty}
	var ports []int
	for _, s := range servers {
		ports = append(ports, peertest.Port(t, s))
	}
	capture := peertest.CaptureLoopback(t, ports...)

	t.Run("curl sends a good certificate", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		status, body := k.curl(t, "https://"+three+"/", k.client)
		if status != 200 || !strings.Contains(body, "s_server") {
			t.Fatalf("status %d body %q", status, body)
		}
		h := k.next(t, three, before)[0]
		expect(t, h, true, "ok")
		if h.ClientCert == nil || len(h.ClientCert.Chain) == 0 || h.ClientCert.Chain[0].Subject != "CN=alice@e2e.test" {
			t.Errorf("client_cert %+v", h.ClientCert)
		}
	})

	t.Run("curl sends none", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		k.curl(t, "https://"+three+"/", nil)
		expect(t, k.next(t, three, before)[0], false, "403.7", "client-cert-not-sent")
	})

	t.Run("s_client sends a good certificate", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		out, err := peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{
			Connect: three, Proxy: k.proxy, Cert: k.client, ServerCAs: []*pkitest.Cert{k.serverCA}, TLS12: true,
		})
		if err != nil || !strings.Contains(out, "HTTP/1.0 200 ok") {
			t.Fatalf("s_client: %v\n%s", err, out)
		}
		expect(t, k.next(t, three, before)[0], true, "ok")
	})

	// s_server -verify (not -Verify) goes on whatever the verification
	// says, so the handshake completes and the rules judge the certificate
	// the way IIS would.
	now := time.Now()
	bad := []struct {
		name    string
		cert    *pkitest.Cert
		verdict string
		finding string
	}{
		{"key usage without digitalSignature",
			k.clientCA.NewClient(t, "ku@e2e.test", pkitest.WithKeyType(pkitest.RSA2048), pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment)),
			"403.16", "client-cert-key-usage"},
		{"extended key usage without clientAuth",
			k.clientCA.NewClient(t, "eku@e2e.test", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)),
			"403.16", "client-cert-ext-key-usage"},
		{"expired",
			k.clientCA.NewClient(t, "expired@e2e.test", pkitest.WithValidity(now.Add(-72*time.Hour), now.Add(-24*time.Hour))),
			"403.17", "client-cert-expired"},
	}
	for _, tt := range bad {
		t.Run("curl sends a certificate with "+tt.name, func(t *testing.T) {
			before := len(k.ev.handshakesFor(t, three))
			if status, body := k.curl(t, "https://"+three+"/", tt.cert); status != 200 {
				t.Fatalf("status %d body %q", status, body)
			}
			expect(t, k.next(t, three, before)[0], true, tt.verdict, tt.finding)
		})
	}

	t.Run("Chromium sends nothing when the list names other CAs", func(t *testing.T) {
		dom := k.chromium(t, "https://"+unrelated+"/", k.client)
		if !strings.Contains(dom, "no client certificate available") {
			t.Errorf("s_server's page does not say no certificate came:\n%s", dom)
		}
		for _, h := range answered(t, k.next(t, unrelated, 0)) {
			expect(t, h, false, "403.7", "client-cert-not-sent", "expected-cert-not-selectable")
			// The finding names the CA the list lacks: alice's issuer.
			for _, f := range h.Findings {
				if f.ID == "expected-cert-not-selectable" {
					detail := f.Detail
					if !strings.Contains(detail, "reaches none of the 2 CA names") || !strings.Contains(detail, "CN=certlens e2e client CA") {
						t.Errorf("expected-cert-not-selectable does not name the missing CA: %s", detail)
					}
				}
			}
		}
	})

	t.Run("Chromium sends its certificate when the list names only the intermediate", func(t *testing.T) {
		dom := k.chromium(t, "https://"+interOnly+"/", interClient)
		if strings.Contains(dom, "no client certificate available") {
			t.Errorf("s_server's page says no certificate came:\n%s", dom)
		}
		for _, h := range answered(t, k.next(t, interOnly, 0)) {
			expect(t, h, true, "ok")
			if h.CertRequest == nil || !slices.Equal(h.CertRequest.Issuers, []string{"CN=certlens e2e issuing CA"}) {
				t.Errorf("cert_request %+v", h.CertRequest)
			}
		}
	})

	t.Run("issuer list of 261 CAs over 16 KiB", func(t *testing.T) {
		k.curl(t, "https://"+large+"/", k.client)
		h := k.next(t, large, 0)[0]
		// curl sends its certificate despite the size: the list warns about
		// SChannel clients, it is no 403.7 for this one.
		expect(t, h, true, "ok", "issuer-list-too-large")
		wantBytes := pkitest.IssuerListSize(many)
		cr := h.CertRequest
		if cr == nil {
			t.Fatal("no cert_request")
		}
		if cr.IssuerCount != len(many) {
			t.Errorf("issuer_count %v, want %d", cr.IssuerCount, len(many))
		}
		if cr.IssuerBytes != wantBytes || wantBytes <= 16<<10 {
			t.Errorf("issuer_bytes %v, want %d (> 16 KiB)", cr.IssuerBytes, wantBytes)
		}
		if cr.Records < 2 {
			t.Errorf("records %v: a list this size spans several", cr.Records)
		}
	})

	t.Run("empty issuer list", func(t *testing.T) {
		k.curl(t, "https://"+empty+"/", k.client)
		h := k.next(t, empty, 0)[0]
		expect(t, h, true, "ok", "issuer-list-empty")
		if h.CertRequest == nil || h.CertRequest.IssuerCount != 0 {
			t.Errorf("cert_request %+v", h.CertRequest)
		}
	})

	k.agree(t, capture.Stop(), servers...)
}

// TestE2ENginx runs nginx with ssl_verify_client optional and on (TLS 1.2,
// cross-checked with tshark) and on over TLS 1.3, which observe mode reads
// from record sizes only.
func TestE2ENginx(t *testing.T) {
	k := newE2E(t)
	cas := []*pkitest.Cert{k.clientCA}
	optional := peertest.Nginx(t, peertest.NginxConfig{Cert: k.server, ClientCAs: cas, VerifyClient: "optional", Protocols: "TLSv1.2"})
	on := peertest.Nginx(t, peertest.NginxConfig{Cert: k.server, ClientCAs: cas, VerifyClient: "on", Protocols: "TLSv1.2"})
	tls13 := peertest.Nginx(t, peertest.NginxConfig{Cert: k.server, ClientCAs: cas, VerifyClient: "on", Protocols: "TLSv1.3"})
	capture := peertest.CaptureLoopback(t, peertest.Port(t, optional), peertest.Port(t, on))

	tests := []struct {
		name    string
		server  string
		cert    *pkitest.Cert
		status  int
		body    string
		sent    bool
		verdict string
		finding string
	}{
		{"optional, curl sends a good certificate", optional, k.client, 200, "verify=SUCCESS", true, "ok", ""},
		{"optional, curl sends none: the site answers 403", optional, nil, 403, "verify=NONE", false, "403.7", "client-cert-not-sent"},
		{"on, curl sends a good certificate", on, k.client, 200, "verify=SUCCESS", true, "ok", ""},
		{"on, curl sends none: nginx answers 400", on, nil, 400, "No required SSL certificate was sent", false, "403.7", "client-cert-not-sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(k.ev.handshakesFor(t, tt.server))
			status, body := k.curl(t, "https://"+tt.server+"/", tt.cert)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
			var findings []string
			if tt.finding != "" {
				findings = append(findings, tt.finding)
			}
			expect(t, k.next(t, tt.server, before)[0], tt.sent, tt.verdict, findings...)
		})
	}

	t.Run("optional, Chromium sends a good certificate", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, optional))
		dom := k.chromium(t, "https://"+optional+"/", k.client)
		if !strings.Contains(dom, "verify=SUCCESS") {
			t.Errorf("page:\n%s", dom)
		}
		for _, h := range answered(t, k.next(t, optional, before)) {
			expect(t, h, true, "ok")
		}
	})

	t.Run("TLS 1.3, curl: inferred from record sizes", func(t *testing.T) {
		status, body := k.curl(t, "https://"+tls13+"/", k.client)
		if status != 200 || !strings.Contains(body, "verify=SUCCESS") {
			t.Errorf("curl got %d %q", status, body)
		}
		expectInferred(t, inferredAnswers(t, k.next(t, tls13, 0))[0], "yes", "yes", "ok")
	})
	t.Run("TLS 1.3, Chromium: inferred from record sizes", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, tls13))
		dom := k.chromium(t, "https://"+tls13+"/", k.client)
		if !strings.Contains(dom, "verify=SUCCESS") {
			t.Errorf("page:\n%s", dom)
		}
		for _, h := range inferredAnswers(t, k.next(t, tls13, before)) {
			expectInferred(t, h, "yes", "yes", "ok")
		}
	})

	k.agree(t, capture.Stop(), optional, on)
}

// TestE2EApacheRenegotiation: Apache asks for the certificate of one
// location only, after the request, by TLS 1.2 renegotiation, as IIS does
// by default. Observe mode sees a second, encrypted handshake.
func TestE2EApacheRenegotiation(t *testing.T) {
	k := newE2E(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}, TLS12Only: true})
	url := "https://" + addr + peertest.ApacheSecurePath
	const page = "verify=SUCCESS subject=CN=alice@e2e.test"

	// renegotiated checks that a connection carried an initial handshake
	// without a CertificateRequest and then a renegotiation.
	renegotiated := func(t *testing.T, hs []*event.Handshake) {
		t.Helper()
		found := false
		for id, c := range byConn(hs) {
			if len(c) < 2 {
				continue
			}
			found = true
			if c[0].Phase != "initial" || c[0].CertRequest != nil {
				t.Errorf("conn %v: first handshake phase %v, cert_request %+v", id, c[0].Phase, c[0].CertRequest)
			}
			r := c[1]
			if r.Phase != "renegotiation" || r.Index != 1 {
				t.Errorf("conn %v: second handshake phase %v index %v", id, r.Phase, r.Index)
			}
			if ids := findingIDs(r); !slices.Contains(ids, "cert-request-by-renegotiation") {
				t.Errorf("conn %v: renegotiation findings %v", id, ids)
			}
			t.Logf("conn %v: renegotiation visibility %v verdict %v findings %v", id, r.Visibility, r.Verdict, findingIDs(r))
		}
		if !found {
			t.Errorf("no connection with a second handshake among %d events", len(hs))
		}
	}

	t.Run("curl", func(t *testing.T) {
		status, body := k.curl(t, url, k.client)
		if body = strings.TrimSpace(body); status != 200 || body != page {
			t.Errorf("got %d %q, want 200 %q", status, body, page)
		}
		renegotiated(t, k.next(t, addr, 0))
	})

	t.Run("Chromium", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, addr))
		dom := k.chromium(t, url, k.client)
		if !strings.Contains(dom, page) {
			t.Errorf("page:\n%s", dom)
		}
		renegotiated(t, k.next(t, addr, before))
	})
}
