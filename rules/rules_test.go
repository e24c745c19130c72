package rules

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// now is the rules' clock in these tests. pkitest mints certificates valid
// from an hour before the real time, so it must be the real time: a fixed
// date turned every certificate "not yet valid" once that hour passed.
var now = time.Now().UTC().Truncate(time.Second)

// fixture holds a small PKI: a root, an intermediate under it, and a foreign root.
type fixture struct {
	root, inter, foreign *pkitest.Cert
}

func newFixture(t *testing.T) *fixture {
	root := pkitest.NewCA(t, "certlens rules root")
	return &fixture{root: root, inter: root.NewIntermediate(t, "certlens rules issuing CA"), foreign: pkitest.NewCA(t, "certlens foreign root")}
}

func dns(cas ...*pkitest.Cert) []handshake.DN {
	out := []handshake.DN{}
	for _, c := range cas {
		out = append(out, handshake.DN{Raw: c.Cert.RawSubject})
	}
	return out
}

func request(issuers []handshake.DN) *handshake.CertificateRequest {
	n := 0
	for _, dn := range issuers {
		n += 2 + len(dn.Raw)
	}
	return &handshake.CertificateRequest{
		CertTypes:        []handshake.CertificateType{1, 64},
		SignatureSchemes: []handshake.SignatureScheme{0x0403, 0x0804, 0x0401},
		Issuers:          issuers, IssuerBytes: n, Records: 1, HasAuthorities: true,
	}
}

// tls12 is a clear, finished TLS 1.2 handshake; sent nil means no Certificate message.
func tls12(cr *handshake.CertificateRequest, sent *pkitest.Cert) *handshake.Handshake {
	h := &handshake.Handshake{Phase: handshake.PhaseInitial, Visibility: handshake.VisibilityClear, End: handshake.EndFinished,
		Version: handshake.VersionTLS12, ClientHello: &handshake.ClientHello{ServerName: "iis.example.test"},
		ServerHello: &handshake.ServerHello{Version: handshake.VersionTLS12, CipherSuite: 0xc02b}, CertRequest: cr,
		ClientFinished: true, ServerFinished: true}
	if cr != nil {
		h.ClientCertificate = &handshake.CertificateMsg{Chain: [][]byte{}}
		if sent != nil {
			for _, c := range sent.Chain() {
				if c.Parent != nil {
					h.ClientCertificate.Chain = append(h.ClientCertificate.Chain, c.DER)
				}
			}
		}
	}
	return h
}

func ids(r Report) []string {
	out := []string{}
	for _, f := range r.Findings {
		out = append(out, f.ID)
	}
	return out
}

func TestRules(t *testing.T) {
	f := newFixture(t)
	good := f.inter.NewClient(t, "alice")
	mk := func(opts ...pkitest.Option) *pkitest.Cert { return f.inter.NewClient(t, "bob", opts...) }
	rsaCert := mk(pkitest.WithKeyType(pkitest.RSA2048))
	ecdsaOnly := request(dns(f.root))
	ecdsaOnly.CertTypes = []handshake.CertificateType{64}
	ecdsaOnly.SignatureSchemes = []handshake.SignatureScheme{0x0403}
	rsaOnly := request(dns(f.root))
	rsaOnly.CertTypes = []handshake.CertificateType{1}
	rsaOnly.SignatureSchemes = []handshake.SignatureScheme{0x0401, 0x0804}
	big := dns(f.root)
	for range 100 {
		big = append(big, handshake.DN{Raw: make([]byte, 170)})
	}
	warnSize := dns(f.root)
	for range 100 {
		warnSize = append(warnSize, handshake.DN{Raw: make([]byte, 130)})
	}
	reneg := tls12(nil, nil)
	reneg.Phase, reneg.Visibility, reneg.ServerHello = handshake.PhaseRenegotiation, handshake.VisibilityEncrypted, nil
	// A renegotiation's own ServerHello is encrypted: the parser passes on
	// the connection's ALPN.
	renegH2 := tls12(nil, nil)
	renegH2.Phase, renegH2.Visibility, renegH2.ServerHello, renegH2.ALPN = handshake.PhaseRenegotiation, handshake.VisibilityEncrypted, nil, "h2"
	tls13 := &handshake.Handshake{Phase: handshake.PhaseInitial, Visibility: handshake.VisibilityEncrypted, End: handshake.EndFinished,
		Version: handshake.VersionTLS13, ClientHello: &handshake.ClientHello{ServerName: "iis.example.test"},
		ServerHello: &handshake.ServerHello{Version: handshake.VersionTLS13, CipherSuite: 0x1301}}
	tls13NoSecret := *tls13
	tls13NoSecret.SecretMissing = true
	tls13NoSecret.Errors = handshake.Errors{errors.New("decrypt: no secret in the key log for this connection's client_random")}
	tls13NoSecret.Visibility = handshake.VisibilityEncrypted
	tls13clear := *tls13
	tls13clear.Visibility = handshake.VisibilityDecrypted
	tls13pha := tls13clear
	tls13pha.ClientHello = &handshake.ClientHello{ServerName: "iis.example.test", PostHandshakeAuth: true}
	rejected := tls12(request(dns(f.root)), nil)
	rejected.End, rejected.Alerts = handshake.EndAlert, []handshake.Alert{{From: handshake.FromServer, Level: handshake.AlertFatal, Description: handshake.AlertHandshakeFailure}}
	abandoned := tls12(request(dns(f.root)), nil)
	abandoned.ClientCertificate, abandoned.ClientFinished, abandoned.ServerFinished = nil, false, false
	abandoned.End, abandoned.Alerts = handshake.EndAlert, []handshake.Alert{{From: handshake.FromServer, Level: handshake.AlertFatal, Description: 50}}
	closeNotify := tls12(request(dns(f.root)), good)
	closeNotify.Alerts = []handshake.Alert{{From: handshake.FromServer, Level: handshake.AlertWarning, Description: handshake.AlertCloseNotify}}

	inferred := func(inf handshake.Inference) *handshake.Handshake {
		h := *tls13
		h.Visibility, h.Inferred = handshake.VisibilityInferred, &inf
		return &h
	}
	notSent := inferred(handshake.InferTLS13(0x1301, []int{23, 254, 900, 97, 53, 200}, []int{25, 53}))
	sent := inferred(handshake.InferTLS13(0x1301, []int{23, 254, 900, 97, 53, 200}, []int{1200, 97, 53}))
	refused := inferred(handshake.InferTLS13(0x1301, []int{23, 254, 900, 97, 53, 19}, []int{25, 53}))
	noReq := inferred(handshake.InferTLS13(0x1301, []int{23, 900, 97, 53, 200}, []int{53}))
	// Chromium's first connections: the server's flight, then EOF while it picks.
	resumed := inferred(handshake.InferTLS13(0x1301, []int{23, 53}, []int{53}))
	walkedAway := inferred(handshake.InferTLS13(0x1301, []int{23, 254, 900, 97, 53}, nil))
	walkedAway.Visibility, walkedAway.End = handshake.VisibilityPartial, handshake.EndEOF
	walkedAwayNoReq := inferred(handshake.InferTLS13(0x1301, []int{23, 900, 97, 53}, nil))
	walkedAwayNoReq.Visibility, walkedAwayNoReq.End = handshake.VisibilityPartial, handshake.EndEOF
	cases := []struct {
		name    string
		h       *handshake.Handshake
		ev      Evidence
		opts    Options
		fires   string // the rule id that must fire ("" for none of interest)
		absent  string // a rule id that must not fire
		verdict Verdict
		certain bool
	}{
		{name: "good certificate, list names the root", h: tls12(request(dns(f.root)), good), absent: "client-cert-issuer-not-listed", verdict: VerdictOK, certain: true},
		{name: "list names only the intermediate", h: tls12(request(dns(f.inter)), good), absent: "client-cert-issuer-not-listed", verdict: VerdictOK, certain: true},
		{name: "list names neither", h: tls12(request(dns(f.foreign)), good), fires: "client-cert-issuer-not-listed", verdict: "403.16"},
		{name: "empty certificate", h: tls12(request(dns(f.root)), nil), fires: "client-cert-not-sent", verdict: "403.7"},
		{name: "empty certificate to a host that requires one", h: tls12(request(dns(f.root)), nil), opts: Options{ClientCertHosts: []string{"*.example.test"}},
			fires: "client-cert-not-sent", verdict: "403.7", certain: true},
		{name: "no request, nothing sent", h: tls12(nil, nil), absent: "client-cert-not-sent", verdict: VerdictOK, certain: true},
		{name: "empty issuer list", h: tls12(request(nil), good), fires: "issuer-list-empty", verdict: VerdictOK, certain: true},
		{name: "non-empty list is not empty", h: tls12(request(dns(f.root)), good), absent: "issuer-list-empty", verdict: VerdictOK, certain: true},
		{name: "list over 16 KiB, and a certificate came anyway", h: tls12(request(big), good), fires: "issuer-list-too-large", verdict: VerdictOK, certain: true},
		{name: "list over 16 KiB, no certificate", h: tls12(request(big), nil), fires: "issuer-list-too-large", verdict: "403.7"},
		{name: "list at 13 KiB only warns", h: tls12(request(warnSize), good), fires: "issuer-list-too-large", verdict: VerdictOK, certain: true},
		{name: "list under the warning", h: tls12(request(dns(f.root, f.foreign)), good), absent: "issuer-list-too-large", verdict: VerdictOK, certain: true},
		{name: "KU without digitalSignature", h: tls12(request(dns(f.root)), mk(pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment))), fires: "client-cert-key-usage", verdict: "403.16"},
		{name: "KU absent is fine", h: tls12(request(dns(f.root)), mk(pkitest.WithKeyUsage(0))), absent: "client-cert-key-usage", verdict: VerdictOK, certain: true},
		{name: "EKU without clientAuth", h: tls12(request(dns(f.root)), mk(pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))), fires: "client-cert-ext-key-usage", verdict: "403.16"},
		{name: "EKU absent is fine", h: tls12(request(dns(f.root)), mk(pkitest.WithNoExtKeyUsage())), absent: "client-cert-ext-key-usage", verdict: VerdictOK, certain: true},
		{name: "expired", h: tls12(request(dns(f.root)), mk(pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)))), opts: Options{Now: now},
			fires: "client-cert-expired", verdict: "403.17"},
		{name: "not yet valid", h: tls12(request(dns(f.root)), mk(pkitest.WithValidity(now.AddDate(0, 0, 1), now.AddDate(1, 0, 0)))), opts: Options{Now: now},
			fires: "client-cert-not-yet-valid", verdict: "403.17"},
		{name: "valid now", h: tls12(request(dns(f.root)), mk(pkitest.WithValidity(now.AddDate(0, 0, -1), now.AddDate(1, 0, 0)))), opts: Options{Now: now},
			absent: "client-cert-expired", verdict: VerdictOK, certain: true},
		{name: "RSA key against an ECDSA-only request", h: tls12(ecdsaOnly, rsaCert), fires: "client-cert-key-type-not-accepted", verdict: "403.16"},
		{name: "ECDSA key against an RSA-only request", h: tls12(rsaOnly, good), fires: "client-cert-key-type-not-accepted", verdict: "403.16"},
		{name: "RSA key against an RSA-only request", h: tls12(rsaOnly, rsaCert), absent: "client-cert-key-type-not-accepted", verdict: VerdictOK, certain: true},
		{name: "ECDSA key against an ECDSA-only request", h: tls12(ecdsaOnly, good), absent: "client-cert-key-type-not-accepted", verdict: VerdictOK, certain: true},
		{name: "server alert after an empty certificate", h: rejected, fires: "server-rejected-cert", verdict: VerdictHandshakeFailed, certain: true},
		{name: "close_notify is no rejection", h: closeNotify, absent: "server-rejected-cert", verdict: VerdictOK, certain: true},
		{name: "renegotiation", h: reneg, fires: "cert-request-by-renegotiation", absent: "renegotiation-over-http2", verdict: VerdictUnknown},
		{name: "renegotiation over h2", h: renegH2, fires: "renegotiation-over-http2", absent: "cert-request-by-renegotiation", verdict: VerdictUnknown},
		{name: "initial handshake is no renegotiation", h: tls12(request(dns(f.root)), good), absent: "cert-request-by-renegotiation", verdict: VerdictOK, certain: true},
		{name: "TLS 1.3 without keys", h: tls13, fires: "tls13-hidden-handshake", verdict: VerdictUnknown},
		{name: "TLS 1.2 is not hidden", h: tls12(nil, nil), absent: "tls13-hidden-handshake", verdict: VerdictOK, certain: true},
		{name: "key log set but no secret", h: &tls13NoSecret, ev: Evidence{KeylogSet: true}, fires: "keylog-secret-missing", verdict: VerdictUnknown},
		{name: "key log set, suite not decryptable", h: tls13, ev: Evidence{KeylogSet: true}, absent: "keylog-secret-missing", verdict: VerdictUnknown},
		{name: "no key log, no complaint", h: tls13, absent: "keylog-secret-missing", verdict: VerdictUnknown},
		{name: "TLS 1.3 then IIS 500 0x80070032", h: &tls13clear, ev: Evidence{HTTP: &HTTPOutcome{Status: 500, Body: "HTTP Error 500.0 ... Error Code 0x80070032"}},
			fires: "tls13-late-client-cert", verdict: "500.0", certain: true},
		{name: "TLS 1.3 then a reset after the request", h: &tls13clear, ev: Evidence{ResetAfterRequest: true}, fires: "tls13-late-client-cert", verdict: "500.0", certain: true},
		{name: "TLS 1.3 then Apache's post-handshake 403", h: &tls13clear, ev: Evidence{HTTP: &HTTPOutcome{Status: 403, Body: "Cannot perform Post-Handshake Authentication"}},
			fires: "tls13-late-client-cert", verdict: "403.7", certain: true},
		{name: "TLS 1.2 without a request to a listed host: the renegotiation decides", h: tls12(nil, nil), opts: Options{ClientCertHosts: []string{"*.example.test"}},
			fires: "cert-request-by-renegotiation", verdict: VerdictUnknown},
		{name: "TLS 1.2 without a request, host not listed", h: tls12(nil, nil), opts: Options{ClientCertHosts: []string{"other.example.test"}},
			absent: "cert-request-by-renegotiation", verdict: VerdictOK, certain: true},
		{name: "TLS 1.3 to a listed host", h: &tls13clear, opts: Options{ClientCertHosts: []string{"iis.example.test"}}, fires: "tls13-late-client-cert", verdict: "500.0"},
		{name: "TLS 1.3 with post-handshake auth offered", h: &tls13pha, ev: Evidence{ResetAfterRequest: true}, absent: "tls13-late-client-cert", verdict: VerdictOK, certain: true},
		{name: "TLS 1.3, nothing wanted", h: &tls13clear, absent: "tls13-late-client-cert", verdict: VerdictOK, certain: true},
		{name: "TLS 1.3 inferred: requested, not sent", h: notSent, fires: "client-cert-not-sent", absent: "tls13-hidden-handshake", verdict: "403.7"},
		{name: "TLS 1.3 inferred: requested and sent", h: sent, absent: "client-cert-not-sent", verdict: VerdictOK},
		{name: "TLS 1.3 inferred: refused with an alert", h: refused, fires: "client-cert-not-sent", verdict: VerdictHandshakeFailed},
		{name: "TLS 1.3 inferred: no request, host wants one", h: noReq, opts: Options{ClientCertHosts: []string{"iis.example.test"}}, fires: "tls13-late-client-cert", verdict: "500.0"},
		{name: "TLS 1.3 inferred: resumption to a listed host says whose certificate state it is", h: resumed, opts: Options{ClientCertHosts: []string{"iis.example.test"}},
			fires: "tls13-late-client-cert", verdict: VerdictOK},
		{name: "TLS 1.3 inferred: no request, nothing wanted", h: noReq, absent: "tls13-late-client-cert", verdict: VerdictOK},
		{name: "client hangs up after the request (Chromium picking)", h: abandoned, fires: "client-abandoned-after-request", absent: "server-rejected-cert", verdict: VerdictUnknown},
		{name: "TLS 1.3 inferred: client leaves before asking a listed host", h: walkedAwayNoReq, opts: Options{ClientCertHosts: []string{"iis.example.test"}}, absent: "tls13-late-client-cert", verdict: VerdictUnknown},
		{name: "TLS 1.3 inferred: client hangs up after the request", h: walkedAway, fires: "client-abandoned-after-request", absent: "client-cert-not-sent", verdict: VerdictUnknown},
		{name: "client answered, server refused", h: rejected, absent: "client-abandoned-after-request", verdict: VerdictHandshakeFailed, certain: true},
		{name: "HTTP 403.16 observed", h: tls12(request(dns(f.root)), good), ev: Evidence{HTTP: &HTTPOutcome{Status: 403, Substatus: "403.16"}},
			fires: "http-403-observed", verdict: "403.16", certain: true},
		{name: "empty certificate, then HTTP 200", h: tls12(request(dns(f.root)), nil), ev: Evidence{HTTP: &HTTPOutcome{Status: 200}},
			fires: "client-cert-not-sent", verdict: VerdictOK, certain: true},
		{name: "empty certificate, then HTTP 403", h: tls12(request(dns(f.root)), nil), ev: Evidence{HTTP: &HTTPOutcome{Status: 403}},
			fires: "client-cert-not-sent", verdict: "403.7"},
		{name: "a probe without a key: an offerable certificate needs no explaining", h: tls12(request(dns(f.root)), nil),
			ev: Evidence{NoCertToSend: true, HTTP: &HTTPOutcome{Status: 200}}, opts: Options{ExpectCerts: []ExpectedCert{{Name: "alice.pem", Chain: []*x509.Certificate{good.Cert, f.inter.Cert, f.root.Cert}}}},
			absent: "expected-cert-not-selectable", verdict: VerdictOK, certain: true},
		{name: "an unofferable certificate where the server answered without one", h: tls12(request(dns(f.root)), nil),
			ev: Evidence{HTTP: &HTTPOutcome{Status: 200}}, opts: Options{ExpectCerts: []ExpectedCert{{Name: "foreign.pem", Chain: []*x509.Certificate{f.foreign.NewClient(t, "eve").Cert, f.foreign.Cert}}}},
			fires: "expected-cert-not-selectable", verdict: VerdictOK, certain: true},
		{name: "HTTP 200 observed", h: tls12(request(dns(f.root)), good), ev: Evidence{HTTP: &HTTPOutcome{Status: 200}}, absent: "http-403-observed", verdict: VerdictOK, certain: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Diagnose(tc.h, tc.ev, tc.opts)
			got := ids(r)
			if tc.fires != "" && !slices.Contains(got, tc.fires) {
				t.Errorf("%s did not fire; findings %v", tc.fires, got)
			}
			if tc.absent != "" && slices.Contains(got, tc.absent) {
				t.Errorf("%s fired; findings %v", tc.absent, got)
			}
			if r.Verdict != tc.verdict || r.Certain != tc.certain {
				t.Errorf("verdict %s certain %v, want %s %v; findings %v", r.Verdict, r.Certain, tc.verdict, tc.certain, got)
			}
			for _, f := range r.Findings {
				if f.Summary == "" || f.Detail == "" || f.Remedy == "" || f.Severity == "" {
					t.Errorf("finding %s lacks summary, detail, remedy or severity: %+v", f.ID, f)
				}
			}
		})
	}
}

func TestWouldOffer(t *testing.T) {
	f := newFixture(t)
	chain := func(c *pkitest.Cert) []*x509.Certificate {
		var out []*x509.Certificate
		for _, x := range c.Chain() {
			out = append(out, x.Cert)
		}
		return out
	}
	good := f.inter.NewClient(t, "alice")
	everythingWrong := f.inter.NewClient(t, "mallory", pkitest.WithKeyType(pkitest.RSA2048),
		pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment), pkitest.WithExtKeyUsage(x509.ExtKeyUsageEmailProtection),
		pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)))
	ecdsaOnly := request(dns(f.foreign))
	ecdsaOnly.CertTypes, ecdsaOnly.SignatureSchemes = []handshake.CertificateType{64}, []handshake.SignatureScheme{0x0403}

	cases := []struct {
		name  string
		chain []*x509.Certificate
		cr    *handshake.CertificateRequest
		want  []string
	}{
		{"list names the root", chain(good), request(dns(f.root)), nil},
		{"list names only the intermediate", chain(good), request(dns(f.inter)), nil},
		{"list names neither", chain(good), request(dns(f.foreign)), []string{"issuer-not-listed"}},
		{"empty list accepts any", chain(good), request(nil), nil},
		{"every reason at once", chain(everythingWrong), ecdsaOnly, []string{"issuer-not-listed", "key-usage", "ext-key-usage", "expired", "key-type"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range WouldOffer(tc.chain, tc.cr, handshake.VersionTLS12, now) {
				got = append(got, r.Code)
				if r.Text == "" {
					t.Errorf("reason %s without text", r.Code)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("reasons %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNearMissExplained(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.NewClient(t, "alice")
	chain := []*x509.Certificate{leaf.Cert, f.inter.Cert, f.root.Cert}

	// The same name as the root, with UTF8String where Go wrote PrintableString.
	var rdn pkix.RDNSequence
	if _, err := asn1.Unmarshal(f.root.Cert.RawSubject, &rdn); err != nil {
		t.Fatal(err)
	}
	reencoded, err := asn1.Marshal(reencodeUTF8(rdn))
	if err != nil {
		t.Fatal(err)
	}
	sameCNOtherO, _ := asn1.Marshal(pkix.Name{CommonName: "certlens rules root", Organization: []string{"Other Org"}}.ToRDNSequence())

	for _, tc := range []struct {
		name string
		dn   []byte
		want string
	}{
		{"different string encoding", reencoded, "encoded differently (string types"},
		{"same CN, different O", sameCNOtherO, "same CN but differs elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := WouldOffer(chain, request([]handshake.DN{{Raw: tc.dn}}), handshake.VersionTLS12, now)
			if len(rs) != 1 || !strings.Contains(rs[0].Text, tc.want) {
				t.Errorf("reasons %+v, want one containing %q", rs, tc.want)
			}
		})
	}
}

// reencodeUTF8 rewrites every string attribute as a UTF8String.
func reencodeUTF8(rdn pkix.RDNSequence) []asn1.RawValue {
	var sets []asn1.RawValue
	for _, set := range rdn {
		var atvs []byte
		for _, atv := range set {
			v, _ := asn1.MarshalWithParams(atv.Value, "utf8")
			b, _ := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{atv.Type, asn1.RawValue{FullBytes: v}})
			atvs = append(atvs, b...)
		}
		sets = append(sets, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: atvs})
	}
	return sets
}

// mustFind returns the report's finding with id, failing the test when
// none fired.
func mustFind(t *testing.T, r Report, id string) *Finding {
	t.Helper()
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	t.Fatalf("%s did not fire: %v", id, ids(r))
	return nil
}

func TestExpectedCertNotSelectable(t *testing.T) {
	f := newFixture(t)
	expected := f.inter.NewClient(t, "alice", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	other := f.inter.NewClient(t, "bob")
	exp := ExpectedCert{Name: "alice.pem", Chain: []*x509.Certificate{expected.Cert, f.inter.Cert, f.root.Cert}}
	opts := Options{ExpectCerts: []ExpectedCert{exp}, Now: now}

	got := mustFind(t, Diagnose(tls12(request(dns(f.foreign)), nil), Evidence{}, opts), "expected-cert-not-selectable")
	for _, want := range []string{"alice.pem", "2 reason(s)", "reaches none of the 1 CA names", "without Client Authentication"} {
		if !strings.Contains(got.Summary+" "+got.Detail, want) {
			t.Errorf("finding lacks %q: %s / %s", want, got.Summary, got.Detail)
		}
	}
	// Another certificate sent: the client chose, nothing predicted from alice.
	if r := Diagnose(tls12(request(dns(f.root)), other), Evidence{}, opts); slices.Contains(ids(r), "expected-cert-not-selectable") || r.Verdict != VerdictOK {
		t.Errorf("fired (or not ok) although another certificate was sent: %v %s", ids(r), r.Verdict)
	}
	// Sent as expected: nothing to explain.
	if r := Diagnose(tls12(request(dns(f.root)), expected), Evidence{}, opts); slices.Contains(ids(r), "expected-cert-not-selectable") {
		t.Errorf("fired although the expected certificate was sent")
	}
	// Selectable but another was sent: a client-side cause, said as such.
	okExp := ExpectedCert{Name: "bob.pem", Chain: []*x509.Certificate{other.Cert, f.inter.Cert}}
	r := Diagnose(tls12(request(dns(f.root)), nil), Evidence{}, Options{ExpectCerts: []ExpectedCert{okExp}, Now: now})
	for _, fd := range r.Findings {
		if fd.ID == "expected-cert-not-selectable" && !strings.Contains(fd.Detail, "AT_KEYEXCHANGE") {
			t.Errorf("selectable certificate not explained as a client-side cause: %s", fd.Detail)
		}
	}
}

// TestExpectedCertFindingPerCase: a certificate a browser would not offer
// gets its reasons and, for each, what to change; one it would offer gets
// the client-side causes and their remedy, never "fix each reason" with no
// reason given.
func TestExpectedCertFindingPerCase(t *testing.T) {
	f := newFixture(t)
	chain := func(c *pkitest.Cert) []*x509.Certificate {
		return []*x509.Certificate{c.Cert, f.inter.Cert, f.root.Cert}
	}
	offerable := chain(f.inter.NewClient(t, "alice"))
	wrongEKU := chain(f.inter.NewClient(t, "mallory", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)))
	expired := chain(f.inter.NewClient(t, "old", pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))))
	foreign := []*x509.Certificate{f.foreign.NewClient(t, "eve", pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment)).Cert, f.foreign.Cert}
	answered := Evidence{HTTP: &HTTPOutcome{Status: 200}}
	cases := []struct {
		name      string
		chain     []*x509.Certificate
		ev        Evidence
		sev       Severity
		predicts  Verdict
		summary   string
		detail    []string
		remedy    []string
		remedyNot []string
	}{
		{name: "would be offered: the client is the cause", chain: offerable, sev: SeverityWarning, predicts: "403.7",
			summary:   "CN=alice (alice.pem) would be offered for this request, yet the client did not send it: the cause is on the client",
			detail:    []string{"not in the user's personal store", "private key is missing", "AT_KEYEXCHANGE"},
			remedy:    []string{"The server side is right for this certificate; fix the client.", "Personal store", "certutil -user -importPFX FILE.pfx AT_SIGNATURE", "pick it when the browser asks"},
			remedyNot: []string{"reason", "issue", "renew"}},
		{name: "would be offered, the server answered without one", chain: offerable, ev: answered, sev: SeverityWarning,
			summary: "would be offered for this request", detail: []string{"The server answered HTTP 200 without a certificate"},
			remedy: []string{"fix the client"}},
		{name: "EKU without clientAuth", chain: wrongEKU, sev: SeverityError, predicts: "403.7",
			summary:   "CN=mallory (alice.pem) is not offered by a browser for this request: 1 reason(s)",
			detail:    []string{"without Client Authentication"},
			remedy:    []string{"Issue it from a template whose Application Policies include Client Authentication."},
			remedyNot: []string{"Fix each reason", "renew", "Personal store"}},
		{name: "expired", chain: expired, sev: SeverityError, predicts: "403.7",
			summary: "1 reason(s)", detail: []string{"It expired"}, remedy: []string{"Renew it."}, remedyNot: []string{"Personal store"}},
		{name: "foreign CA and Key Usage, the server answered without one", chain: foreign, ev: answered, sev: SeverityWarning,
			summary: "2 reason(s)", detail: []string{"reaches none of the 1 CA names", "without digitalSignature", "answered HTTP 200"},
			remedy: []string{"Issue the certificate under a CA the server lists, or add its CA to the server's trusted store; issue it from a template whose Key Usage includes Digital Signature."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{ExpectCerts: []ExpectedCert{{Name: "alice.pem", Chain: tc.chain}}, Now: now}
			got := mustFind(t, Diagnose(tls12(request(dns(f.root)), nil), tc.ev, opts), "expected-cert-not-selectable")
			if got.Severity != tc.sev || got.Predicts != tc.predicts || !strings.Contains(got.Summary, tc.summary) {
				t.Errorf("got %s/%q %q, want %s/%q %q", got.Severity, got.Predicts, got.Summary, tc.sev, tc.predicts, tc.summary)
			}
			for _, w := range tc.detail {
				if !strings.Contains(got.Detail, w) {
					t.Errorf("detail lacks %q: %s", w, got.Detail)
				}
			}
			for _, w := range tc.remedy {
				if !strings.Contains(got.Remedy, w) {
					t.Errorf("remedy lacks %q: %s", w, got.Remedy)
				}
			}
			for _, w := range tc.remedyNot {
				if strings.Contains(got.Remedy, w) {
					t.Errorf("remedy has %q, which is not this case's: %s", w, got.Remedy)
				}
			}
		})
	}
}

func TestCatalogueMatchesDesign(t *testing.T) {
	// DESIGN.md's rule ids are a contract; client-abandoned-after-request,
	// cert-request-malformed and intercept-no-post-handshake-auth (issue 19)
	// extend it.
	want := []string{"client-cert-not-sent", "issuer-list-empty", "issuer-list-too-large", "client-cert-issuer-not-listed",
		"client-cert-key-usage", "client-cert-ext-key-usage", "client-cert-expired", "client-cert-not-yet-valid",
		"client-cert-key-type-not-accepted", "cert-request-by-renegotiation", "renegotiation-over-http2", "tls13-hidden-handshake",
		"server-rejected-cert", "expected-cert-not-selectable", "client-abandoned-after-request", "cert-request-malformed", "http-403-observed", "tls13-late-client-cert", "keylog-secret-missing",
		"intercept-no-post-handshake-auth"}
	var got []string
	for _, r := range Catalogue() {
		got = append(got, r.ID)
		if r.Trigger == "" || r.Remedy == "" || r.Severity == "" {
			t.Errorf("rule %s lacks trigger, remedy or severity", r.ID)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("catalogue %v\nwant %v", got, want)
	}
}
