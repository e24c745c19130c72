package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
	"github.com/certlens/certlens/rules"
)

type probeFixture struct {
	serverCA, server, clientCA, other1, other2 *pkitest.Cert
}

func newProbeFixture(t *testing.T) *probeFixture {
	f := &probeFixture{serverCA: pkitest.NewCA(t, "certlens probe server CA"), clientCA: pkitest.NewCA(t, "certlens probe client CA"),
		other1: pkitest.NewCA(t, "certlens probe other CA 1"), other2: pkitest.NewCA(t, "certlens probe other CA 2")}
	f.server = f.serverCA.NewServer(t, "localhost")
	return f
}

func runProbe(t *testing.T, addr string, cfg Config) []*Attempt {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port = host, port
	if len(cfg.Versions) == 0 {
		cfg.Versions = []uint16{tls.VersionTLS13, tls.VersionTLS12}
	}
	as, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := invariant.NewSource(t)
	for _, a := range as {
		for _, e := range a.Events {
			src.Event("handshake", e)
		}
		if a.Closed != nil {
			src.Event("connection closed", a.Closed)
		}
	}
	return as
}

// requests returns each attempt's cert_request events.
func requests(as []*Attempt) []*event.Handshake {
	var out []*event.Handshake
	for _, a := range as {
		for _, e := range a.Events {
			if e.CertRequest != nil {
				out = append(out, e)
			}
		}
	}
	return out
}

func wantIssuers(t *testing.T, e *event.Handshake, cas []*pkitest.Cert) {
	t.Helper()
	want, bytes := make([]string, len(cas)), pkitest.IssuerListSize(cas)
	for i, c := range cas {
		want[i] = c.Cert.Subject.String()
	}
	cr := e.CertRequest
	if cr.IssuerCount != len(cas) || cr.IssuerBytes != bytes {
		t.Errorf("%s %s: %d DNs / %d bytes, want %d / %d", e.TLSVersion, e.Phase, cr.IssuerCount, cr.IssuerBytes, len(cas), bytes)
	}
	if len(cas) <= 3 && !slices.Equal(cr.Issuers, want) {
		t.Errorf("%s %s: issuers %q, want %q", e.TLSVersion, e.Phase, cr.Issuers, want)
	}
}

// TestProbeOpenSSL: the issuer list of openssl s_server, read by the probe
// over TLS 1.3 (decrypted by being the client) and TLS 1.2 (in clear), is
// the configured list, and tshark, given the probe's key log, reads the
// same vector lengths from the wire.
func TestProbeOpenSSL(t *testing.T) {
	f := newProbeFixture(t)
	many := append(pkitest.ManyCAs(t, 260), f.clientCA)
	for _, tc := range []struct {
		name string
		cas  []*pkitest.Cert
	}{
		{"one CA", []*pkitest.Cert{f.clientCA}},
		{"three CAs", []*pkitest.Cert{f.other1, f.clientCA, f.other2}},
		{"261 CAs", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: f.server, ClientCAs: tc.cas, Verify: 1, WWW: true})
			capture := peertest.CaptureLoopback(t, peertest.Port(t, addr))
			keylog := filepath.Join(t.TempDir(), "keylog")
			kl, err := os.Create(keylog)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			as := runProbe(t, addr, Config{KeyLogWriter: kl})
			t.Logf("probe of %d CAs, TLS 1.3 then 1.2: %v", len(tc.cas), time.Since(start))
			kl.Close()
			pcap := capture.Stop()
			reqs := requests(as)
			if len(reqs) != 2 {
				t.Fatalf("want a request per version, got %d; attempts %+v", len(reqs), as)
			}
			for i, want := range []string{"TLS 1.3", "TLS 1.2"} {
				e := reqs[i]
				if e.TLSVersion != want || e.Phase != "initial" || e.HTTPStatus != 200 {
					t.Errorf("request %d: %s %s HTTP %d", i, e.TLSVersion, e.Phase, e.HTTPStatus)
				}
				wantIssuers(t, e, tc.cas)
				if e.ClientCert == nil || e.ClientCert.Sent {
					t.Errorf("%s: client_cert %+v, want an empty one", want, e.ClientCert)
				}
				if len(tc.cas) < 100 && e.Verdict != "ok" {
					t.Errorf("%s: verdict %s (server answered 200); findings %+v", want, e.Verdict, e.Findings)
				}
			}
			if v := reqs[0].Visibility; v != "decrypted" {
				t.Errorf("TLS 1.3 visibility %s, want decrypted", v)
			}
			if v := reqs[1].Visibility; v != "clear" {
				t.Errorf("TLS 1.2 visibility %s, want clear", v)
			}
			var theirs []int
			for _, d := range transcript.TsharkDNamesKeylog(t, pcap, keylog) {
				if d.Port == peertest.Port(t, addr) {
					theirs = append(theirs, d.DNamesLen)
					if d.Count != len(tc.cas) {
						t.Errorf("tshark counts %d DNs, want %d", d.Count, len(tc.cas))
					}
				}
			}
			ours := []int{reqs[0].CertRequest.IssuerBytes, reqs[1].CertRequest.IssuerBytes}
			t.Logf("issuer_bytes %v (tshark %v), TLS 1.2 request in %d records; bytes from the server %d and %d",
				ours, theirs, reqs[1].CertRequest.Records, as[0].Closed.BytesDown, as[1].Closed.BytesDown)
			if !slices.Equal(ours, theirs) {
				t.Errorf("issuer_bytes: probe %v, tshark dnames_len %v", ours, theirs)
			}
			if len(tc.cas) > 200 {
				if r := reqs[1].CertRequest.Records; r < 4 {
					t.Errorf("TLS 1.2: a %d-byte list in %d records, want at least 4 (measured by the parser)", reqs[1].CertRequest.IssuerBytes, r)
				}
				for _, e := range reqs {
					if !hasFinding(e, "issuer-list-too-large") {
						t.Errorf("%s: no issuer-list-too-large; findings %v", e.TLSVersion, eventFindings(e))
					}
				}
			}
		})
	}
}

// TestProbeApacheRenegotiation: Apache asks for the certificate of
// /secure/ only after the request: by renegotiation in TLS 1.2, which the
// probe follows and decrypts, and not at all in TLS 1.3 for a client
// without post-handshake auth (403).
func TestProbeApacheRenegotiation(t *testing.T) {
	f := newProbeFixture(t)
	cas := []*pkitest.Cert{f.other1, f.clientCA}
	alice := f.clientCA.NewClient(t, "alice@probe.test")
	tlsAlice := alice.TLSCertificate()
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: f.server, ClientCAs: cas})

	t.Run("TLS 1.2 renegotiation with a certificate", func(t *testing.T) {
		capture := peertest.CaptureLoopback(t, peertest.Port(t, addr))
		keylog := filepath.Join(t.TempDir(), "keylog")
		kl, err := os.Create(keylog)
		if err != nil {
			t.Fatal(err)
		}
		as := runProbe(t, addr, Config{Path: peertest.ApacheSecurePath, Versions: []uint16{tls.VersionTLS12}, Certificate: &tlsAlice, KeyLogWriter: kl})
		kl.Close()
		pcap := capture.Stop()
		a := as[0]
		if a.Err != nil || a.HTTP == nil || a.HTTP.Status != 200 || !strings.Contains(a.HTTP.Body, "verify=SUCCESS") {
			t.Fatalf("err %v http %+v", a.Err, a.HTTP)
		}
		if len(a.Events) != 2 {
			t.Fatalf("%d handshakes, want the initial one and the renegotiation", len(a.Events))
		}
		init, reneg := a.Events[0], a.Events[1]
		if init.CertRequest != nil || init.Visibility != "clear" {
			t.Errorf("initial: %s, request %+v", init.Visibility, init.CertRequest)
		}
		if reneg.Phase != "renegotiation" || reneg.Visibility != "decrypted" || reneg.CertRequest == nil {
			t.Fatalf("renegotiation: %s %s request %+v", reneg.Phase, reneg.Visibility, reneg.CertRequest)
		}
		wantIssuers(t, reneg, cas)
		// tshark decrypts the renegotiation with the probe's key log: the
		// list the probe took from crypto/tls is the one on the wire.
		theirs := transcript.TsharkDNamesKeylog(t, pcap, keylog)
		if len(theirs) != 1 || theirs[0].DNamesLen != reneg.CertRequest.IssuerBytes || theirs[0].Count != len(cas) {
			t.Errorf("tshark %+v, probe %d bytes", theirs, reneg.CertRequest.IssuerBytes)
		}
		if reneg.ClientCert == nil || !reneg.ClientCert.Sent || reneg.ClientCert.Chain[0].Subject != "CN=alice@probe.test" {
			t.Errorf("client_cert %+v", reneg.ClientCert)
		}
		if !hasFinding(reneg, "cert-request-by-renegotiation") || reneg.Verdict != "ok" {
			t.Errorf("verdict %s findings %v", reneg.Verdict, eventFindings(reneg))
		}
	})

	t.Run("TLS 1.2 renegotiation without a certificate", func(t *testing.T) {
		as := runProbe(t, addr, Config{Path: peertest.ApacheSecurePath, Versions: []uint16{tls.VersionTLS12}})
		a := as[0]
		if len(a.Events) != 2 {
			t.Fatalf("%d handshakes (err %v)", len(a.Events), a.Err)
		}
		reneg := a.Events[1]
		if reneg.ClientCert == nil || reneg.ClientCert.Sent {
			t.Errorf("client_cert %+v", reneg.ClientCert)
		}
		if reneg.Verdict == "ok" || !hasFinding(reneg, "client-cert-not-sent") {
			t.Errorf("verdict %s findings %v (err %v, http %+v)", reneg.Verdict, eventFindings(reneg), a.Err, a.HTTP)
		}
		t.Logf("Apache without a certificate: err %v, http %+v, alerts %+v, verdict %s", a.Err, a.HTTP, reneg.Alerts, reneg.Verdict)
	})

	t.Run("TLS 1.3: no post-handshake auth, Apache answers 403", func(t *testing.T) {
		as := runProbe(t, addr, Config{Path: peertest.ApacheSecurePath, Versions: []uint16{tls.VersionTLS13}, Certificate: &tlsAlice})
		a := as[0]
		if a.HTTP == nil || a.HTTP.Status != 403 || len(a.Events) != 1 {
			t.Fatalf("err %v http %+v events %d", a.Err, a.HTTP, len(a.Events))
		}
		e := a.Events[0]
		if !hasFinding(e, "tls13-late-client-cert") || e.Verdict != "403.7" || !e.VerdictCertain {
			t.Errorf("verdict %s certain %v findings %v", e.Verdict, e.VerdictCertain, eventFindings(e))
		}
	})
}

// contradicted checks that finding id is present and predicts nothing,
// saying why: the HTTP answer the probe got outranks it.
func contradicted(t *testing.T, e *event.Handshake, id string) {
	t.Helper()
	for _, f := range e.Findings {
		if f.ID != id {
			continue
		}
		if f.Predicts != rules.VerdictNone || !strings.Contains(f.Detail, "Not this handshake's outcome") {
			t.Errorf("%s %s: %s predicts %q: %s", e.TLSVersion, e.Phase, id, f.Predicts, f.Detail)
		}
		return
	}
	t.Errorf("%s %s: no finding %s among %v", e.TLSVersion, e.Phase, id, eventFindings(e))
}

// TestProbeVerdictLargeIssuerList: the probe's side of issue 19's case in
// proxy's TestVerdictLargeIssuerListCertificateSent. A 60 KB issuer list
// (261 CAs) is a warning about SChannel's 16 KB limit, not a 403.7 for a
// client that sent its certificate and got the page: ok, certain, and the
// finding stays without a prediction.
func TestProbeVerdictLargeIssuerList(t *testing.T) {
	f := newProbeFixture(t)
	many := append(pkitest.ManyCAs(t, 260), f.clientCA)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: f.serverCA.NewServer(t, "127.0.0.1"), ClientCAs: many,
		Verify: 1, TLS12: true, WWW: true})
	alice := f.clientCA.NewClient(t, "alice@probe.test").TLSCertificate()
	pool := x509.NewCertPool()
	pool.AddCert(f.serverCA.Cert)
	a := runProbe(t, addr, Config{Versions: []uint16{tls.VersionTLS12}, Certificate: &alice, RootCAs: pool})[0]
	if a.Err != nil || a.HTTP == nil || a.HTTP.Status != 200 || len(a.Events) != 1 {
		t.Fatalf("err %v http %+v events %d", a.Err, a.HTTP, len(a.Events))
	}
	e := a.Events[0]
	if e.CertRequest == nil || e.CertRequest.IssuerBytes != pkitest.IssuerListSize(many) {
		t.Errorf("cert_request %+v, want %d bytes", e.CertRequest, pkitest.IssuerListSize(many))
	}
	if e.ClientCert == nil || !e.ClientCert.Sent || e.Verdict != "ok" || !e.VerdictCertain {
		t.Errorf("client_cert %+v verdict %s certain %v findings %v", e.ClientCert, e.Verdict, e.VerdictCertain, eventFindings(e))
	}
	contradicted(t, e, "issuer-list-too-large")
	if a.Closed.Verdict != "ok" || a.Closed.VerdictCertain == nil || !*a.Closed.VerdictCertain {
		t.Errorf("connection verdict %s %v", a.Closed.Verdict, a.Closed.VerdictCertain)
	}
}

// TestProbeVerdictHTTP200: the probe's side of proxy's
// TestVerdictHTTP200AfterCertificateIISWouldRefuse. openssl s_server
// -verify 1 answers 200 whatever certificate comes. IIS would refuse one
// without clientAuth in its EKU, or from a CA not in the list (403.16),
// and the findings say so; but the probe saw the 200, over TLS 1.3 and
// 1.2, and that is the verdict.
func TestProbeVerdictHTTP200(t *testing.T) {
	f := newProbeFixture(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: f.serverCA.NewServer(t, "127.0.0.1"),
		ClientCAs: []*pkitest.Cert{f.clientCA}, Verify: 1, WWW: true})
	for _, tc := range []struct {
		name, finding string
		cert          *pkitest.Cert
	}{
		{"EKU without clientAuth", "client-cert-ext-key-usage", f.clientCA.NewClient(t, "eku@probe.test", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))},
		{"issuer not listed", "client-cert-issuer-not-listed", f.other1.NewClient(t, "eve@probe.test")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cert.TLSCertificate()
			for _, a := range runProbe(t, addr, Config{Certificate: &c}) {
				if a.Err != nil || a.HTTP == nil || a.HTTP.Status != 200 || len(a.Events) != 1 {
					t.Fatalf("%x: err %v http %+v events %d", a.Version, a.Err, a.HTTP, len(a.Events))
				}
				e := a.Events[0]
				if e.Verdict != "ok" || !e.VerdictCertain || e.HTTPStatus != 200 {
					t.Errorf("%s: verdict %s certain %v http %d findings %v", e.TLSVersion, e.Verdict, e.VerdictCertain, e.HTTPStatus, eventFindings(e))
				}
				contradicted(t, e, tc.finding)
			}
		})
	}
}

// TestProbeNginx: nginx asks in the initial handshake; what it answers
// depends on the certificate presented, and the probe reports both sides.
func TestProbeNginx(t *testing.T) {
	f := newProbeFixture(t)
	cas := []*pkitest.Cert{f.clientCA, f.other1}
	alice := f.clientCA.NewClient(t, "alice@probe.test").TLSCertificate()
	addr := peertest.Nginx(t, peertest.NginxConfig{Cert: f.server, ClientCAs: cas, VerifyClient: "optional", Protocols: "TLSv1.2 TLSv1.3"})
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		status int
	}{{"with a certificate", &alice, 200}, {"without", nil, 403}} {
		t.Run(tc.name, func(t *testing.T) {
			as := runProbe(t, addr, Config{Certificate: tc.cert})
			reqs := requests(as)
			if len(reqs) != 2 {
				t.Fatalf("%d requests", len(reqs))
			}
			for _, e := range reqs {
				wantIssuers(t, e, cas)
				if e.HTTPStatus != tc.status || e.ClientCert == nil || e.ClientCert.Sent != (tc.cert != nil) {
					t.Errorf("%s: HTTP %d client_cert %+v", e.TLSVersion, e.HTTPStatus, e.ClientCert)
				}
				wantVerdict := "ok"
				if tc.cert == nil {
					wantVerdict = "403.7"
				}
				if e.Verdict != wantVerdict {
					t.Errorf("%s: verdict %s, want %s; findings %v", e.TLSVersion, e.Verdict, wantVerdict, eventFindings(e))
				}
			}
		})
	}
}

func TestProbeConnectErrors(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	as := runProbe(t, addr, Config{Versions: []uint16{tls.VersionTLS12}})
	if stage(as[0].Err) != "connect" || !strings.Contains(as[0].Err.Error(), "connect to "+addr) {
		t.Errorf("err %v", as[0].Err)
	}
	as = runProbe(t, "127.0.0.1:443", Config{Versions: []uint16{tls.VersionTLS12}, Proxy: &url.URL{Scheme: "http", Host: addr}})
	if stage(as[0].Err) != "connect" || !strings.Contains(as[0].Err.Error(), "(the proxy)") {
		t.Errorf("err %v", as[0].Err)
	}
}

// TestProbeVersionRefused: a TLS 1.2-only server refuses TLS 1.3; that is
// no failure to report, and TLS 1.2 goes on.
func TestProbeVersionRefused(t *testing.T) {
	f := newProbeFixture(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: f.server, ClientCAs: []*pkitest.Cert{f.clientCA}, Verify: 1, WWW: true, TLS12: true})
	pool := x509.NewCertPool()
	pool.AddCert(f.serverCA.Cert)
	as := runProbe(t, addr, Config{RootCAs: pool})
	if !as[0].Unsupported || len(as[0].Events) != 0 {
		t.Errorf("TLS 1.3: unsupported %v, %d events, err %v", as[0].Unsupported, len(as[0].Events), as[0].Err)
	}
	if as[1].Err != nil || len(as[1].Events) != 1 || as[1].Trust != nil {
		t.Errorf("TLS 1.2: err %v, %d events, trust %v", as[1].Err, len(as[1].Events), as[1].Trust)
	}
}

func hasFinding(e *event.Handshake, id string) bool { return slices.Contains(eventFindings(e), id) }

func eventFindings(e *event.Handshake) []string {
	var out []string
	for _, f := range e.Findings {
		out = append(out, f.ID)
	}
	return out
}

// TestProbeResetAfterRequest: a TLS 1.3 server that asks for nothing in
// the handshake and resets the connection once it has read the request,
// as IIS on Server 2022 does when a path wants a client certificate. (A Go
// server: no real peer here behaves like that.)
func TestProbeResetAfterRequest(t *testing.T) {
	f := newProbeFixture(t)
	cert := f.server.TLSCertificate()
	addr := peertest.TCPServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		buf := make([]byte, 4096)
		if _, err := tc.Read(buf); err == nil {
			_ = c.(*net.TCPConn).SetLinger(0) // closed with RST
		}
	})
	as := runProbe(t, addr, Config{Versions: []uint16{tls.VersionTLS13}})
	a := as[0]
	if a.HTTP != nil || !strings.Contains(a.Err.Error(), "connection reset") || len(a.Events) != 1 {
		t.Fatalf("http %+v err %v events %d", a.HTTP, a.Err, len(a.Events))
	}
	e := a.Events[0]
	// The probe made the request itself: no answer came, the reset did.
	if !hasFinding(e, "tls13-late-client-cert") || e.Verdict != "500.0" || !e.VerdictCertain {
		t.Errorf("verdict %s certain %v findings %v visibility %s errors %v", e.Verdict, e.VerdictCertain, eventFindings(e), e.Visibility, e.Errors)
	}
}

// TestProbeIssuerListOver64KiB: 282 CAs make a CertificateRequest of 65,560
// bytes, over the 64 KiB crypto/tls accepts. The probe's TLS client gives
// up on it, and the probe still reads the whole list from the wire.
func TestProbeIssuerListOver64KiB(t *testing.T) {
	f := newProbeFixture(t)
	cas := append(pkitest.ManyCAs(t, 281), f.clientCA)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: f.server, ClientCAs: cas, Verify: 1, WWW: true, TLS12: true})
	as := runProbe(t, addr, Config{Versions: []uint16{tls.VersionTLS12}})
	if len(as) != 1 || as[0].Err == nil || len(as[0].Events) != 1 {
		t.Fatalf("attempts %+v", as)
	}
	e := as[0].Events[0]
	if e.CertRequest == nil || e.CertRequest.IssuerCount != len(cas) || e.CertRequest.IssuerBytes != pkitest.IssuerListSize(cas) {
		t.Fatalf("cert_request %+v, want %d DNs, %d bytes", e.CertRequest, len(cas), pkitest.IssuerListSize(cas))
	}
	// Go's client refuses the message with a fatal alert of its own: a
	// failed handshake, seen on the wire, not a client that left to pick.
	if !hasFinding(e, "issuer-list-too-large") || hasFinding(e, "client-abandoned-after-request") || e.Verdict != "handshake_failed" || !e.VerdictCertain {
		t.Errorf("verdict %s findings %v", e.Verdict, eventFindings(e))
	}
}
