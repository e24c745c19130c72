package handshake

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// decryptPKI is three client CAs (the issuer list), a client certificate
// from the second, and server certificates with either key type.
type decryptPKI struct {
	cas       []*pkitest.Cert
	client    *pkitest.Cert
	ecdsa     *pkitest.Cert
	rsa       *pkitest.Cert
	serverCA  *pkitest.Cert
	issuerLen int
}

var (
	decryptPKIOnce sync.Once
	decryptPKIVal  decryptPKI
)

func newDecryptPKI(t *testing.T) decryptPKI {
	decryptPKIOnce.Do(func() {
		p := decryptPKI{serverCA: pkitest.NewCA(t, "decrypt server CA")}
		for _, cn := range []string{"decrypt client CA 1", "decrypt client CA 2", "decrypt client CA 3"} {
			ca := pkitest.NewCA(t, cn)
			p.cas = append(p.cas, ca)
			p.issuerLen += 2 + len(ca.Cert.RawSubject)
		}
		p.client = p.cas[1].NewClient(t, "decrypt client")
		p.ecdsa = p.serverCA.NewServer(t, "localhost")
		p.rsa = p.serverCA.NewServer(t, "localhost", pkitest.WithKeyType(pkitest.RSA2048))
		decryptPKIVal = p
	})
	return decryptPKIVal
}

// recordedConn is one connection's two streams and the key log its client wrote.
type recordedConn struct {
	client, server []byte
	keylog         KeyLog
}

func recordedStreams(t *testing.T, rec *transcript.Recorder) (client, server []byte) {
	t.Helper()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	trs := rec.Transcripts()
	if len(trs) != 1 {
		t.Fatalf("%d connections recorded, want 1", len(trs))
	}
	return trs[0].Stream(transcript.ClientToServer), trs[0].Stream(transcript.ServerToClient)
}

// goConn runs a Go client against a Go server that asks for a certificate
// with the 3-CA list, through a recording relay, and exchanges one
// application-data message each way so that TLS 1.2 sequence numbers count
// past it.
func goConn(t *testing.T, pki decryptPKI, version uint16, suite uint16, serverCert *pkitest.Cert, sendCert bool) recordedConn {
	t.Helper()
	pool := x509.NewCertPool()
	for _, ca := range pki.cas {
		pool.AddCert(ca.Cert)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert.TLSCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   version, MaxVersion: version,
		CipherSuites: []uint16{suite},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			srvDone <- err
			return
		}
		_, err = c.Write([]byte("pong"))
		srvDone <- err
	}()
	rec, err := transcript.NewRecorder(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var kl bytes.Buffer
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the server is the test's own
		KeyLogWriter:       &kl,
		MinVersion:         version, MaxVersion: version,
		CipherSuites: []uint16{suite},
	}
	if sendCert {
		cfg.Certificates = []tls.Certificate{pki.client.TLSCertificate()}
	}
	c, err := tls.Dial("tcp", rec.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if got := tls.CipherSuiteName(c.ConnectionState().CipherSuite); got != tls.CipherSuiteName(suite) && version == tls.VersionTLS12 {
		t.Fatalf("negotiated %s", got)
	}
	client, server := recordedStreams(t, rec)
	keys, bad, err := ReadKeyLog(&kl)
	if err != nil || bad > 0 {
		t.Fatalf("Go's key log: %d bad lines, %v", bad, err)
	}
	return recordedConn{client, server, keys}
}

// checkWalk decrypts a recorded connection and checks its messages decode
// with the parser's decoders: the 3-CA issuer list and the client's
// certificate, or its empty Certificate.
func checkWalk(t *testing.T, pki decryptPKI, rc recordedConn, wantSuite CipherSuite, sendCert bool) *walked {
	t.Helper()
	c, s, sh := walkConn(t, rc.client, rc.server, rc.keylog)
	if err := errors.Join(c.err(), s.err()); err != nil {
		t.Fatal(err)
	}
	if sh.CipherSuite != wantSuite {
		t.Fatalf("negotiated %s, want %s", sh.CipherSuite, wantSuite)
	}
	tls13 := sh.Version == VersionTLS13
	crMsg := s.find(typeCertificateRequest)
	if crMsg == nil {
		t.Fatalf("no CertificateRequest decrypted: server sent %v", msgTypes(s))
	}
	cr, err := ParseCertificateRequest(crMsg.body, tls13, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.Issuers) != len(pki.cas) || cr.IssuerBytes != pki.issuerLen {
		t.Errorf("issuer list: %d DNs, %d bytes; want %d, %d", len(cr.Issuers), cr.IssuerBytes, len(pki.cas), pki.issuerLen)
	}
	for i, dn := range cr.Issuers {
		if i < len(pki.cas) && !bytes.Equal(dn.Raw, pki.cas[i].Cert.RawSubject) {
			t.Errorf("issuer %d is %s, want %s", i, dn, pki.cas[i].Cert.Subject)
		}
	}
	cm := c.find(typeCertificate)
	if cm == nil {
		t.Fatalf("no client Certificate: client sent %v", msgTypes(c))
	}
	cert, err := parseCertificate(cm.body, tls13)
	if err != nil {
		t.Fatal(err)
	}
	if sendCert != (len(cert.Chain) > 0) {
		t.Fatalf("client chain of %d certificates, sent %v", len(cert.Chain), sendCert)
	}
	if sendCert && !bytes.Equal(cert.Chain[0], pki.client.DER) {
		t.Error("the decrypted client certificate is not the one sent")
	}
	if c.count(typeFinished) != 1 || s.count(typeFinished) != 1 {
		t.Errorf("Finished decrypted: client %d, server %d", c.count(typeFinished), s.count(typeFinished))
	}
	return c
}

// TestDecryptGoSuites: records written by Go's crypto/tls for the TLS 1.3
// suite Go negotiates with itself and every TLS 1.2 AEAD and CBC suite it
// implements (MAC-then-encrypt: Go does not do encrypt_then_mac).
func TestDecryptGoSuites(t *testing.T) {
	pki := newDecryptPKI(t)
	cases := []struct {
		version uint16
		suite   uint16
		rsa     bool
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, false},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, true},
	}
	for _, tc := range cases {
		for _, sendCert := range []bool{true, false} {
			name := tls.CipherSuiteName(tc.suite)
			if !sendCert {
				name += "/no cert"
			}
			t.Run(name, func(t *testing.T) {
				srv := pki.ecdsa
				if tc.rsa {
					srv = pki.rsa
				}
				rc := goConn(t, pki, tc.version, tc.suite, srv, sendCert)
				c := checkWalk(t, pki, rc, CipherSuite(tc.suite), sendCert)
				if tc.version == tls.VersionTLS12 && c.skipped == 0 {
					t.Error("no application data counted")
				}
			})
		}
	}
}

// TestDecryptOpenSSLSuites: openssl s_client (-keylogfile) against openssl
// s_server -verify with the 3-CA list, pinned to each suite; and Go's
// client against s_server for the TLS 1.3 suites Go would not pick itself.
// OpenSSL negotiates encrypt_then_mac for CBC suites, so those records are
// the RFC 7366 layout.
func TestDecryptOpenSSLSuites(t *testing.T) {
	peertest.Require(t, "openssl")
	pki := newDecryptPKI(t)
	cases := []struct {
		name   string // OpenSSL's name
		suite  CipherSuite
		tls13  bool
		rsa    bool
		noETM  bool
		goAlso bool // also run Go's client against this server
	}{
		{name: "TLS_AES_128_GCM_SHA256", suite: 0x1301, tls13: true},
		{name: "TLS_AES_256_GCM_SHA384", suite: 0x1302, tls13: true, goAlso: true},
		{name: "TLS_CHACHA20_POLY1305_SHA256", suite: 0x1303, tls13: true, goAlso: true},
		{name: "ECDHE-ECDSA-AES128-GCM-SHA256", suite: 0xc02b},
		{name: "ECDHE-ECDSA-AES256-GCM-SHA384", suite: 0xc02c},
		{name: "ECDHE-ECDSA-CHACHA20-POLY1305", suite: 0xcca9},
		{name: "ECDHE-RSA-CHACHA20-POLY1305", suite: 0xcca8, rsa: true},
		{name: "DHE-RSA-CHACHA20-POLY1305", suite: 0xccaa, rsa: true},
		{name: "AES128-GCM-SHA256", suite: 0x009c, rsa: true},
		{name: "DHE-RSA-AES256-GCM-SHA384", suite: 0x009f, rsa: true},
		{name: "ECDHE-ECDSA-AES128-SHA", suite: 0xc009},
		{name: "ECDHE-RSA-AES256-SHA", suite: 0xc014, rsa: true},
		{name: "ECDHE-RSA-AES256-SHA", suite: 0xc014, rsa: true, noETM: true},
		{name: "ECDHE-ECDSA-AES256-SHA384", suite: 0xc024},
		{name: "ECDHE-RSA-AES128-SHA256", suite: 0xc027, rsa: true},
		{name: "ECDHE-RSA-AES256-SHA384", suite: 0xc028, rsa: true, noETM: true},
		{name: "AES256-SHA256", suite: 0x003d, rsa: true},
		{name: "AES128-SHA", suite: 0x002f, rsa: true},
	}
	for _, tc := range cases {
		name := tc.name
		if tc.noETM {
			name += "/no_etm"
		}
		t.Run(name, func(t *testing.T) {
			srv := pki.ecdsa
			if tc.rsa {
				srv = pki.rsa
			}
			pick := []string{"-cipher", tc.name + ":@SECLEVEL=0"}
			if tc.tls13 {
				pick = []string{"-ciphersuites", tc.name}
			}
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
				Cert: srv, ClientCAs: pki.cas, Verify: 1, TLS12: !tc.tls13, TLS13: tc.tls13, WWW: true,
				Extra: pick,
			})
			for _, sendCert := range []bool{true, false} {
				rec, err := transcript.NewRecorder(addr)
				if err != nil {
					t.Fatal(err)
				}
				keylog := filepath.Join(t.TempDir(), "keylog")
				extra := append([]string{"-keylogfile", keylog}, pick...)
				if tc.noETM {
					extra = append(extra, "-no_etm")
				}
				cfg := peertest.OpenSSLClientConfig{Connect: rec.Addr(), TLS12: !tc.tls13, TLS13: tc.tls13, Extra: extra}
				if sendCert {
					cfg.Cert = pki.client
				}
				if out, err := peertest.OpenSSLClient(t, cfg); err != nil {
					t.Fatalf("s_client: %v\n%s", err, out)
				}
				client, server := recordedStreams(t, rec)
				rc := recordedConn{client, server, readKeyLogFile(t, keylog)}
				checkWalk(t, pki, rc, tc.suite, sendCert)
				if cbc := suites12[tc.suite].kind == kindCBC12; cbc {
					// Both record layouts must really have been exercised.
					_, _, sh := walkConn(t, client, server, rc.keylog)
					if etm := slices.Contains(sh.Extensions, 22); etm == tc.noETM {
						t.Errorf("encrypt_then_mac negotiated: %v", etm)
					}
				}
			}
			if tc.goAlso {
				t.Run("go client", func(t *testing.T) {
					rec, err := transcript.NewRecorder(addr)
					if err != nil {
						t.Fatal(err)
					}
					var kl bytes.Buffer
					c, err := tls.Dial("tcp", rec.Addr(), &tls.Config{
						InsecureSkipVerify: true, //nolint:gosec // the server is the test's own
						KeyLogWriter:       &kl, MinVersion: tls.VersionTLS13,
						Certificates: []tls.Certificate{pki.client.TLSCertificate()},
					})
					if err != nil {
						t.Fatal(err)
					}
					_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
					client, server := recordedStreams(t, rec)
					keys, _, _ := ReadKeyLog(&kl)
					checkWalk(t, pki, recordedConn{client, server, keys}, tc.suite, true)
				})
			}
		})
	}
}
