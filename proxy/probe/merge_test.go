package probe

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestMergeClientView: what the probe knew as the client fills only what
// the parser could not read, and says so in the visibility.
func TestMergeClientView(t *testing.T) {
	ca := pkitest.NewCA(t, "merge CA")
	server := ca.NewServer(t, "localhost")
	state := tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		NegotiatedProtocol: "http/1.1", PeerCertificates: []*x509.Certificate{server.Cert}}
	dn1, dn2 := ca.Cert.RawSubject, server.Cert.RawSubject
	cri := &tls.CertificateRequestInfo{AcceptableCAs: [][]byte{dn1, dn2}, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}
	reneg := func() *handshake.Handshake {
		return &handshake.Handshake{Index: 1, Phase: handshake.PhaseRenegotiation, Visibility: handshake.VisibilityEncrypted,
			End: handshake.EndFinished, Version: handshake.VersionTLS12}
	}
	fatal := handshake.AlertUnknownCA

	t.Run("renegotiation with a request", func(t *testing.T) {
		m := mergeClientView(reneg(), &clientView{state: state, request: cri, sent: [][]byte{[]byte("leaf")}, done: true}, nil)
		cr := m.CertRequest
		if m.Visibility != handshake.VisibilityDecrypted || cr == nil || len(cr.Issuers) != 2 || cr.IssuerBytes != 4+len(dn1)+len(dn2) ||
			cr.SignatureSchemes[0] != 0x0403 || cr.Records != 1 || cr.TLS13 {
			t.Errorf("%s %+v", m.Visibility, cr)
		}
		if m.ClientCertificate == nil || len(m.ClientCertificate.Chain) != 1 || !m.ClientCertificateVerify {
			t.Errorf("client certificate %+v", m.ClientCertificate)
		}
		if m.ServerHello == nil || m.ServerHello.CipherSuite != 0xc02b || m.ServerHello.ALPN != "http/1.1" || m.ServerCertificate == nil {
			t.Errorf("server hello %+v", m.ServerHello)
		}
	})
	t.Run("renegotiation without a request", func(t *testing.T) {
		m := mergeClientView(reneg(), &clientView{state: state, done: true}, nil)
		if m.Visibility != handshake.VisibilityDecrypted || m.CertRequest != nil || m.ClientCertificate != nil {
			t.Errorf("%s request %+v certificate %+v", m.Visibility, m.CertRequest, m.ClientCertificate)
		}
	})
	t.Run("clear handshake keeps what the wire showed", func(t *testing.T) {
		wire := &handshake.CertificateRequest{Issuers: []handshake.DN{{Raw: dn1}}, IssuerBytes: 2 + len(dn1), Records: 1}
		h := &handshake.Handshake{Phase: handshake.PhaseInitial, Visibility: handshake.VisibilityClear, End: handshake.EndFinished,
			Version: handshake.VersionTLS12, ServerHello: &handshake.ServerHello{Version: handshake.VersionTLS12}, CertRequest: wire,
			ServerCertificate: &handshake.CertificateMsg{}, ClientCertificate: &handshake.CertificateMsg{Chain: [][]byte{}}}
		m := mergeClientView(h, &clientView{state: state, request: cri, sent: [][]byte{}, done: true}, nil)
		if m.Visibility != handshake.VisibilityClear || m.CertRequest != wire {
			t.Errorf("%s %+v", m.Visibility, m.CertRequest)
		}
	})
	t.Run("completed by the client, cut short for the parser", func(t *testing.T) {
		h := reneg()
		h.Version, h.Phase, h.Visibility, h.End = handshake.VersionTLS13, handshake.PhaseInitial, handshake.VisibilityPartial, handshake.EndEOF
		m := mergeClientView(h, &clientView{state: state, done: true}, nil)
		if m.End != handshake.EndFinished || m.Visibility != handshake.VisibilityDecrypted {
			t.Errorf("end %s visibility %s", m.End, m.Visibility)
		}
		if h.End != handshake.EndEOF {
			t.Error("the parser's handshake was modified")
		}
	})
	t.Run("the server's alert, read by crypto/tls", func(t *testing.T) {
		h := reneg()
		h.End, h.Alerts = handshake.EndAlert, []handshake.Alert{{From: handshake.FromServer, Encrypted: true}}
		m := mergeClientView(h, nil, &fatal)
		if len(m.Alerts) != 1 || m.Alerts[0].Encrypted || m.Alerts[0].Description != fatal || m.Alerts[0].Level != handshake.AlertFatal {
			t.Errorf("alerts %+v", m.Alerts)
		}
		if !h.Alerts[0].Encrypted {
			t.Error("the parser's alerts were modified")
		}
	})
}
