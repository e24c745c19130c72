package capture

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// peerPKI is the certificates of a real-peer test: a server certificate,
// a client certificate whose CN is user, and the client CA listed with two
// others in the server's request.
type peerPKI struct {
	serverCA, server, clientCA, client   *pkitest.Cert
	cas                                  []*pkitest.Cert
	dir, serverCAPath, certPath, keyPath string
}

func newPeerPKI(t *testing.T, user string) *peerPKI {
	p := &peerPKI{serverCA: pkitest.NewCA(t, "certlens peers server CA"), dir: t.TempDir()}
	p.server = p.serverCA.NewServer(t, "localhost")
	p.clientCA = pkitest.NewCA(t, "certlens peers client CA")
	p.client = p.clientCA.NewClient(t, user)
	p.cas = append(pkitest.ManyCAs(t, 2), p.clientCA)
	p.serverCAPath = filepath.Join(p.dir, "server-ca.pem")
	pkitest.WritePEM(t, p.serverCAPath, p.serverCA)
	p.certPath, p.keyPath = p.client.WriteFiles(t, p.dir, "client")
	return p
}

// peerHandshakes analyses a capture of real peers and checks it against
// tshark (dissector: what tshark is told the server port carries): every
// handshake names app and asked for a certificate listing cas;
// sent says, in order, whether each client sent one.
func peerHandshakes(t *testing.T, path string, port int, dissector, app string, cas []*pkitest.Cert, sent ...bool) []*event.Handshake {
	t.Helper()
	evs, st := analyzeFile(t, path, Options{})
	var hs []*event.Handshake
	for _, e := range evs {
		if h := e.Handshake; h != nil {
			hs = append(hs, h)
			if h.AppProtocol != app || h.CertRequest == nil || h.CertRequest.IssuerCount != len(cas) || h.CertRequest.IssuerBytes != pkitest.IssuerListSize(cas) {
				t.Errorf("handshake: %s", jsonOf(t, h))
			}
		}
		if c := e.Closed; c != nil && strings.HasSuffix(c.Target, ":"+strconv.Itoa(port)) && c.AppProtocol != app {
			t.Errorf("closed: %s", jsonOf(t, c))
		}
	}
	if len(hs) != len(sent) {
		t.Fatalf("%d handshakes, want %d: %s", len(hs), len(sent), jsonOf(t, evs))
	}
	for i, h := range hs {
		if h.ClientCert == nil || h.ClientCert.Sent != sent[i] {
			t.Errorf("handshake %d: client_cert %s, want sent=%v", i, jsonOf(t, h.ClientCert), sent[i])
		}
	}
	if n := matchTshark(t, path, evs, st, "-d", fmt.Sprintf("tcp.port==%d,%s", port, dissector)); n != len(sent) {
		t.Errorf("tshark shows %d CertificateRequests, want %d", n, len(sent))
	}
	return hs
}

// TestPostgresPeer: psql logs in to a PostgreSQL server whose pg_hba.conf
// wants a certificate (hostssl ... cert), once with its certificate and
// once without; analyze finds both handshakes after the SSLRequest, names
// them postgresql, and agrees with tshark's pgsql dissector.
func TestPostgresPeer(t *testing.T) {
	peertest.Require(t, "tshark")
	pki := newPeerPKI(t, "postgres")
	addr := peertest.Postgres(t, peertest.PostgresConfig{Cert: pki.server, ClientCAs: pki.cas, MaxTLS: "TLSv1.2"})
	port := peertest.Port(t, addr)
	capture := peertest.CaptureLoopback(t, port)
	login := peertest.PsqlConfig{Addr: addr, User: "postgres", RootCert: pki.serverCAPath, Cert: pki.certPath, Key: pki.keyPath}
	if out, err := peertest.Psql(t, login); err != nil {
		t.Fatalf("psql with a certificate: %v\n%s", err, out)
	}
	login.Cert, login.Key = "", ""
	if out, err := peertest.Psql(t, login); err == nil {
		t.Fatalf("psql without a certificate logged in:\n%s", out)
	}
	hs := peerHandshakes(t, capture.Stop(), port, "pgsql", "postgresql", pki.cas, true, false)
	if hs[0].Verdict != "ok" || !hs[0].VerdictCertain {
		t.Errorf("the login with a certificate: %s %v", hs[0].Verdict, hs[0].VerdictCertain)
	}
}

// TestMariaDBPeer: the mariadb client logs in as a user created REQUIRE
// X509, with its certificate and without; analyze finds both handshakes
// after the server's greeting, names them mysql, and agrees with tshark's
// mysql dissector.
func TestMariaDBPeer(t *testing.T) {
	peertest.Require(t, "tshark")
	pki := newPeerPKI(t, "alice")
	addr := peertest.MariaDB(t, peertest.MariaDBConfig{Cert: pki.server, ClientCAs: pki.cas, User: "alice", TLSVersion: "TLSv1.2"})
	port := peertest.Port(t, addr)
	capture := peertest.CaptureLoopback(t, port)
	if out, err := peertest.MariaDBLogin(t, addr, "alice", pki.serverCAPath, pki.certPath, pki.keyPath); err != nil {
		t.Fatalf("mariadb with a certificate: %v\n%s", err, out)
	}
	if out, err := peertest.MariaDBLogin(t, addr, "alice", pki.serverCAPath, "", ""); err == nil {
		t.Fatalf("mariadb without a certificate logged in:\n%s", out)
	}
	// MariaDB asks with an empty list: it never hands OpenSSL its CA
	// names (SSL_CTX_set_client_CA_list).
	hs := peerHandshakes(t, capture.Stop(), port, "mysql", "mysql", nil, true, false)
	if hs[0].Verdict != "ok" || !hs[0].VerdictCertain {
		t.Errorf("the login with a certificate: %s %v", hs[0].Verdict, hs[0].VerdictCertain)
	}
}

// TestDovecotPeer: openssl s_client upgrades IMAP and POP3 connections to
// Dovecot (ssl_verify_client_cert = yes) with STARTTLS and STLS, with its
// certificate and without; analyze finds every handshake after the
// upgrade, names it, and agrees with tshark's imap and pop dissectors.
func TestDovecotPeer(t *testing.T) {
	peertest.Require(t, "tshark")
	pki := newPeerPKI(t, "alice")
	imapAddr, pop3Addr := peertest.Dovecot(t, peertest.DovecotConfig{Cert: pki.server, ClientCAs: pki.cas})
	for _, tc := range []struct {
		addr, starttls, dissector, app, logout string
	}{
		{imapAddr, "imap", "imap", "imap-starttls", "a1 LOGOUT\r\n"},
		{pop3Addr, "pop3", "pop", "pop3-stls", "QUIT\r\n"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			port := peertest.Port(t, tc.addr)
			capture := peertest.CaptureLoopback(t, port)
			for _, cert := range []*pkitest.Cert{pki.client, nil} {
				out, err := peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{Connect: tc.addr, Cert: cert, ServerCAs: []*pkitest.Cert{pki.serverCA},
					TLS12: true, Request: tc.logout, Extra: []string{"-starttls", tc.starttls}})
				if err != nil {
					t.Fatalf("s_client -starttls %s: %v\n%s", tc.starttls, err, out)
				}
			}
			peerHandshakes(t, capture.Stop(), port, tc.dissector, tc.app, pki.cas, true, false)
		})
	}
}
