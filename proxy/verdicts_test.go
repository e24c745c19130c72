package proxy

// Issue 19's "cases that are wrong today", each against real peers and in
// every mode of the proxy that sees it (the probe's side of them is in
// proxy/probe): the verdict certlens writes, on the handshake and on the
// connection, is what the client really got (its HTTP status, its TLS
// alert, the server's own log). The invariants over every event
// (internal/testkit/invariant) hold for these too; these tests say what the
// answer is, case by case.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

// findingOf returns the finding id of an event, nil when absent.
func findingOf(h *event.Handshake, id string) *rules.Finding {
	for i := range h.Findings {
		if h.Findings[i].ID == id {
			return &h.Findings[i]
		}
	}
	return nil
}

// contradicted checks that finding id is present and predicts nothing,
// saying why: a higher rank of evidence showed otherwise.
func contradicted(t *testing.T, h *event.Handshake, id string) {
	t.Helper()
	f := findingOf(h, id)
	switch {
	case f == nil:
		t.Errorf("conn %v (%s %s): no finding %s among %v", h.ConnID, h.TLSVersion, h.Phase, id, findingIDs(h))
	case f.Predicts != rules.VerdictNone || !strings.Contains(f.Detail, "Not this handshake's outcome"):
		t.Errorf("conn %v (%s %s): %s predicts %q: %s", h.ConnID, h.TLSVersion, h.Phase, id, f.Predicts, f.Detail)
	}
}

// verdictIs checks a handshake event's verdict and certainty.
func verdictIs(t *testing.T, h *event.Handshake, verdict string, certain bool) {
	t.Helper()
	if h.Verdict != verdict || h.VerdictCertain != certain {
		t.Errorf("handshake conn %v: verdict %v certain %v, want %s %v (findings %v)", h.ConnID, h.Verdict, h.VerdictCertain,
			verdict, certain, findingIDs(h))
	}
}

// closedVerdictIs checks a connection closed event's verdict and certainty.
func closedVerdictIs(t *testing.T, c *event.Closed, verdict string, certain bool) {
	t.Helper()
	if c.Verdict != verdict || c.VerdictCertain == nil || *c.VerdictCertain != certain {
		t.Errorf("connection closed conn %v: verdict %v certain %v, want %s %v", c.ConnID, c.Verdict, fmtCertain(c.VerdictCertain), verdict, certain)
	}
}

// fmtCertain prints an optional verdict_certain.
func fmtCertain(b *bool) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprint(*b)
}

// closedOf returns the "connection closed" event of h's connection.
func (e *events) closedOf(t *testing.T, h *event.Handshake) *event.Closed {
	t.Helper()
	for _, c := range e.closed(t) {
		if c.ConnID == h.ConnID {
			return c
		}
	}
	t.Fatalf("no connection closed for conn %v; log:\n%s", h.ConnID, e.text())
	return nil
}

// byConn groups handshake events by connection, in the order logged.
func byConn(hs []*event.Handshake) map[string][]*event.Handshake {
	out := map[string][]*event.Handshake{}
	for _, h := range hs {
		out[h.ConnID] = append(out[h.ConnID], h)
	}
	return out
}

// keylogObserver is an observe-mode proxy decrypting with a key log the
// clients append to, with hosts in client_cert_hosts.
func keylogObserver(t *testing.T, hosts ...string) (proxyAddr, keylogPath string, ev *events) {
	t.Helper()
	keylogPath, store := followedKeylog(t)
	proxyAddr, ev = startProxy(t, Options{WatchRenegotiation: true, Dial: loopbackOnly,
		Decrypt: DecryptOptions{Secrets: store, Wait: 3 * time.Second}, Rules: rules.Options{ClientCertHosts: hosts}})
	return proxyAddr, keylogPath, ev
}

// gotPage fetches s_server's page at addr with curl through intercept
// mode, whose configured certificate the server takes, and checks that
// the event says what curl got, ok, with finding kept but predicting
// nothing.
func (k *icTest) gotPage(t *testing.T, addr, finding string) {
	t.Helper()
	status, body := k.curl(t, "https://"+addr+"/")
	if status != 200 || !strings.Contains(body, "s_server") {
		t.Fatalf("curl got %d %.100q", status, body)
	}
	h := k.ev.settle(t, addr, 1)[0]
	if h.ClientCert == nil || !h.ClientCert.Sent || h.HTTPStatus != 200 {
		t.Errorf("client_cert %+v http_status %v", h.ClientCert, h.HTTPStatus)
	}
	verdictIs(t, h, "ok", true)
	contradicted(t, h, finding)
	closedVerdictIs(t, k.ev.closedOf(t, h), "ok", true)
}

// TestVerdictLargeIssuerListCertificateSent: a 60 KB issuer list (261
// CAs) is a warning about SChannel's 16 KB limit, not a 403.7 for a client
// that sent its certificate and got the page: observe (curl) and intercept
// say ok, and the finding stays without a prediction. (The probe: proxy/probe's
// TestProbeVerdictLargeIssuerList; analyze: internal/capture's live captures,
// and cmd/certlens.)
func TestVerdictLargeIssuerListCertificateSent(t *testing.T) {
	k := newE2E(t)
	many := append(pkitest.ManyCAs(t, 260), k.clientCA)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: many, Verify: 1, TLS12: true, WWW: true})

	t.Run("observe, curl", func(t *testing.T) {
		status, body := k.curl(t, "https://"+addr+"/", k.client)
		if status != 200 || !strings.Contains(body, "s_server") {
			t.Fatalf("curl got %d %.100q", status, body)
		}
		h := k.next(t, addr, 0)[0]
		if h.CertRequest == nil || h.CertRequest.IssuerBytes != pkitest.IssuerListSize(many) || h.ClientCert == nil || !h.ClientCert.Sent {
			t.Errorf("cert_request %+v client_cert %+v", h.CertRequest, h.ClientCert)
		}
		verdictIs(t, h, "ok", true)
		contradicted(t, h, "issuer-list-too-large")
		closedVerdictIs(t, k.ev.closedOf(t, h), "ok", true)
	})

	t.Run("intercept", func(t *testing.T) {
		ic := newIntercept(t, func(kk *icTest, o *InterceptOptions) { withClientCert(kk.client)(kk, o) })
		many := append(pkitest.ManyCAs(t, 260), ic.clientCA)
		addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: ic.server, ClientCAs: many, Verify: 1, TLS12: true, WWW: true})
		ic.gotPage(t, addr, "issuer-list-too-large")
	})
}

// TestVerdictHTTP200AfterCertificateIISWouldRefuse: openssl s_server
// -verify 1 answers 200 whatever certificate comes. IIS would refuse one
// without clientAuth in its EKU, or from a CA not in the list (403.16),
// and the findings say so; but intercept mode saw the 200 (curl through
// it), and that is the verdict. (The probe: proxy/probe's
// TestProbeVerdictHTTP200.)
func TestVerdictHTTP200AfterCertificateIISWouldRefuse(t *testing.T) {
	cases := []struct {
		name, finding string
		cert          func(k *icTest) *pkitest.Cert
	}{
		{"EKU without clientAuth", "client-cert-ext-key-usage", func(k *icTest) *pkitest.Cert {
			return k.clientCA.NewClient(t, "eku@verdict.test", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
		}},
		{"issuer not listed", "client-cert-issuer-not-listed", func(k *icTest) *pkitest.Cert { return k.other.NewClient(t, "eve@verdict.test") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cert *pkitest.Cert
			k := newIntercept(t, func(kk *icTest, o *InterceptOptions) {
				cert = tc.cert(kk)
				withClientCert(cert)(kk, o)
			})
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}, Verify: 1, WWW: true})

			k.gotPage(t, addr, tc.finding)
		})
	}
}

// TestVerdictTLS13ResumptionDecrypted: openssl s_client saves its TLS 1.3
// session (-sess_out) and resumes it (-sess_in) through observe mode with
// its key log, to a host in client_cert_hosts. The resumption carries the
// first session's certificate: no CertificateRequest is due, the server
// answers 200, and the verdict is ok, not 500.0.
func TestVerdictTLS13ResumptionDecrypted(t *testing.T) {
	k := newE2E(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}, Verify: 1, TLS13: true, WWW: true})
	host, _, _ := net.SplitHostPort(addr)
	proxyAddr, keylogPath, ev := keylogObserver(t, host)
	session := filepath.Join(t.TempDir(), "session.pem")
	connect := func(sessionArg string) string {
		t.Helper()
		out, err := peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{Connect: addr, Proxy: proxyAddr, Cert: k.client,
			ServerCAs: []*pkitest.Cert{k.serverCA}, TLS13: true, Extra: []string{sessionArg, session, "-keylogfile", keylogPath}})
		if err != nil || !strings.Contains(out, "HTTP/1.0 200 ok") {
			t.Fatalf("s_client %s: %v\n%s", sessionArg, err, out)
		}
		return out
	}
	connect("-sess_out")
	first := ev.settle(t, addr, 1)[0]
	if out := connect("-sess_in"); !strings.Contains(out, "Reused, TLSv1.3") {
		t.Fatalf("s_client did not resume its session:\n%s", out)
	}
	hs := ev.settle(t, addr, 2)
	resumed := hs[1]
	if first.Visibility != "decrypted" || first.CertRequest == nil || first.ClientCert == nil || !first.ClientCert.Sent {
		t.Errorf("first connection: visibility %v cert_request %+v client_cert %+v", first.Visibility, first.CertRequest, first.ClientCert)
	}
	verdictIs(t, first, "ok", true)
	if resumed.Visibility != "decrypted" || resumed.CertRequest != nil || resumed.ClientCert != nil {
		t.Errorf("resumption: visibility %v cert_request %+v client_cert %+v", resumed.Visibility, resumed.CertRequest, resumed.ClientCert)
	}
	late := findingOf(resumed, "tls13-late-client-cert")
	if late == nil || late.Severity != "info" || late.Predicts != rules.VerdictNone || !strings.Contains(late.Summary, "earlier session") {
		t.Errorf("tls13-late-client-cert on the resumption: %+v", late)
	}
	verdictIs(t, resumed, "ok", true)
	closedVerdictIs(t, ev.closedOf(t, resumed), "ok", true)
}

// TestVerdictApacheRenegotiationConnection: Apache asks for /secure/'s
// certificate by TLS 1.2 renegotiation after the request, as IIS does;
// curl's key log lets observe mode read both handshakes, and the host is
// in client_cert_hosts. The first handshake waits (unknown, 403.7 pending)
// for the renegotiation, which decides the connection: ok when curl's
// certificate got the page, a failure matching what curl got without one.
func TestVerdictApacheRenegotiationConnection(t *testing.T) {
	k := newE2E(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}, TLS12Only: true})
	host, _, _ := net.SplitHostPort(addr)
	proxyAddr, keylogPath, ev := keylogObserver(t, host)
	type curlRun struct {
		out, stderr string
		err         error
	}
	fetch := func(t *testing.T, cert *pkitest.Cert) (run curlRun, init, reneg *event.Handshake, closed *event.Closed) {
		t.Helper()
		before := len(ev.handshakesFor(t, addr))
		args := []string{"-sS", "--noproxy", "", "-x", "http://" + proxyAddr, "--cacert", k.serverCAFile, "-w", "\n%{http_code}"}
		if cert != nil {
			c, key := cert.WriteFiles(t, t.TempDir(), "client")
			args = append(args, "--cert", c, "--key", key)
		}
		run.out, run.stderr, run.err = runCurlEnv(t, []string{"SSLKEYLOGFILE=" + keylogPath}, append(args, "https://"+addr+peertest.ApacheSecurePath)...)
		conns := byConn(ev.settle(t, addr, before+2)[before:])
		if len(conns) != 1 {
			t.Fatalf("%d connections, want curl's one", len(conns))
		}
		for _, hs := range conns {
			if len(hs) != 2 {
				t.Fatalf("%d handshakes on the connection, want the initial one and the renegotiation", len(hs))
			}
			init, reneg = hs[0], hs[1]
		}
		if init.Visibility != "clear" || init.CertRequest != nil {
			t.Errorf("initial handshake: visibility %v cert_request %+v", init.Visibility, init.CertRequest)
		}
		// The request is answered by the renegotiation to come: unknown,
		// with 403.7 the connection's verdict only if none comes.
		verdictIs(t, init, "unknown", false)
		if f := findingOf(init, "cert-request-by-renegotiation"); f == nil || f.Predicts != "403.7" {
			t.Errorf("initial handshake: cert-request-by-renegotiation %+v", f)
		}
		if reneg.Phase != "renegotiation" || reneg.Visibility != "decrypted" || reneg.CertRequest == nil || reneg.CertRequest.IssuerCount != 1 {
			t.Errorf("renegotiation: phase %v visibility %v cert_request %+v", reneg.Phase, reneg.Visibility, reneg.CertRequest)
		}
		return run, init, reneg, ev.closedOf(t, reneg)
	}

	t.Run("curl sends its certificate and gets the page", func(t *testing.T) {
		run, _, reneg, closed := fetch(t, k.client)
		if run.err != nil || !strings.HasSuffix(run.out, "\n200") || !strings.Contains(run.out, "verify=SUCCESS") {
			t.Fatalf("curl: %v %q %s", run.err, run.out, run.stderr)
		}
		if reneg.ClientCert == nil || !reneg.ClientCert.Sent {
			t.Errorf("renegotiation client_cert %+v", reneg.ClientCert)
		}
		verdictIs(t, reneg, "ok", true)
		closedVerdictIs(t, closed, "ok", true)
	})

	t.Run("curl has no certificate", func(t *testing.T) {
		run, _, reneg, closed := fetch(t, nil)
		if reneg.ClientCert == nil || reneg.ClientCert.Sent {
			t.Errorf("renegotiation client_cert %+v", reneg.ClientCert)
		}
		// Apache ends the renegotiation with a fatal alert, which curl
		// reports; a 403 would be 403.7.
		var want string
		switch {
		case run.err != nil && strings.Contains(run.stderr, "alert handshake failure"):
			want = "handshake_failed"
		case strings.HasSuffix(run.out, "\n403"):
			want = "403.7"
		default:
			t.Fatalf("curl got neither an alert nor a 403: %v %q %s", run.err, run.out, run.stderr)
		}
		t.Logf("curl: %v %s; renegotiation alerts %v", run.err, strings.TrimSpace(run.stderr), reneg.Alerts)
		verdictIs(t, reneg, want, true)
		closedVerdictIs(t, closed, want, true)
	})
}

// TestVerdictEmptyCertificateAuthorities: openssl s_server -tls1_3
// -no_ca_names -verify 1 sends a CertificateRequest whose
// certificate_authorities list is empty, which RFC 8446 forbids. Go's
// client aborts with decode_error; read with its key log, that is a failed
// handshake, certain, and the request is malformed, not "left to pick".
// curl (OpenSSL) is lenient: it answers, and gets the page.
func TestVerdictEmptyCertificateAuthorities(t *testing.T) {
	k := newE2E(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA},
		Verify: 1, TLS13: true, NoCANames: true, WWW: true})
	proxyAddr, keylogPath, ev := keylogObserver(t)

	t.Run("Go's client aborts with decode_error", func(t *testing.T) {
		kl, err := os.OpenFile(keylogPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer kl.Close()
		pool := x509.NewCertPool()
		pool.AddCert(k.serverCA.Cert)
		alice := k.client.TLSCertificate()
		proxyURL := &url.URL{Scheme: "http", Host: proxyAddr}
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool, KeyLogWriter: kl,
			Certificates: []tls.Certificate{alice}, MinVersion: tls.VersionTLS13}}
		defer tr.CloseIdleConnections()
		_, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
		if err == nil || !strings.Contains(err.Error(), "error decoding message") {
			t.Fatalf("Go's client: %v, want it to refuse the request (decode_error)", err)
		}
		h := ev.settle(t, addr, 1)[0]
		if h.Visibility != "decrypted" || h.CertRequest == nil || h.CertRequest.IssuerCount != 0 {
			t.Errorf("visibility %v cert_request %+v", h.Visibility, h.CertRequest)
		}
		if want := []event.Alert{{From: "client", Level: "fatal", Description: "decode_error"}}; !slices.Equal(h.Alerts, want) {
			t.Errorf("alerts %v, want the client's decode_error", h.Alerts)
		}
		if ids := findingIDs(h); !slices.Contains(ids, "cert-request-malformed") || slices.Contains(ids, "client-abandoned-after-request") {
			t.Errorf("findings %v", ids)
		}
		verdictIs(t, h, "handshake_failed", true)
		closedVerdictIs(t, ev.closedOf(t, h), "handshake_failed", true)
	})

	t.Run("curl answers and gets the page", func(t *testing.T) {
		before := len(ev.handshakesFor(t, addr))
		c, key := k.client.WriteFiles(t, t.TempDir(), "client")
		out, stderr, err := runCurlEnv(t, []string{"SSLKEYLOGFILE=" + keylogPath}, "-sS", "--noproxy", "", "-x", "http://"+proxyAddr,
			"--cacert", k.serverCAFile, "--cert", c, "--key", key, "https://"+addr+"/")
		if err != nil || !strings.Contains(out, "s_server") {
			t.Fatalf("curl: %v %s", err, stderr)
		}
		h := ev.settle(t, addr, before+1)[before]
		if h.Visibility != "decrypted" || h.ClientCert == nil || !h.ClientCert.Sent || !slices.Contains(findingIDs(h), "cert-request-malformed") {
			t.Errorf("visibility %v client_cert %+v findings %v", h.Visibility, h.ClientCert, findingIDs(h))
		}
		verdictIs(t, h, "ok", true)
		closedVerdictIs(t, ev.closedOf(t, h), "ok", true)
	})
}

// TestVerdictClientStartedRenegotiation: openssl s_client renegotiates on
// its own (its R command) after sending data, and s_server
// -client_renegotiation allows it; data flows after it both ways. The
// finding says the client started it, read from the records without keys
// and from the messages with the client's key log.
func TestVerdictClientStartedRenegotiation(t *testing.T) {
	k := newE2E(t)
	addr, server := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, TLS12: true,
		Extra: []string{"-client_renegotiation"}, Start: []peertest.StartOption{peertest.WithStdinPipe()}})
	withKeys, keylogPath, keysEv := keylogObserver(t)
	for n, tc := range []struct {
		name    string
		proxy   string
		ev      *events
		extra   []string
		vis     string
		verdict string
		certain bool
	}{
		{"without keys", k.proxy, k.ev, nil, "inferred", "ok", false}, // read from its record sizes: no request, the server accepted
		{"with the client's key log", withKeys, keysEv, []string{"-keylogfile", keylogPath}, "decrypted", "ok", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"s_client", "-connect", addr, "-proxy", tc.proxy, "-tls1_2", "-noservername",
				"-CAfile", k.serverCAFile, "-verify_return_error", "-no-CApath", "-no-CAstore"}, tc.extra...)
			client := peertest.Start(t, "openssl", args, peertest.WithStdinPipe())
			if !client.WaitOutput("Verify return code", 10*time.Second) {
				t.Fatalf("no handshake:\n%s", client.Output())
			}
			before, after := fmt.Sprintf("before renegotiation %d", n), fmt.Sprintf("after renegotiation %d", n)
			fmt.Fprintln(client.Stdin, before)
			if !server.WaitOutput(before, 10*time.Second) {
				t.Fatalf("s_server did not get the data:\n%s", server.Output())
			}
			fmt.Fprintln(client.Stdin, "R")
			if !client.WaitOutput("RENEGOTIATING", 10*time.Second) {
				t.Fatalf("s_client did not renegotiate:\n%s", client.Output())
			}
			// s_server reads the data once the new handshake is done.
			fmt.Fprintln(client.Stdin, after)
			if !server.WaitOutput(after, 10*time.Second) {
				t.Fatalf("no data after the renegotiation:\nserver:\n%s\nclient:\n%s", server.Output(), client.Output())
			}
			client.Stdin.Close()
			if err := client.Wait(10 * time.Second); err != nil {
				t.Logf("s_client: %v", err)
			}
			hs := tc.ev.settle(t, addr, 2)
			reneg := hs[len(hs)-1]
			if reneg.Phase != "renegotiation" || reneg.Visibility != tc.vis || reneg.CertRequest != nil {
				t.Fatalf("renegotiation: phase %v visibility %v cert_request %+v", reneg.Phase, reneg.Visibility, reneg.CertRequest)
			}
			f := findingOf(reneg, "cert-request-by-renegotiation")
			if f == nil || f.Summary != "The client started a renegotiation on its own" || f.Predicts != rules.VerdictNone {
				t.Errorf("cert-request-by-renegotiation %+v", f)
			}
			verdictIs(t, reneg, tc.verdict, tc.certain)
			closedVerdictIs(t, tc.ev.closedOf(t, reneg), tc.verdict, tc.certain)
		})
	}
}
