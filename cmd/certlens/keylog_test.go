package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// TestAnalyzeDecryptKeylog: analyze --decrypt-keylog reads a recorded TLS
// 1.3 capture's CertificateRequest and client Certificate; with another
// connection's key log the handshake stays hidden and says why.
func TestAnalyzeDecryptKeylog(t *testing.T) {
	pcap := abs(t, transcripts+"tls13-3ca-curl-cert.pcap")
	for _, tc := range []struct {
		keylog, visibility, finding string
	}{
		{"tls13-3ca-curl-cert.keylog", "decrypted", ""},
		{"tls12-3ca-curl-cert.keylog", "inferred", "keylog-secret-missing"},
	} {
		stdout, stderr, code := runIn(t, nil, nil, "analyze", "--json", pcap, "--decrypt-keylog", abs(t, transcripts+tc.keylog))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		h := firstHandshake(t, stdout)
		if h.Visibility != tc.visibility || tc.finding != "" && !slices.Contains(findingIDs(h), tc.finding) {
			t.Errorf("%s: visibility %v, findings %v", tc.keylog, h.Visibility, findingIDs(h))
		}
		if cr := h.CertRequest; tc.visibility == "decrypted" && (cr == nil || cr.IssuerCount != 3) {
			t.Errorf("%s: cert_request %+v", tc.keylog, cr)
		}
	}
	if _, stderr, code := runIn(t, nil, nil, "analyze", pcap, "--decrypt-keylog", filepath.Join(t.TempDir(), "absent")); code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("missing key log: exit %d, stderr %q; want 2 and one line", code, stderr)
	}
}

// firstHandshake is the first handshake event of JSON lines output.
func firstHandshake(t *testing.T, out string) *event.Handshake {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		l, err := decodeLine([]byte(line))
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if l.Handshake != nil {
			return l.Handshake
		}
	}
	t.Fatalf("no handshake event in %s", out)
	return nil
}

// TestServeDecryptsWithClientKeylog: real clients writing real key logs
// through observe mode with --decrypt-keylog, the file absent when serve
// starts: curl (SSLKEYLOGFILE) with and without a certificate, and headless
// Chromium (--ssl-key-log-file) with one, against openssl s_server -tls1_3
// -verify with a 3-CA list; curl against Apache's per-location
// SSLVerifyClient require over TLS 1.2, whose renegotiation is decrypted
// with the first handshake's keys. tshark, given the same key log and a
// capture of the same traffic, must find the same issuer lists.
func TestServeDecryptsWithClientKeylog(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "tshark"} {
		peertest.Require(t, bin)
	}
	serverCA := pkitest.NewCA(t, "certlens keylog server CA")
	clientCA := pkitest.NewCA(t, "certlens keylog client CA")
	dir := t.TempDir()
	caPath := filepath.Join(dir, "server-ca.pem")
	pkitest.WritePEM(t, caPath, serverCA)
	client := clientCA.NewClient(t, "alice")
	certPath, keyPath := client.WriteFiles(t, dir, "client")
	cas := append(pkitest.ManyCAs(t, 2), clientCA)
	keylog := filepath.Join(dir, "sslkeys.log")

	tls13, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "127.0.0.1"),
		ClientCAs: cas, Verify: 1, TLS13: true, WWW: true})
	apache := peertest.Apache(t, peertest.ApacheConfig{Cert: serverCA.NewServer(t, "127.0.0.1"), ClientCAs: cas, TLS12Only: true})
	var ports []int
	for _, a := range []string{tls13, apache} {
		_, p, _ := strings.Cut(a, ":")
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	// Chromium's part runs where it is installed, and always in CI
	// (peertest.Chromium then fails when it is missing).
	withChromium := peertest.Optional(t, "chromium")

	curl := func(url string, cert bool) {
		args := []string{"-sS", "--max-time", "20", "--noproxy", "", "--cacert", caPath, "-o", os.DevNull, "--http1.1"}
		if cert {
			args = append(args, "--cert", certPath, "--key", keyPath)
		}
		cmd := exec.Command(peertest.Require(t, "curl"), append(args, url)...)
		cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
	}
	var capturePath string
	events := serveEvents(t, strconv.Itoa(ports[0])+","+strconv.Itoa(ports[1]), func(proxy string) {
		_, pp, _ := strings.Cut(proxy, ":")
		pn, _ := strconv.Atoi(pp)
		c := peertest.CaptureLoopback(t, append(ports, pn)...)
		t.Setenv("https_proxy", "http://"+proxy)
		curl("https://"+tls13+"/", true)
		curl("https://"+tls13+"/", false)
		curl("https://"+apache+peertest.ApacheSecurePath, true)
		if withChromium {
			peertest.Chromium(t, peertest.ChromiumConfig{URL: "https://" + tls13 + "/", Proxy: proxy,
				ClientCert: client, ServerCAs: []*pkitest.Cert{serverCA}, Extra: []string{"--ssl-key-log-file=" + keylog}})
		}
		time.Sleep(300 * time.Millisecond)
		capturePath = c.Stop()
	}, "--decrypt-keylog", keylog)

	type seen struct {
		phase, visibility, verdict string
		issuers, issuerBytes       int
		sent                       bool
	}
	var got []seen
	abandoned := 0
	for _, l := range events {
		e := l.Handshake
		if e == nil || e.CertRequest == nil {
			continue
		}
		cr := e.CertRequest
		s := seen{phase: cr.Phase, visibility: e.Visibility, verdict: e.Verdict, issuers: cr.IssuerCount, issuerBytes: cr.IssuerBytes}
		if e.ClientCert != nil {
			s.sent = e.ClientCert.Sent
		}
		got = append(got, s)
		t.Logf("%s %s: %s %s, %v DNs (%v bytes), cert sent %v, verdict %s, findings %v", e.Target, e.TLSVersion, s.phase, s.visibility, s.issuers, s.issuerBytes, s.sent, s.verdict, findingIDs(e))
		if slices.Contains(findingIDs(e), "client-abandoned-after-request") {
			// Chromium drops the connection that brought the request and
			// comes back with the certificate the policy selected.
			abandoned++
			if s.issuers != 3 {
				t.Errorf("abandoned handshake: %+v", s)
			}
			continue
		}
		if s.visibility != "decrypted" || s.issuers != 3 {
			t.Errorf("%s: %+v; want decrypted with the 3-CA list", e.Target, s)
		}
		switch {
		case e.Target == apache && s.phase != "renegotiation":
			t.Errorf("Apache's request came in phase %s", s.phase)
		case s.sent && s.verdict != "ok", !s.sent && s.verdict != "403.7":
			t.Errorf("%s: cert sent %v, verdict %s", e.Target, s.sent, s.verdict)
		}
	}
	want := 3 // curl with and without a certificate, Apache's renegotiation
	if withChromium {
		want++ // Chromium's connection with its certificate
	}
	if len(got)-abandoned != want {
		t.Fatalf("%d decrypted certificate requests (and %d abandoned), want %d", len(got)-abandoned, abandoned, want)
	}
	// The capture holds each connection twice (client to proxy, proxy to
	// server): tshark must read every request as certlens did.
	sums := transcript.TsharkDNamesKeylog(t, capturePath, keylog)
	if len(sums) != 2*len(got) {
		t.Errorf("tshark decrypted %d certificate requests, want %d", len(sums), 2*len(got))
	}
	for _, s := range sums {
		if s.Count != 3 || s.DNamesLen != got[0].issuerBytes {
			t.Errorf("tshark: %d DNs, dnames_len %d; certlens: 3 DNs, %v bytes", s.Count, s.DNamesLen, got[0].issuerBytes)
		}
	}
}

// TestServeKeylogRace: the key lines reach the followed file only after
// the whole handshake went through the proxy; the handshake is decided
// when they come. A connection whose lines never come is reported once
// decrypt.wait has passed, encrypted, with keylog-secret-missing.
func TestServeKeylogRace(t *testing.T) {
	peertest.Require(t, "openssl")
	serverCA := pkitest.NewCA(t, "certlens race server CA")
	clientCA := pkitest.NewCA(t, "certlens race client CA")
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "127.0.0.1"),
		ClientCAs: []*pkitest.Cert{clientCA}, Verify: 1, TLS13: true, WWW: true})
	dir := t.TempDir()
	followed, written := filepath.Join(dir, "followed.log"), filepath.Join(dir, "written.log")
	cfgPath := filepath.Join(dir, "certlens.yaml")
	if err := os.WriteFile(cfgPath, []byte("decrypt:\n  wait: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	var late time.Duration
	var neverStart, neverClose time.Time
	events := serveEvents(t, port, func(proxy string) {
		connect := func(keylog string) *peertest.Process {
			p := peertest.Start(t, peertest.Require(t, "openssl"), []string{"s_client", "-connect", addr, "-proxy", proxy,
				"-tls1_3", "-no-CAfile", "-no-CApath", "-no-CAstore", "-noservername", "-keylogfile", keylog}, peertest.WithStdinPipe())
			if !p.WaitOutput("Verify return code", 10*time.Second) {
				t.Fatalf("s_client did not connect:\n%s", p.Output())
			}
			return p
		}
		// The client logs to a file certlens does not follow; its lines are
		// copied over after the handshake has passed.
		p := connect(written)
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		b, err := os.ReadFile(written)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(followed, b, 0o600); err != nil {
			t.Fatal(err)
		}
		late = time.Since(start)
		_ = p.Interrupt(5 * time.Second)
		// This one's lines never reach the followed file.
		neverStart = time.Now()
		p = connect(filepath.Join(dir, "elsewhere.log"))
		time.Sleep(4 * time.Second)
		neverClose = time.Now()
		_ = p.Interrupt(5 * time.Second)
	}, "--config", cfgPath, "--decrypt-keylog", followed)
	var hs []eventLine
	for _, e := range events {
		if e.Handshake != nil {
			hs = append(hs, e)
		}
	}
	if len(hs) != 2 {
		for _, e := range events {
			t.Logf("%+v", e)
		}
		t.Fatalf("%d handshake events, want 2", len(hs))
	}
	if h := hs[0].Handshake; h.Visibility != "decrypted" || h.CertRequest == nil || h.CertRequest.IssuerCount != 1 {
		t.Errorf("late key lines: visibility %v, cert_request %+v", h.Visibility, h.CertRequest)
	}
	if h := hs[1].Handshake; !slices.Contains(findingIDs(h), "keylog-secret-missing") || h.Visibility == "decrypted" {
		t.Errorf("missing key lines: visibility %v, findings %v", h.Visibility, findingIDs(h))
	}
	// Reported after the wait, while the connection was still open: not
	// held until it closed.
	ts, err := time.Parse(time.RFC3339Nano, hs[1].TS)
	if err != nil || ts.Sub(neverStart) < 3*time.Second || ts.After(neverClose) {
		t.Errorf("missing key lines reported %v after the connection began (closed after %v), want 3s..", ts.Sub(neverStart), neverClose.Sub(neverStart))
	}
	t.Logf("lines copied in %v; the connection without lines was reported %v after it began", late, ts.Sub(neverStart))
}
