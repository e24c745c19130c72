package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

// TestE2ETLS13Inferred: without keys, observe mode reads a TLS 1.3
// handshake from its record sizes (openssl s_server puts one message per
// record): whether a certificate was requested and whether one came, never
// certain. Where records are padded nothing is inferred.
func TestE2ETLS13Inferred(t *testing.T) {
	k := newE2E(t)
	serve := func(cfg peertest.OpenSSLServerConfig) string {
		cfg.Cert, cfg.TLS13, cfg.WWW = k.server, true, true
		addr, _ := peertest.OpenSSLServer(t, cfg)
		return addr
	}
	three := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.other1, k.clientCA, k.other2}, Verify: 1})
	unrelated := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.other1, k.other2}, Verify: 1})
	none := serve(peertest.OpenSSLServerConfig{})
	padded := serve(peertest.OpenSSLServerConfig{ClientCAs: []*pkitest.Cert{k.clientCA}, Verify: 1, Extra: []string{"-record_padding", "256"}})

	t.Run("curl sends a certificate", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		if status, body := k.curl(t, "https://"+three+"/", k.client); status != 200 || !strings.Contains(body, "s_server") {
			t.Fatalf("status %d body %q", status, body)
		}
		expectInferred(t, inferredAnswers(t, k.next(t, three, before))[0], "yes", "yes", "ok")
	})
	t.Run("curl sends none", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		k.curl(t, "https://"+three+"/", nil)
		h := inferredAnswers(t, k.next(t, three, before))[0]
		expectInferred(t, h, "yes", "no", "403.7", "client-cert-not-sent")
		// The request's size bounds the issuer list: three DNs fit in it.
		if h.Inferred == nil || h.Inferred.CertRequestBytes < pkitest.IssuerListSize([]*pkitest.Cert{k.other1, k.clientCA, k.other2}) {
			t.Errorf("inferred %+v: cert_request_bytes cannot hold the three DNs", h.Inferred)
		}
	})
	t.Run("Chromium sends its certificate when the list names its CA", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, three))
		if dom := k.chromium(t, "https://"+three+"/", k.client); strings.Contains(dom, "no client certificate available") {
			t.Errorf("s_server's page says no certificate came:\n%s", dom)
		}
		for _, h := range inferredAnswers(t, k.next(t, three, before)) {
			expectInferred(t, h, "yes", "yes", "ok")
		}
	})
	t.Run("Chromium sends nothing when the list names other CAs", func(t *testing.T) {
		if dom := k.chromium(t, "https://"+unrelated+"/", k.client); !strings.Contains(dom, "no client certificate available") {
			t.Errorf("s_server's page does not say no certificate came:\n%s", dom)
		}
		for _, h := range inferredAnswers(t, k.next(t, unrelated, 0)) {
			expectInferred(t, h, "yes", "no", "403.7", "client-cert-not-sent")
		}
	})
	t.Run("no certificate requested", func(t *testing.T) {
		k.curl(t, "https://"+none+"/", k.client)
		h := inferredAnswers(t, k.next(t, none, 0))[0]
		expectInferred(t, h, "no", "no", "ok")
		if ids := findingIDs(h); len(ids) != 0 {
			t.Errorf("findings %v for a server that wants no certificate", ids)
		}
	})
	t.Run("padded records: nothing inferred", func(t *testing.T) {
		out, err := peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{
			Connect: padded, Proxy: k.proxy, Cert: k.client, ServerCAs: []*pkitest.Cert{k.serverCA}, TLS13: true,
			Extra: []string{"-record_padding", "256"},
		})
		if err != nil || !strings.Contains(out, "HTTP/1.0 200 ok") {
			t.Fatalf("s_client: %v\n%s", err, out)
		}
		h := k.next(t, padded, 0)[0]
		if h.Visibility != "encrypted" || h.Inferred != nil || h.Verdict != "unknown" || h.VerdictCertain {
			t.Errorf("visibility %v inferred %+v verdict %v certain %v, want encrypted, nothing inferred, unknown",
				h.Visibility, h.Inferred, h.Verdict, h.VerdictCertain)
		}
		expect(t, h, nil, "unknown", "tls13-hidden-handshake")
	})
}

// TestE2EApacheTLS13LateCert: Apache with TLS 1.3 and a per-location
// SSLVerifyClient require asks for the certificate after the request, by
// post-handshake authentication. Chromium does not offer it and gets
// Apache's 403; curl offers it and is asked. Observe mode cannot see the
// 403: only a host the user listed in client_cert_hosts makes the
// handshake itself the evidence.
func TestE2EApacheTLS13LateCert(t *testing.T) {
	k := newE2E(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}})
	url := "https://" + addr + peertest.ApacheSecurePath
	host, _, _ := net.SplitHostPort(addr)
	listed, listedEv := startProxy(t, Options{WatchRenegotiation: true, Dial: loopbackOnly,
		Rules: rules.Options{ClientCertHosts: []string{host}}})
	withList := &e2e{serverCA: k.serverCA, serverCAFile: k.serverCAFile, proxy: listed, ev: listedEv}

	t.Run("Chromium, host listed: tls13-late-client-cert", func(t *testing.T) {
		dom := withList.chromium(t, url, k.client)
		if !strings.Contains(dom, "Post-Handshake Authentication") {
			t.Errorf("Apache's page does not say it could not ask:\n%s", dom)
		}
		for _, h := range inferredAnswers(t, withList.next(t, addr, 0)) {
			if h.ClientHello == nil || h.ClientHello.PostHandshakeAuth {
				t.Errorf("conn %v: Chromium offered post-handshake auth? client_hello %+v", h.ConnID, h.ClientHello)
			}
			expectInferred(t, h, "no", "no", "500.0", "tls13-late-client-cert")
		}
	})
	t.Run("curl offers post-handshake auth: not late", func(t *testing.T) {
		before := len(withList.ev.handshakesFor(t, addr))
		status, body := withList.curl(t, url, k.client)
		if status != 200 || !strings.Contains(body, "verify=SUCCESS") {
			t.Errorf("got %d %q", status, body)
		}
		for _, h := range inferredAnswers(t, withList.next(t, addr, before)) {
			if h.ClientHello == nil || !h.ClientHello.PostHandshakeAuth {
				t.Errorf("conn %v: curl did not offer post-handshake auth", h.ConnID)
			}
			if ids := findingIDs(h); slices.Contains(ids, "tls13-late-client-cert") {
				t.Errorf("conn %v: findings %v", h.ConnID, ids)
			}
		}
	})
	t.Run("Chromium, host not listed: no finding", func(t *testing.T) {
		k.chromium(t, url, k.client)
		for _, h := range inferredAnswers(t, k.next(t, addr, 0)) {
			expectInferred(t, h, "no", "no", "ok")
			if ids := findingIDs(h); len(ids) != 0 {
				t.Errorf("conn %v: findings %v without evidence", h.ConnID, ids)
			}
		}
	})
}

// TestE2EApachePostHandshakeDecrypted: with curl's key log, observe mode
// reads Apache's TLS 1.3 post-handshake CertificateRequest (per-location
// SSLVerifyClient require, asked after the request) and curl's answer.
func TestE2EApachePostHandshakeDecrypted(t *testing.T) {
	k := newE2E(t)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}})
	keylogPath, store := followedKeylog(t)
	proxyAddr, ev := startProxy(t, Options{WatchRenegotiation: true, Dial: loopbackOnly,
		Decrypt: DecryptOptions{Secrets: store, Wait: 3 * time.Second}})
	dec := &e2e{serverCA: k.serverCA, serverCAFile: k.serverCAFile, proxy: proxyAddr, ev: ev}

	for _, tc := range []struct {
		name    string
		cert    *pkitest.Cert
		sent    bool
		verdict string
	}{
		{"curl sends its certificate", k.client, true, "ok"},
		// Apache refuses the empty answer with a certificate_required alert.
		{"curl has none", nil, false, "handshake_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ev.handshakesFor(t, addr))
			args := []string{"--cacert", k.serverCAFile, "-w", "\n%{http_code}"}
			if tc.cert != nil {
				c, key := tc.cert.WriteFiles(t, t.TempDir(), "client")
				args = append(args, "--cert", c, "--key", key)
			}
			out, stderr, _ := runCurlEnv(t, []string{"SSLKEYLOGFILE=" + keylogPath},
				append([]string{"-sS", "--noproxy", "", "-x", "http://" + proxyAddr}, append(args, "https://"+addr+peertest.ApacheSecurePath)...)...)
			t.Logf("curl: %q %s", out, stderr)
			var pha *event.Handshake
			for _, h := range dec.next(t, addr, before) {
				if h.Phase == "post_handshake" {
					pha = h
				} else if h.Visibility != "decrypted" || h.CertRequest != nil {
					t.Errorf("initial handshake: visibility %v, cert_request %+v", h.Visibility, h.CertRequest)
				}
			}
			if pha == nil {
				t.Fatalf("no post_handshake event; log:\n%s", ev.text())
			}
			if pha.Visibility != "decrypted" || pha.CertRequest == nil || pha.CertRequest.Phase != "post_handshake" ||
				pha.CertRequest.IssuerCount != 1 || pha.ClientHello == nil || !pha.ClientHello.PostHandshakeAuth {
				t.Errorf("post-handshake event %+v: cert_request %+v client_hello %+v", pha, pha.CertRequest, pha.ClientHello)
			}
			expect(t, pha, tc.sent, tc.verdict)
		})
	}
}

// followedKeylog is an empty key log file, followed as serve follows
// --decrypt-keylog, and the store its lines go to.
func followedKeylog(t *testing.T) (string, *keylog.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	store := keylog.NewStore(1000)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go keylog.NewFollower(path, store, zap.NewNop()).Run(ctx)
	return path, store
}

// TestSidecarDecryptsWithKeylog: sidecar mode shares observe mode's key
// log decryption: curl straight at the sidecar, openssl s_server behind it
// asking over TLS 1.3 with three CAs.
func TestSidecarDecryptsWithKeylog(t *testing.T) {
	k := newE2E(t)
	upstream, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, TLS13: true, WWW: true, Verify: 1,
		ClientCAs: []*pkitest.Cert{k.other1, k.clientCA, k.other2}})
	keylogPath, store := followedKeylog(t)
	sidecar, _, ev := startServer(t, Options{Mode: event.ModeSidecar, Sidecar: SidecarOptions{Upstream: upstream}, WatchRenegotiation: true,
		Decrypt: DecryptOptions{Secrets: store, Wait: 3 * time.Second}})
	c, key := k.client.WriteFiles(t, t.TempDir(), "client")
	out, stderr, err := runCurlEnv(t, []string{"SSLKEYLOGFILE=" + keylogPath}, "-sS", "--noproxy", "*", "--cacert", k.serverCAFile,
		"--cert", c, "--key", key, "https://"+sidecar+"/")
	if err != nil || !strings.Contains(out, "s_server") {
		t.Fatalf("curl: %v %s", err, stderr)
	}
	h := ev.waitHandshakes(t, 1)[0]
	if cr := h.CertRequest; h.Mode != "sidecar" || h.Visibility != "decrypted" || cr == nil || cr.IssuerCount != 3 ||
		cr.IssuerBytes != pkitest.IssuerListSize([]*pkitest.Cert{k.other1, k.clientCA, k.other2}) {
		t.Errorf("event %+v: cert_request %+v", h, cr)
	}
	expect(t, h, true, "ok")
}

// TestObserveResetAfterRequest: a TLS 1.3 server that asks for no
// certificate, reads the request and resets the connection, as IIS on
// Server 2022 does for a folder that wants one. Observe mode holds the
// handshake's event until the connection ends and reads the reset as the
// evidence (not certain: the request was never seen); a server that
// answers gets no finding.
func TestObserveResetAfterRequest(t *testing.T) {
	k := newE2E(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{k.server.TLSCertificate()}, MinVersion: tls.VersionTLS13}
	serve := func(reset bool) string {
		return tcpServer(t, func(c net.Conn) {
			tc := tls.Server(c, cfg)
			if _, err := http.ReadRequest(bufio.NewReader(tc)); err != nil {
				return
			}
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
				return
			}
			_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			_ = tc.Close()
		})
	}
	resetting, answering := serve(true), serve(false)
	pool := x509.NewCertPool()
	pool.AddCert(k.serverCA.Cert)
	request := func(addr string) {
		c, err := net.Dial("tcp", k.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		// crypto/tls, like browsers, offers no post-handshake authentication.
		tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(tc, "GET /secure/ HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_, _ = io.ReadAll(tc)
	}
	request(resetting)
	h := k.next(t, resetting, 0)[0]
	if h.Visibility != "inferred" || h.Inferred == nil || h.Inferred.CertRequested != "no" {
		t.Errorf("visibility %v inferred %+v", h.Visibility, h.Inferred)
	}
	if !slices.Contains(findingIDs(h), "tls13-late-client-cert") || h.Verdict != "500.0" || h.VerdictCertain {
		t.Errorf("verdict %v certain %v findings %v", h.Verdict, h.VerdictCertain, findingIDs(h))
	}
	request(answering)
	h = k.next(t, answering, 0)[0]
	if ids := findingIDs(h); len(ids) != 0 || h.Verdict != "ok" {
		t.Errorf("a server that answers: verdict %v findings %v", h.Verdict, ids)
	}
}
