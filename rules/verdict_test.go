package rules

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestPrecedence has one row per conflict between ranks of evidence: the
// higher rank sets the verdict, and the finding of the lower rank stays
// but no longer predicts what the higher rank contradicts.
func TestPrecedence(t *testing.T) {
	f := newFixture(t)
	good := f.inter.NewClient(t, "alice")
	noEKU := f.inter.NewClient(t, "bob", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	foreign := f.foreign.NewClient(t, "eve")
	big := dns(f.root)
	for len(big) < 700 {
		big = append(big, dns(f.inter, f.foreign)...)
	}
	tls13 := func(cr *handshake.CertificateRequest, sent bool) *handshake.Handshake {
		h := tls12(cr, nil)
		h.Version, h.Visibility = handshake.VersionTLS13, handshake.VisibilityDecrypted
		h.ServerHello = &handshake.ServerHello{Version: handshake.VersionTLS13, CipherSuite: 0x1301}
		if sent {
			h.ClientCertificate = &handshake.CertificateMsg{Chain: [][]byte{good.DER}}
		}
		return h
	}
	emptyAuthorities := request(nil)
	emptyAuthorities.TLS13 = true
	malformed := tls13(emptyAuthorities, false)
	malformed.ClientCertificate, malformed.ClientFinished, malformed.ServerFinished = nil, false, false
	malformed.End = handshake.EndAlert
	malformed.Alerts = []handshake.Alert{{From: handshake.FromClient, Level: handshake.AlertFatal, Description: 50}}
	psk := tls13(nil, false)
	psk.ServerHello.Extensions = []uint16{43, 41}
	clientReneg := tls12(request(dns(f.root)), good)
	clientReneg.Phase, clientReneg.Visibility = handshake.PhaseRenegotiation, handshake.VisibilityEncrypted
	clientReneg.CertRequest, clientReneg.ClientCertificate = nil, nil
	clientReneg.Messages = []string{"client:encrypted(448)", "server:encrypted(141)"}
	serverReneg := *clientReneg
	serverReneg.Messages = []string{"server:encrypted(28)", "client:encrypted(448)"}
	http200 := &HTTPOutcome{Status: 200}
	bigInferred := func(sent handshake.Tri) *handshake.Handshake {
		h := tls13(nil, false)
		h.Visibility = handshake.VisibilityInferred
		h.Inferred = &handshake.Inference{CertRequested: handshake.Yes, CertSent: sent, CertRequestLen: 60812, CertRequestMin: 60812,
			CertRequestRecords: 4, Evidence: "server records [...]"}
		return h
	}
	apachePHA := &HTTPOutcome{Status: 403, Body: "<title>403 Forbidden</title><p>Cannot perform Post-Handshake Authentication.<br />"}

	cases := []struct {
		name     string
		h        *handshake.Handshake
		ev       Evidence
		opts     Options
		verdict  Verdict
		certain  bool
		finding  string  // must be present
		predicts Verdict // what that finding still predicts
	}{
		{name: "outcome over prediction: HTTP 200 after a certificate IIS would refuse (EKU)", h: tls12(request(dns(f.root)), noEKU), ev: Evidence{HTTP: http200},
			verdict: VerdictOK, certain: true, finding: "client-cert-ext-key-usage", predicts: VerdictNone},
		{name: "outcome over prediction: HTTP 200 after a chain under no listed CA", h: tls12(request(dns(f.root)), foreign), ev: Evidence{HTTP: http200},
			verdict: VerdictOK, certain: true, finding: "client-cert-issuer-not-listed", predicts: VerdictNone},
		{name: "outcome over prediction: HTTP 403.16 observed beats a 403.7 guess", h: tls12(request(big), nil), ev: Evidence{HTTP: &HTTPOutcome{Status: 403, Substatus: "403.16"}},
			verdict: Verdict40316, certain: true, finding: "http-403-observed", predicts: Verdict40316},
		{name: "outcome over wire: a fatal alert read ends it", h: func() *handshake.Handshake {
			h := tls12(request(dns(f.root)), nil)
			h.End, h.Alerts = handshake.EndAlert, []handshake.Alert{{From: handshake.FromServer, Level: handshake.AlertFatal, Description: handshake.AlertHandshakeFailure}}
			return h
		}(), verdict: VerdictHandshakeFailed, certain: true, finding: "client-cert-not-sent", predicts: Verdict4037},
		{name: "outcome: the client's own fatal alert is a failure, not an abandonment", h: malformed,
			verdict: VerdictHandshakeFailed, certain: true, finding: "cert-request-malformed", predicts: VerdictNone},
		{name: "wire over prediction: a certificate sent rules out 403.7 from a 60 KB list", h: tls12(request(big), good),
			verdict: VerdictOK, certain: true, finding: "issuer-list-too-large", predicts: VerdictNone},
		{name: "wire over prediction: a client that hung up to pick is unknown, even with a 60 KB list", h: func() *handshake.Handshake {
			h := tls12(request(big), nil)
			h.ClientCertificate, h.ClientFinished, h.ServerFinished, h.End = nil, false, false, handshake.EndEOF
			return h
		}(), verdict: VerdictUnknown, finding: "client-abandoned-after-request"},
		{name: "inference over prediction: record sizes show a certificate sent", h: func() *handshake.Handshake {
			h := tls13(nil, false)
			h.Visibility = handshake.VisibilityInferred
			inf := handshake.InferTLS13(0x1301, []int{23, 254, 900, 97, 53, 200}, []int{1200, 97, 53})
			h.Inferred = &inf
			return h
		}(), opts: Options{ClientCertHosts: []string{"iis.example.test"}}, verdict: VerdictOK},
		{name: "inference: a 60 KB request seen only by its record sizes, no certificate after it", h: bigInferred(handshake.No),
			verdict: Verdict4037, finding: "issuer-list-too-large", predicts: Verdict4037},
		{name: "inference over prediction: a 60 KB request by record sizes, and a certificate after it", h: bigInferred(handshake.Yes),
			verdict: VerdictOK, finding: "issuer-list-too-large", predicts: VerdictNone},
		{name: "prediction only: an empty certificate, nothing else seen", h: tls12(request(dns(f.root)), nil),
			verdict: Verdict4037, finding: "client-cert-not-sent", predicts: Verdict4037},
		{name: "a later handshake decides: TLS 1.2 without a request to a host that requires one", h: tls12(nil, nil),
			opts: Options{ClientCertHosts: []string{"iis.example.test"}}, verdict: VerdictUnknown, finding: "cert-request-by-renegotiation", predicts: Verdict4037},
		{name: "TLS 1.3 PSK resumption decrypted: the earlier session's certificate state, no 500.0", h: psk,
			opts: Options{ClientCertHosts: []string{"iis.example.test"}}, verdict: VerdictOK, certain: true, finding: "tls13-late-client-cert", predicts: VerdictNone},
		{name: "outcome: Apache's post-handshake 403 to a client that offered none is 403.7", h: tls13(nil, false), ev: Evidence{HTTP: apachePHA},
			verdict: Verdict4037, certain: true, finding: "tls13-late-client-cert", predicts: Verdict4037},
		{name: "outcome of certlens's own client: the post-handshake 403 says nothing of a browser that offered it", h: tls13(nil, false),
			ev: Evidence{HTTP: apachePHA, OwnClientNoPHA: true}, verdict: VerdictUnknown, finding: "intercept-no-post-handshake-auth"},
		{name: "a renegotiation the client started is not the server asking", h: clientReneg, verdict: VerdictUnknown, finding: "cert-request-by-renegotiation"},
		{name: "a renegotiation the server started", h: &serverReneg, verdict: VerdictUnknown, finding: "cert-request-by-renegotiation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Diagnose(tc.h, tc.ev, tc.opts)
			if r.Verdict != tc.verdict || r.Certain != tc.certain {
				t.Errorf("verdict %s certain %v, want %s %v; findings %v", r.Verdict, r.Certain, tc.verdict, tc.certain, ids(r))
			}
			if r.Certain && tc.h.Visibility == handshake.VisibilityInferred {
				t.Errorf("certain from record sizes")
			}
			if tc.finding == "" {
				return
			}
			var got *Finding
			for i := range r.Findings {
				if r.Findings[i].ID == tc.finding {
					got = &r.Findings[i]
				}
			}
			if got == nil {
				t.Fatalf("%s did not fire: %v", tc.finding, ids(r))
			}
			if got.Predicts != tc.predicts {
				t.Errorf("%s predicts %q, want %q (%s)", tc.finding, got.Predicts, tc.predicts, got.Detail)
			}
			if tc.predicts == VerdictNone && got.Predicts == VerdictNone && r.Verdict != VerdictUnknown && tc.finding != "cert-request-malformed" &&
				tc.finding != "tls13-late-client-cert" && !strings.Contains(got.Detail, "Not this handshake's outcome") {
				t.Errorf("%s lost its prediction without saying why: %s", tc.finding, got.Detail)
			}
		})
	}
	// Who started a renegotiation shows in the summary.
	if r := Diagnose(clientReneg, Evidence{}, Options{}); !strings.Contains(r.Findings[0].Summary, "client started") {
		t.Errorf("client-started renegotiation: %+v", r.Findings)
	}
	if r := Diagnose(&serverReneg, Evidence{}, Options{}); !strings.Contains(r.Findings[0].Summary, "requested by TLS renegotiation") {
		t.Errorf("server-started renegotiation: %+v", r.Findings)
	}
}

// TestConnectionVerdict: the connection comes to what its last handshake
// that answered says; a handshake that waits for a renegotiation gives its
// pending verdict only if none follows.
func TestConnectionVerdict(t *testing.T) {
	type hs struct {
		v       Verdict
		certain bool
		pending Verdict
	}
	cases := []struct {
		name    string
		in      []hs
		want    Verdict
		certain bool
	}{
		{"no handshake", nil, VerdictNone, false},
		{"one handshake", []hs{{Verdict4037, false, ""}}, Verdict4037, false},
		{"renegotiation carried the certificate", []hs{{VerdictUnknown, false, Verdict4037}, {VerdictOK, true, ""}}, VerdictOK, true},
		{"renegotiation came with no certificate", []hs{{VerdictUnknown, false, Verdict4037}, {Verdict4037, false, ""}}, Verdict4037, false},
		{"no renegotiation followed", []hs{{VerdictUnknown, false, Verdict4037}}, Verdict4037, false},
		{"a later handshake nobody could read", []hs{{VerdictOK, true, ""}, {VerdictUnknown, false, ""}}, VerdictUnknown, false},
	}
	for _, tc := range cases {
		var c Connection
		for _, h := range tc.in {
			c.Add(h.v, h.certain, h.pending)
		}
		if v, certain := c.Verdict(); v != tc.want || certain != tc.certain {
			t.Errorf("%s: %q %v, want %q %v", tc.name, v, certain, tc.want, tc.certain)
		}
	}
}
