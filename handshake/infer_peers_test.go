package handshake

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// livePKI is the servers' and clients' certificates of the agreement tests.
type livePKI struct {
	serverCA, clientCA *pkitest.Cert
	server, client     *pkitest.Cert
	cas                []*pkitest.Cert // the issuer list: two strangers, then the client's CA
	caFile             string          // the server CA, for curl
	certFile, keyFile  string          // the client's certificate and key
}

func newLivePKI(t *testing.T) livePKI {
	t.Helper()
	k := livePKI{serverCA: pkitest.NewCA(t, "infer server CA"), clientCA: pkitest.NewCA(t, "infer client CA")}
	k.server = k.serverCA.NewServer(t, "127.0.0.1")
	k.client = k.clientCA.NewClient(t, "infer client")
	k.cas = []*pkitest.Cert{pkitest.NewCA(t, "infer other CA 1"), pkitest.NewCA(t, "infer other CA 2"), k.clientCA}
	dir := t.TempDir()
	k.caFile = filepath.Join(dir, "server-ca.pem")
	pkitest.WritePEM(t, k.caFile, k.serverCA)
	k.certFile, k.keyFile = k.client.WriteFiles(t, dir, "client")
	return k
}

// recordLive relays the connections client makes to upstream through a
// recorder and returns them, with the key log the client wrote into the
// path it was given.
func recordLive(t *testing.T, upstream string, client func(addr, keylog string)) ([]*conn, KeyLog) {
	t.Helper()
	rec, err := transcript.NewRecorder(upstream)
	if err != nil {
		t.Fatal(err)
	}
	keylog := filepath.Join(t.TempDir(), "keylog")
	client(rec.Addr(), keylog)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	var conns []*conn
	for _, tr := range rec.Transcripts() {
		conns = append(conns, transcriptConn(tr))
	}
	if len(conns) == 0 {
		t.Fatal("no connection recorded")
	}
	return conns, readKeyLogFile(t, keylog)
}

// curlLive runs curl once with SSLKEYLOGFILE and returns the HTTP status
// it printed ("000" when the connection failed) and its error output.
func curlLive(t *testing.T, k livePKI, url, keylog string, cert bool, args ...string) (status, stderr string) {
	t.Helper()
	args = append([]string{"-sS", "--max-time", "20", "--http1.1", "--cacert", k.caFile, "-o", os.DevNull, "-w", "%{http_code}"}, args...)
	if cert {
		args = append(args, "--cert", k.certFile, "--key", k.keyFile)
	}
	cmd := exec.Command(peertest.Require(t, "curl"), append(args, url)...)
	cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out)), errb.String()
}

// pinnedSuite is a cipher suite curl is limited to: OpenSSL's name, and
// the suite that must be negotiated.
type pinnedSuite struct {
	name string
	id   CipherSuite
}

// curlAgreement runs curl against Apache's location that requires a
// certificate, with one and without, once per suite (flag pins it), and
// checks that the handshake of phase read without keys agrees with the
// decrypted one: the certificate requested, sent or not, and the server's
// refusal of an empty answer.
func curlAgreement(t *testing.T, k livePKI, addr, flag string, suites []pinnedSuite, phase Phase) {
	t.Helper()
	for _, suite := range suites {
		for _, cert := range []bool{true, false} {
			name := "curl " + suite.name
			if !cert {
				name += " no cert"
			}
			t.Run(name, func(t *testing.T) {
				var status, stderr string
				conns, kl := recordLive(t, addr, func(a, keylog string) {
					status, stderr = curlLive(t, k, "https://"+a+peertest.ApacheSecurePath, keylog, cert, flag, suite.name)
				})
				if cert != (status == "200") {
					t.Fatalf("curl: status %s %s", status, stderr)
				}
				expectRead(t, checkAgreement(t, conns[0], kl), phase, triOf(cert), !cert)
				if got := firstServerHello(t, conns[0]).CipherSuite; got != suite.id {
					t.Errorf("negotiated %s, want %s", got, suite.id)
				}
			})
		}
	}
}

// agreed is one handshake read both ways.
type agreed struct {
	plain, dec *Handshake
}

// checkAgreement parses a recorded connection without keys and with the
// client's key log, and checks that every handshake the record sizes were
// read for says what the decrypted bytes show: whether a certificate was
// requested and sent, the request's length, the server's refusal, who
// started a renegotiation. It returns the pairs it compared.
func checkAgreement(t *testing.T, c *conn, kl KeyLog) []agreed {
	t.Helper()
	plain, _ := runAll(t, c, Options{})
	dec, _ := runAll(t, c, Options{Secrets: kl})
	byIndex := map[int]*Handshake{}
	for _, d := range dec {
		byIndex[d.Index] = d
	}
	var out []agreed
	for _, p := range plain {
		d := byIndex[p.Index]
		if d == nil || d.Phase != p.Phase {
			t.Fatalf("handshake %d (%s) read without keys, decrypted %+v", p.Index, p.Phase, d)
		}
		if p.Phase == PhaseRenegotiation && (p.HelloRequest != d.HelloRequest || p.ClientInitiated != d.ClientInitiated ||
			p.Inferred != nil && p.Inferred.Resumed != d.Abbreviated) {
			t.Errorf("handshake %d: hello_request %v client_initiated %v without keys, %v %v decrypted", p.Index,
				p.HelloRequest, p.ClientInitiated, d.HelloRequest, d.ClientInitiated)
		}
		inf := p.Inferred
		if inf == nil {
			continue
		}
		if p.ClientAborted() != d.ClientAborted() {
			t.Errorf("handshake %d: client aborted %v without keys, %v decrypted (%s)", p.Index, p.ClientAborted(), d.ClientAborted(), inf.Evidence)
		}
		if !d.decrypted || d.Inferred != nil {
			t.Fatalf("handshake %d: the key log did not decrypt it (visibility %s, errors %q)", d.Index, d.Visibility, d.Errors)
		}
		requested, sent := No, No
		if d.CertRequest != nil {
			requested = Yes
			if n := d.CertRequest.Length + 4; n < inf.CertRequestMin || n > inf.CertRequestLen || d.CertRequest.Records != inf.CertRequestRecords {
				t.Errorf("handshake %d: CertificateRequest of %d bytes in %d records, inferred %d..%d in %d (%s)", d.Index, n, d.CertRequest.Records,
					inf.CertRequestMin, inf.CertRequestLen, inf.CertRequestRecords, inf.Evidence)
			}
		}
		if d.ClientCertificate != nil && len(d.ClientCertificate.Chain) > 0 {
			sent = Yes
		} else if d.CertRequest != nil && d.ClientCertificate == nil {
			sent = Unknown // the client never answered
		}
		refused := slices.ContainsFunc(d.Alerts, func(a Alert) bool { return a.From == FromServer && a.Fatal() })
		if inf.CertRequested != Unknown && inf.CertRequested != requested || inf.CertSent != Unknown && inf.CertSent != sent || inf.ServerAlert != refused {
			t.Errorf("handshake %d (%s): inferred requested %s sent %s alert %v; decrypted %s %s %v\nevidence: %s", p.Index, p.Phase,
				inf.CertRequested, inf.CertSent, inf.ServerAlert, requested, sent, refused, inf.Evidence)
		}
		out = append(out, agreed{p, d})
	}
	return out
}

// expectRead checks the handshake of phase that was inferred: a request
// was inferred, the certificate sent or not, the server's refusal.
func expectRead(t *testing.T, pairs []agreed, phase Phase, sent Tri, refused bool) *Inference {
	t.Helper()
	for _, a := range pairs {
		if a.plain.Phase != phase {
			continue
		}
		inf := a.plain.Inferred
		if a.plain.Visibility != VisibilityInferred || inf.CertRequested != Yes || inf.CertSent != sent || inf.ServerAlert != refused {
			t.Errorf("%s handshake: visibility %s requested %s sent %s alert %v, want inferred yes %s %v\nevidence: %s", phase,
				a.plain.Visibility, inf.CertRequested, inf.CertSent, inf.ServerAlert, sent, refused, inf.Evidence)
		}
		t.Logf("%s: %s", phase, inf.Evidence)
		return inf
	}
	t.Fatalf("no %s handshake was inferred", phase)
	return nil
}

// TestRenegotiationInferenceAgreesWithPeers: Apache asks for a certificate
// by TLS 1.2 renegotiation (per-location SSLVerifyClient require, IIS's
// way); curl, openssl s_client and Chromium answer with and without one,
// under AES-GCM, ChaCha20-Poly1305 and CBC (encrypt_then_mac and
// MAC-then-encrypt). Each connection is read without keys and with the
// client's key log: the two must agree.
func TestRenegotiationInferenceAgreesWithPeers(t *testing.T) {
	k := newLivePKI(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: k.cas, TLS12Only: true})
	url := func(a string) string { return "https://" + a + peertest.ApacheSecurePath }

	curlAgreement(t, k, addr, "--ciphers", []pinnedSuite{{"ECDHE-ECDSA-AES128-GCM-SHA256", 0xc02b},
		{"ECDHE-ECDSA-CHACHA20-POLY1305", 0xcca9}, {"ECDHE-ECDSA-AES256-SHA384", 0xc024}}, PhaseRenegotiation)
	for _, cert := range []bool{true, false} {
		name := "s_client CBC MAC-then-encrypt"
		if !cert {
			name += " no cert"
		}
		t.Run(name, func(t *testing.T) {
			var out string
			conns, kl := recordLive(t, addr, func(a, keylog string) {
				cfg := peertest.OpenSSLClientConfig{Connect: a, TLS12: true, Request: "GET " + peertest.ApacheSecurePath + " HTTP/1.0\r\n\r\n",
					Extra: []string{"-keylogfile", keylog, "-cipher", "ECDHE-ECDSA-AES128-SHA", "-no_etm"}}
				if cert {
					cfg.Cert = k.client
				}
				out, _ = peertest.OpenSSLClient(t, cfg)
			})
			if cert != strings.Contains(out, "verify=SUCCESS") {
				t.Fatalf("s_client:\n%s", out)
			}
			pairs := checkAgreement(t, conns[0], kl)
			expectRead(t, pairs, PhaseRenegotiation, triOf(cert), !cert)
			if slices.Contains(firstServerHello(t, conns[0]).Extensions, extEncryptThenMAC) {
				t.Error("encrypt_then_mac negotiated: the MAC-then-encrypt layout was not exercised")
			}
		})
	}
	// A renegotiation the client starts: s_client's 'R' command, to an
	// s_server that allows it; s_server asked for the certificate in the
	// first handshake only (SSL_VERIFY_CLIENT_ONCE).
	t.Run("s_client starts it", func(t *testing.T) {
		srv, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: k.cas, Verify: 1, TLS12: true, WWW: true,
			Extra: []string{"-client_renegotiation"}})
		conns, kl := recordLive(t, srv, func(a, keylog string) {
			// s_client reads its command letters only without -ign_eof,
			// which OpenSSLClient sets: typed here, one line at a time.
			c := peertest.Start(t, peertest.Require(t, "openssl"), []string{"s_client", "-connect", a, "-tls1_2", "-noservername",
				"-no-CApath", "-no-CAstore", "-no-CAfile", "-cert", k.certFile, "-key", k.keyFile, "-keylogfile", keylog}, peertest.WithStdinPipe())
			if !c.WaitOutput("Verify return code", 10*time.Second) {
				t.Fatalf("s_client did not connect:\n%s", c.Output())
			}
			fmt.Fprint(c.Stdin, "R\n")
			if !c.WaitOutput("RENEGOTIATING", 10*time.Second) {
				t.Fatalf("s_client did not renegotiate:\n%s", c.Output())
			}
			fmt.Fprint(c.Stdin, "GET / HTTP/1.0\r\n\r\n")
			if !c.WaitOutput("</HTML>", 10*time.Second) {
				t.Fatalf("no answer after the renegotiation:\n%s", c.Output())
			}
			c.Stdin.Close()
			_ = c.Wait(10 * time.Second)
		})
		pairs := checkAgreement(t, conns[0], kl)
		if len(pairs) != 1 || pairs[0].plain.Phase != PhaseRenegotiation {
			t.Fatalf("%d handshakes inferred, want the renegotiation", len(pairs))
		}
		h, inf := pairs[0].plain, pairs[0].plain.Inferred
		if !h.ClientInitiated || h.HelloRequest || h.Visibility != VisibilityInferred || inf.CertRequested != No || inf.CertSent != No || inf.Resumed {
			t.Errorf("client_initiated %v hello_request %v visibility %s requested %s sent %s resumed %v: %s", h.ClientInitiated, h.HelloRequest,
				h.Visibility, inf.CertRequested, inf.CertSent, inf.Resumed, inf.Evidence)
		}
	})
	t.Run("Chromium packs its flight", func(t *testing.T) {
		peertest.Require(t, "chromium")
		for _, cert := range []*pkitest.Cert{k.client, nil} {
			var dom string
			conns, kl := recordLive(t, addr, func(a, keylog string) {
				dom = peertest.Chromium(t, peertest.ChromiumConfig{URL: url(a), ClientCert: cert, ServerCAs: []*pkitest.Cert{k.serverCA},
					Extra: []string{"--ssl-key-log-file=" + keylog}})
			})
			if (cert != nil) != strings.Contains(dom, "verify=SUCCESS") {
				t.Fatalf("cert %v: page %q", cert != nil, dom)
			}
			// Chromium opens more than one connection; the one that
			// answered the request is read like the others.
			answered := 0
			for _, c := range conns {
				for _, a := range checkAgreement(t, c, kl) {
					if a.plain.Phase == PhaseRenegotiation && a.plain.Inferred.CertSent != Unknown {
						answered++
						expectRead(t, []agreed{a}, PhaseRenegotiation, triOf(cert != nil), cert == nil)
					}
				}
			}
			if answered == 0 {
				t.Errorf("cert %v: no renegotiation with the client's answer read in %d connections", cert != nil, len(conns))
			}
		}
	})
}

func triOf(b bool) Tri {
	if b {
		return Yes
	}
	return No
}

// firstServerHello is the first ServerHello of a recorded connection.
func firstServerHello(t *testing.T, c *conn) *ServerHello {
	t.Helper()
	hs, _ := run(t, c, feedModes[0], Options{})
	if len(hs) == 0 || hs[0].ServerHello == nil {
		t.Fatal("no ServerHello")
	}
	return hs[0].ServerHello
}

// TestPostHandshakeInferenceAgreesWithPeers: Apache over TLS 1.3 asks for
// the certificate after the request by post-handshake authentication,
// which curl and openssl s_client (-enable_pha) offer; read without keys
// and with the client's key log, for each TLS 1.3 suite.
func TestPostHandshakeInferenceAgreesWithPeers(t *testing.T) {
	k := newLivePKI(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: k.cas})
	curlAgreement(t, k, addr, "--tls13-ciphers", []pinnedSuite{{"TLS_AES_128_GCM_SHA256", 0x1301},
		{"TLS_AES_256_GCM_SHA384", 0x1302}, {"TLS_CHACHA20_POLY1305_SHA256", 0x1303}}, PhasePostHandshake)
	for _, cert := range []bool{true, false} {
		name := "s_client -enable_pha"
		if !cert {
			name += " no cert"
		}
		t.Run(name, func(t *testing.T) {
			var out string
			conns, kl := recordLive(t, addr, func(a, keylog string) {
				cfg := peertest.OpenSSLClientConfig{Connect: a, TLS13: true, Request: "GET " + peertest.ApacheSecurePath + " HTTP/1.0\r\n\r\n",
					Extra: []string{"-keylogfile", keylog, "-enable_pha"}}
				if cert {
					cfg.Cert = k.client
				}
				out, _ = peertest.OpenSSLClient(t, cfg)
			})
			if cert != strings.Contains(out, "verify=SUCCESS") {
				t.Fatalf("s_client:\n%s", out)
			}
			expectRead(t, checkAgreement(t, conns[0], kl), PhasePostHandshake, triOf(cert), !cert)
		})
	}
}

// TestLargeRequestInferenceAgreesWithPeers: a 261-CA issuer list (about
// 60 KB, past SChannel's 16 KB) spans several records; without keys its
// size is still read, in a TLS 1.3 handshake (openssl s_server), a TLS 1.2
// renegotiation and a post-handshake request (Apache).
func TestLargeRequestInferenceAgreesWithPeers(t *testing.T) {
	k := newLivePKI(t)
	many := append(pkitest.ManyCAs(t, 260), k.clientCA)
	listSize := pkitest.IssuerListSize(many)
	tls13, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: many, Verify: 1, TLS13: true, WWW: true})
	reneg := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: many, TLS12Only: true})
	pha := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: many})
	for _, tc := range []struct {
		name, addr, path string
		phase            Phase
		refused          bool
	}{
		{"TLS 1.3 handshake", tls13, "/", PhaseInitial, false},
		{"TLS 1.2 renegotiation", reneg, peertest.ApacheSecurePath, PhaseRenegotiation, true},
		{"TLS 1.3 post-handshake", pha, peertest.ApacheSecurePath, PhasePostHandshake, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, kl := recordLive(t, tc.addr, func(a, keylog string) {
				curlLive(t, k, "https://"+a+tc.path, keylog, false)
			})
			inf := expectRead(t, checkAgreement(t, conns[0], kl), tc.phase, No, tc.refused)
			if inf.CertRequestMin < listSize || inf.CertRequestRecords < 4 {
				t.Errorf("inferred request of %d..%d bytes in %d records, the issuer list alone is %d bytes", inf.CertRequestMin, inf.CertRequestLen,
					inf.CertRequestRecords, listSize)
			}
		})
	}
}
