package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

// zapFields encodes v through zap's JSON encoder and returns the object
// without zap's own keys.
func zapFields(t *testing.T, msg string, v zapcore.ObjectMarshaler) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"})
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel))
	log.Info(msg, zap.Inline(v))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "msg")
	return m
}

func jsonFields(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestZapMatchesJSON holds the hand-written zap encodings to the struct tags:
// analyze --json and the proxy's log must print the same event.
func TestZapMatchesJSON(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens event CA")
	leaf := ca.NewClient(t, "alice")
	h := &handshake.Handshake{
		Index: 1, Phase: handshake.PhaseRenegotiation, Visibility: handshake.VisibilityClear, End: handshake.EndAlert,
		Version:     handshake.VersionTLS12,
		ClientHello: &handshake.ClientHello{ServerName: "iis.example.test", ALPN: []string{"http/1.1"}},
		ServerHello: &handshake.ServerHello{CipherSuite: 0xc02b, ALPN: "http/1.1"},
		CertRequest: &handshake.CertificateRequest{CertTypes: []handshake.CertificateType{64}, SignatureSchemes: []handshake.SignatureScheme{0x0403},
			Issuers: []handshake.DN{{Raw: ca.Cert.RawSubject}}, IssuerBytes: 2 + len(ca.Cert.RawSubject), Records: 2},
		ClientCertificate: &handshake.CertificateMsg{Chain: [][]byte{leaf.DER}},
		Alerts:            []handshake.Alert{{From: handshake.FromServer, Level: handshake.AlertFatal, Description: handshake.AlertUnknownCA}, {From: handshake.FromClient, Encrypted: true}},
		Errors:            handshake.Errors{errors.New("example error")},
	}
	r := rules.Diagnose(h, rules.Evidence{}, rules.Options{})
	if len(r.Findings) == 0 {
		t.Fatal("want findings to compare")
	}
	cases := []struct {
		name string
		v    zapcore.ObjectMarshaler
	}{
		{"full handshake", NewHandshake(Meta{ConnID: "a-1", Mode: "observe", ClientAddr: "127.0.0.1:1", Target: "iis.example.test:443", CommunityID: "1:wCb3OG7yAFWelaUydu0D+125CLM="}, h, r)},
		{"bare handshake", NewHandshake(Meta{ConnID: "a-2", Mode: "observe"}, &handshake.Handshake{Visibility: handshake.VisibilityPartial, End: handshake.EndEOF, Phase: handshake.PhaseInitial}, rules.Report{Findings: []rules.Finding{}, Verdict: "unknown"})},
		{"inferred TLS 1.3 handshake", NewHandshake(Meta{ConnID: "a-4", Mode: "observe"}, &handshake.Handshake{Visibility: handshake.VisibilityInferred, End: handshake.EndFinished, Phase: handshake.PhaseInitial,
			Version: handshake.VersionTLS13, Inferred: &handshake.Inference{CertRequested: handshake.Yes, CertSent: handshake.No, CertRequestLen: 237, ServerAlert: true, Resumed: true, Evidence: "records"}}, rules.Report{Findings: []rules.Finding{}, Verdict: "403.7"})},
		{"probed handshake with its HTTP answer", Diagnose(Meta{ConnID: "probe-1", Mode: "probe", Target: "iis.example.test:443"}, h,
			rules.Evidence{HTTP: &rules.HTTPOutcome{Status: 403, Substatus: "403.7"}}, rules.Options{})},
		{"closed", &Closed{ConnID: "a-1", Mode: "observe", BytesUp: 10, BytesDown: 20, DurationMS: 1.5, Reason: "client closed", Handshakes: 2, TLSVersion: "TLS 1.2", Errors: []string{"x"}}},
		{"closed, not TLS", &Closed{ConnID: "a-3", Mode: "observe", Reason: "server closed", NotTLS: "not TLS: starts with \"SSH-2\""}},
		{"analyzed handshake with both frames", withPCAP(NewHandshake(Meta{ConnID: "c.pcap#3", Mode: "analyze", ClientAddr: "[::1]:50000", Target: "[::1]:443", AppProtocol: "smtp-starttls"}, h, r),
			&PCAPRef{Stream: 3, Frames: &PCAPFrames{CertRequest: 12, ClientCert: 15}})},
		{"analyzed handshake with the request's frame only", withPCAP(NewHandshake(Meta{ConnID: "c.pcap#4", Mode: "analyze"}, h, r),
			&PCAPRef{Stream: 4, Frames: &PCAPFrames{CertRequest: 7}})},
		{"analyzed handshake without frames", withPCAP(NewHandshake(Meta{ConnID: "c.pcap#0", Mode: "analyze"}, h, r), &PCAPRef{})},
		{"intercepted handshake with the browser's choice", withIntercept(NewHandshake(Meta{ConnID: "i-1", Mode: "intercept", Target: "iis.example.test:443"}, h, r),
			&Intercept{ClientCertSource: "none configured for iis.example.test", BrowserAsked: "mirrored", BrowserIssuerCount: 1,
				BrowserCert: NewClientCert([][]byte{leaf.DER}), BrowserPHA: true, UpstreamVerified: false, UpstreamVerifyError: "x509: unknown authority", InsecureUpstream: true})},
		{"intercepted handshake, browser not asked", withIntercept(NewHandshake(Meta{ConnID: "i-2", Mode: "intercept"}, h, r),
			&Intercept{BrowserAsked: "not_asked", UpstreamVerified: true})},
		{"analyzed connection", &Closed{ConnID: "c.pcap#3", Mode: "analyze", Reason: "client closed", Handshakes: 1, PCAP: &PCAPRef{Stream: 3}}},
		{"analyzed connection that stayed plaintext", &Closed{ConnID: "c.pcap#5", Mode: "analyze", AppProtocol: "smtp", Reason: "client closed", NotTLS: "smtp: no STARTTLS", PCAP: &PCAPRef{Stream: 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			z, j := zapFields(t, "x", tc.v), jsonFields(t, tc.v)
			zb, _ := json.Marshal(z)
			jb, _ := json.Marshal(j)
			if !bytes.Equal(zb, jb) {
				t.Errorf("zap and JSON encodings differ:\nzap:  %s\njson: %s", zb, jb)
			}
		})
	}
}

func withIntercept(e *Handshake, i *Intercept) *Handshake {
	e.Intercept, e.HTTPStatus, e.HTTPSubstatus = i, 403, "403.7"
	return e
}

func withPCAP(e *Handshake, p *PCAPRef) *Handshake {
	e.PCAP = p
	return e
}

// TestDiagnoseUsesTargetHost: the shared helper gives host-based rules the
// target's host when the ClientHello names none, as the proxy always did.
func TestDiagnoseUsesTargetHost(t *testing.T) {
	h := &handshake.Handshake{
		Phase: handshake.PhaseInitial, Visibility: handshake.VisibilityClear, End: handshake.EndFinished,
		Version:     handshake.VersionTLS13,
		ClientHello: &handshake.ClientHello{},
		ServerHello: &handshake.ServerHello{Version: handshake.VersionTLS13},
	}
	opts := rules.Options{ClientCertHosts: []string{"10.0.0.9"}}
	e := Diagnose(Meta{ConnID: "x", Mode: "analyze", Target: "10.0.0.9:443"}, h, rules.Evidence{}, opts)
	if want := rules.Diagnose(h, rules.Evidence{Host: "10.0.0.9"}, opts); e.Verdict != string(want.Verdict) || len(e.Findings) != len(want.Findings) {
		t.Errorf("verdict %s with %d findings, want %s with %d", e.Verdict, len(e.Findings), want.Verdict, len(want.Findings))
	}
	if e.Verdict == string(rules.VerdictOK) {
		t.Errorf("a TLS 1.3 handshake to a host listed in client_cert_hosts without a request is %s", e.Verdict)
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		verdict string
		certain bool
		want    string
	}{
		{"ok", true, "info"}, {"unknown", false, "info"}, {"403.7", false, "warn"}, {"403.7", true, "error"}, {"handshake_failed", true, "error"},
	} {
		e := &Handshake{Verdict: tc.verdict, VerdictCertain: tc.certain}
		if got := e.Level(); got != tc.want {
			t.Errorf("verdict %s certain %v: level %s, want %s", tc.verdict, tc.certain, got, tc.want)
		}
	}
}

// TestIssuerNames: the event shows each DN as DN.String does, unparsable
// DNs included, in wire order, whether the request was parsed (its list
// from the cache) or built by hand.
func TestIssuerNames(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens event names CA")
	dns := []handshake.DN{{Raw: ca.Cert.RawSubject}, {Raw: []byte{0x30, 0x03, 0x01}}, {Raw: ca.Cert.RawSubject}}
	var vector []byte
	for _, dn := range dns {
		vector = append(vector, byte(len(dn.Raw)>>8), byte(len(dn.Raw)))
		vector = append(vector, dn.Raw...)
	}
	body := append([]byte{1, 64, 0, 2, 4, 3, byte(len(vector) >> 8), byte(len(vector))}, vector...)
	parsed, err := handshake.ParseCertificateRequest(body, false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range []*handshake.CertificateRequest{parsed, {Issuers: dns, IssuerBytes: len(vector)}} {
		e := NewHandshake(Meta{ConnID: "a-1", Mode: "observe"}, &handshake.Handshake{CertRequest: cr}, rules.Report{})
		var want []string
		for _, dn := range dns {
			want = append(want, dn.String())
		}
		if !slices.Equal(e.CertRequest.Issuers, want) || e.CertRequest.IssuerCount != 3 {
			t.Errorf("issuers %q, want %q", e.CertRequest.Issuers, want)
		}
	}
}

// A renegotiation's ServerHello is encrypted: its event shows the ALPN the
// parser carried over from the connection.
func TestRenegotiationEventShowsConnectionALPN(t *testing.T) {
	h := &handshake.Handshake{Index: 1, Phase: handshake.PhaseRenegotiation, Visibility: handshake.VisibilityEncrypted,
		End: handshake.EndFinished, Version: handshake.VersionTLS12, ALPN: "h2"}
	r := rules.Diagnose(h, rules.Evidence{}, rules.Options{})
	e := NewHandshake(Meta{ConnID: "a-1", Mode: "observe"}, h, r)
	if e.ALPN != "h2" || len(e.Findings) == 0 || e.Findings[0].ID != "renegotiation-over-http2" {
		t.Errorf("alpn %q findings %+v", e.ALPN, e.Findings)
	}
}
