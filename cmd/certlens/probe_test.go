package main

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// probeEnv is the PKI of the probe tests, written to files as a user has it.
type probeEnv struct {
	dir                      string
	serverCA, server         *pkitest.Cert
	clientCA, other1, other2 *pkitest.Cert
	serverCAFile             string
}

func newProbeEnv(t *testing.T) *probeEnv {
	t.Helper()
	e := &probeEnv{dir: t.TempDir()}
	e.serverCA = pkitest.NewCA(t, "certlens probe server CA")
	e.server = e.serverCA.NewServer(t, "localhost")
	e.clientCA = pkitest.NewCA(t, "", pkitest.WithSubject(pkix.Name{Organization: []string{"Contoso"}, CommonName: "Contoso Client CA"}))
	e.other1 = pkitest.NewCA(t, "Fabrikam Root CA")
	e.other2 = pkitest.NewCA(t, "Woodgrove Issuing CA 02")
	e.serverCAFile = filepath.Join(e.dir, "server-ca.pem")
	pkitest.WritePEM(t, e.serverCAFile, e.serverCA)
	return e
}

// files writes c as NAME.pem (chain, no root) and NAME.key.
func (e *probeEnv) files(t *testing.T, c *pkitest.Cert, name string) (certPath, keyPath string) {
	t.Helper()
	return c.WriteFiles(t, e.dir, name)
}

func (e *probeEnv) openssl(t *testing.T, cas []*pkitest.Cert, extra ...string) string {
	t.Helper()
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: e.server, ClientCAs: cas, Verify: 1, WWW: true, Extra: extra})
	return addr
}

// jsonLines parses --json output, failing on any line that is not an event
// of the schema: a handshake or connection closed event (internal/event)
// after level, ts and msg, with no field the schema lacks.
func jsonLines(t *testing.T, out string) []eventLine {
	t.Helper()
	var evs []eventLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %v: %q", err, line)
		}
		type head struct {
			Level string    `json:"level"`
			TS    time.Time `json:"ts"`
			Msg   string    `json:"msg"`
		}
		var strict any
		ev := eventLine{Msg: fmt.Sprint(m["msg"]), Level: fmt.Sprint(m["level"]), TS: fmt.Sprint(m["ts"])}
		switch m["msg"] {
		case "handshake":
			h := &struct {
				head
				event.Handshake
			}{}
			strict, ev.Handshake = h, &h.Handshake
		case "connection closed":
			c := &struct {
				head
				event.Closed
			}{}
			strict, ev.Closed = c, &c.Closed
		default:
			t.Fatalf("msg %v: not an event: %q", m["msg"], line)
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(strict); err != nil {
			t.Errorf("event outside the schema: %v: %q", err, line)
		}
		if lvl := m["level"]; lvl != "info" && lvl != "warn" && lvl != "error" {
			t.Errorf("level %v", lvl)
		}
		evs = append(evs, ev)
	}
	return evs
}

var (
	maskAddr  = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	maskDate  = regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+Z`)
	maskClose = regexp.MustCompile(`(?m)^(  Closed: .*?after ).*$`)
	// crypto/tls puts ChaCha20 first on machines without AES hardware.
	maskSuite = regexp.MustCompile(`(?m)^(    )TLS_[A-Z0-9_]+`)
)

func maskProbe(s string) string {
	s = maskAddr.ReplaceAllString(s, "127.0.0.1:PORT")
	s = maskDate.ReplaceAllString(s, "DATE")
	s = maskSuite.ReplaceAllString(s, "${1}CIPHER_SUITE")
	return maskClose.ReplaceAllString(s, "${1}(masked)")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/certlens -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestProbeGolden is the human report of a probe of openssl s_server over
// TLS 1.3 and 1.2 with a 3-CA list, with a certificate evaluated (no key)
// that a browser would not offer: EKU serverAuth only. Its chain reaches a
// listed root through an intermediate the list does not name, which is
// enough. The server serves without a certificate, so nothing predicts a
// 403: the report warns.
func TestProbeGolden(t *testing.T) {
	e := newProbeEnv(t)
	addr := e.openssl(t, []*pkitest.Cert{e.other1, e.clientCA, e.other2})
	bad := e.other1.NewIntermediate(t, "Fabrikam Issuing CA").NewClient(t, "mallory@fabrikam.test", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	// The chain without the root, as a user exports it.
	certPath, _ := e.files(t, bad, "mallory")
	stdout, stderr, code := run(t, []string{"NO_COLOR=1"}, "probe", "--ca-file", e.serverCAFile, "--cert", certPath, "https://"+addr+"/")
	if code != 0 || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stdout, "\x1b[") {
		t.Error("colour when stdout is not a terminal")
	}
	golden(t, "probe-openssl-3cas.golden", maskProbe(stdout))
}

// TestProbeCertificates presents (with the key) and evaluates (without)
// certificates against openssl s_server over TLS 1.2, checking the JSON
// events field by field.
func TestProbeCertificates(t *testing.T) {
	e := newProbeEnv(t)
	addr := e.openssl(t, []*pkitest.Cert{e.other1, e.clientCA})
	now := time.Now()
	certs := map[string]*pkitest.Cert{
		"good":    e.clientCA.NewClient(t, "alice@contoso.test"),
		"bad-KU":  e.clientCA.NewClient(t, "bob@contoso.test", pkitest.WithKeyUsage(x509.KeyUsageKeyAgreement)),
		"bad-EKU": e.clientCA.NewClient(t, "carol@contoso.test", pkitest.WithExtKeyUsage(x509.ExtKeyUsageEmailProtection)),
		"expired": e.clientCA.NewClient(t, "dave@contoso.test", pkitest.WithValidity(now.AddDate(-1, 0, 0), now.AddDate(0, -1, 0))),
		"foreign": e.other2.NewClient(t, "eve@woodgrove.test"),
	}
	cases := []struct {
		cert    string
		key     bool
		code    int
		finding string // must fire
		reason  string // WouldOffer's code, in the report
		verdict string
	}{
		{"good", true, 0, "", "", "ok"},
		// The server (s_server -verify 1) answers 200 whatever the client
		// sends: that outcome is the verdict; what IIS would refuse stays a
		// warning finding (issue 19: no verdict against the HTTP answer).
		{"bad-KU", true, 0, "client-cert-key-usage", "key-usage", "ok"},
		{"bad-EKU", true, 0, "client-cert-ext-key-usage", "ext-key-usage", "ok"},
		{"expired", true, 0, "client-cert-expired", "expired", "ok"},
		{"foreign", true, 0, "client-cert-issuer-not-listed", "issuer-not-listed", "ok"},
		// Without a key, against a server that requires a certificate
		// (-Verify): it ends the handshake, and the findings say why a
		// browser would not have had one to send either.
		{"good", false, 1, "client-cert-not-sent", "", "handshake_failed"},
		{"bad-KU", false, 1, "expected-cert-not-selectable", "key-usage", "handshake_failed"},
		{"bad-EKU", false, 1, "expected-cert-not-selectable", "ext-key-usage", "handshake_failed"},
		{"expired", false, 1, "expected-cert-not-selectable", "expired", "handshake_failed"},
		{"foreign", false, 1, "expected-cert-not-selectable", "issuer-not-listed", "handshake_failed"},
	}
	addrRequired, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: e.server, ClientCAs: []*pkitest.Cert{e.other1, e.clientCA},
		Require: true, WWW: true})
	for _, tc := range cases {
		name := tc.cert + " presented"
		if !tc.key {
			name = tc.cert + " evaluated only"
		}
		t.Run(name, func(t *testing.T) {
			c := certs[tc.cert]
			certPath, keyPath := e.files(t, c, tc.cert)
			args := []string{"probe", "--tls12", "--cert", certPath}
			if tc.key {
				args = append(args, "--key", keyPath)
			}
			server, end, status := addr, "finished", 200
			if !tc.key {
				server, end, status = addrRequired, "alert", 0 // no answer: no http_status
			}
			args = append(args, "https://"+server+"/")
			jsonArgs := append([]string{"probe", "--json"}, args[1:]...)
			stdout, stderr, code := run(t, nil, jsonArgs...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			evs := jsonLines(t, stdout)
			if len(evs) != 2 || evs[0].Handshake == nil || evs[1].Closed == nil {
				t.Fatalf("events %+v", evs)
			}
			h, closed := evs[0].Handshake, evs[1].Closed
			got := fmt.Sprintln(h.Mode, h.ConnID, h.Target, h.TLSVersion, h.Phase, h.Visibility, h.End, h.Verdict, h.HTTPStatus)
			if want := fmt.Sprintln("probe", "probe-1", server, "TLS 1.2", "initial", "clear", end, tc.verdict, status); got != want {
				t.Errorf("mode, conn_id, target, tls_version, phase, visibility, end, verdict, http_status: %s, want %s", got, want)
			}
			if lvl := evs[0].Level; (tc.verdict == "ok") != (lvl == "info") {
				t.Errorf("level %v for verdict %v", lvl, tc.verdict)
			}
			want := []string{e.other1.Cert.Subject.String(), e.clientCA.Cert.Subject.String()}
			cr := h.CertRequest
			if cr == nil || cr.IssuerCount != 2 || cr.IssuerBytes != 4+len(e.other1.Cert.RawSubject)+len(e.clientCA.Cert.RawSubject) || !slices.Equal(cr.Issuers, want) {
				t.Errorf("cert_request %+v, want 2 CAs %v", cr, want)
			}
			if h.ClientCert == nil || h.ClientCert.Sent != tc.key {
				t.Errorf("client_cert %+v", h.ClientCert)
			}
			if tc.key && (len(h.ClientCert.Chain) == 0 || h.ClientCert.Chain[0].Subject != c.Cert.Subject.String()) {
				t.Errorf("chain %+v", h.ClientCert.Chain)
			}
			if tc.finding != "" && !slices.Contains(findingIDs(h), tc.finding) {
				t.Errorf("%s did not fire: %v", tc.finding, findingIDs(h))
			}
			if closed.ConnID != "probe-1" || closed.Handshakes != 1 || closed.BytesDown < 500 {
				t.Errorf("closed %+v", closed)
			}

			// The report says the same for people, with every reason.
			stdout, _, code = run(t, nil, args...)
			if code != tc.code {
				t.Errorf("report: exit %d", code)
			}
			verdictWord := "would offer it"
			if tc.reason != "" {
				verdictWord = "would not offer it"
			}
			if !strings.Contains(stdout, tc.cert+".crt: a browser "+verdictWord) {
				t.Errorf("report does not say the browser %s:\n%s", verdictWord, stdout)
			}
			if tc.reason != "" && !strings.Contains(stdout, "- "+tc.reason+":") {
				t.Errorf("report lacks reason %s:\n%s", tc.reason, stdout)
			}
		})
	}

	t.Run("PKCS#12 with a password", func(t *testing.T) {
		pfx := filepath.Join(e.dir, "alice.pfx")
		if err := os.WriteFile(pfx, certs["good"].PFX(t, "s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := run(t, []string{"PFX_PW=s3cret"}, "probe", "--json", "--tls13", "--pfx", pfx, "--pfx-password-env", "PFX_PW", "https://"+addr+"/")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		h := jsonLines(t, stdout)[0].Handshake
		if h == nil || h.TLSVersion != "TLS 1.3" || h.Visibility != "decrypted" || h.ClientCert == nil || !h.ClientCert.Sent || h.Verdict != "ok" {
			t.Errorf("event %+v", h)
		}
	})
}

// TestProbeApache: Apache asks for /secure/'s certificate by renegotiation
// (TLS 1.2 only, as IIS does); the probe shows both handshakes, and
// --issuers-out writes the renegotiation's list.
func TestProbeApache(t *testing.T) {
	e := newProbeEnv(t)
	cas := []*pkitest.Cert{e.other1, e.clientCA}
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: e.server, ClientCAs: cas, TLS12Only: true})
	certPath, keyPath := e.files(t, e.clientCA.NewClient(t, "alice@contoso.test"), "alice")
	url := "https://" + addr + peertest.ApacheSecurePath
	out := filepath.Join(t.TempDir(), "issuers.txt")

	stdout, stderr, code := run(t, nil, "probe", "--cert", certPath, "--key", keyPath, "--issuers-out", out, url)
	if code != 0 {
		t.Errorf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, want := range []string{
		"TLS 1.3: the server does not speak it",
		"Handshake 0 (initial, clear, completed)",
		"Certificate request: none",
		"Handshake 1 (renegotiation, decrypted, completed)",
		"Certificate request: 2 CA names",
		"HTTP: GET /secure/ -> 200 OK",
		"cert-request-by-renegotiation",
		"alice.crt: a browser would offer it",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	dump, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ders [][]byte
	for rest := dump; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		ders = append(ders, b.Bytes)
	}
	if len(ders) != 2 || !bytes.Equal(ders[0], e.other1.Cert.RawSubject) || !bytes.Equal(ders[1], e.clientCA.Cert.RawSubject) {
		t.Errorf("issuers dump holds %d DNs:\n%s", len(ders), dump)
	}
	var js struct {
		Requests []struct {
			Phase       string `json:"phase"`
			IssuerBytes int    `json:"issuer_bytes"`
			Issuers     []struct {
				RFC4514 string `json:"rfc4514"`
				DER     []byte `json:"der"`
			} `json:"issuers"`
		} `json:"requests"`
	}
	data, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Requests) != 1 || js.Requests[0].Phase != "renegotiation" || len(js.Requests[0].Issuers) != 2 ||
		js.Requests[0].Issuers[1].RFC4514 != e.clientCA.Cert.Subject.String() {
		t.Errorf("issuers JSON %s", data)
	}

	// Without a certificate Apache ends the renegotiation with an alert.
	stdout, _, code = run(t, nil, "probe", "--json", url)
	if code != 1 {
		t.Errorf("without a certificate: exit %d", code)
	}
	evs := jsonLines(t, stdout)
	if len(evs) != 4 { // TLS 1.3's closed; TLS 1.2's two handshakes and closed
		t.Fatalf("%d events: %s", len(evs), stdout)
	}
	reneg := evs[2].Handshake
	if reneg == nil || reneg.Phase != "renegotiation" || reneg.Verdict != "handshake_failed" || reneg.ClientCert == nil || reneg.ClientCert.Sent {
		t.Fatalf("renegotiation event %+v", reneg)
	}
	if len(reneg.Alerts) == 0 || reneg.Alerts[0].Description != "handshake_failure" {
		t.Errorf("alerts %+v (the probe read the alert it was sent)", reneg.Alerts)
	}
}

// TestProbeThroughServe: --proxy through certlens serve itself, which logs
// the same TLS 1.2 issuer list from its side of the tunnel.
func TestProbeThroughServe(t *testing.T) {
	e := newProbeEnv(t)
	cas := []*pkitest.Cert{e.other1, e.clientCA, e.other2}
	addr := e.openssl(t, cas)
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServe(t, "serve", "--listen", listen, "--admin-listen=", "--allow-ports", portOf(t, addr))
	peertest.WaitTCP(t, listen, 10*time.Second)
	stdout, stderr, code := run(t, nil, "probe", "--json", "--tls12", "--proxy", "http://"+listen, "https://"+addr+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	evs := jsonLines(t, stdout)
	if len(evs) != 2 || evs[0].Handshake == nil || evs[0].Handshake.CertRequest == nil || evs[1].Closed == nil {
		t.Fatalf("probe: want a handshake with a request and the connection closed, got %+v", evs)
	}
	ours, closed := evs[0].Handshake.CertRequest, evs[1].Closed
	if ours.IssuerCount != len(cas) || ours.IssuerBytes != pkitest.IssuerListSize(cas) {
		t.Errorf("the probe read %d DNs, %d bytes; want %d, %d", ours.IssuerCount, ours.IssuerBytes, len(cas), pkitest.IssuerListSize(cas))
	}
	if closed.BytesUp == 0 || closed.BytesDown == 0 {
		t.Errorf("probe's connection closed %+v", closed)
	}
	if cr := sp.nextHandshake().CertRequest; cr == nil || cr.IssuerCount != ours.IssuerCount || cr.IssuerBytes != ours.IssuerBytes {
		t.Errorf("cert_request: probe %+v, serve %+v", ours, cr)
	}
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeUsageAndConnectionErrors(t *testing.T) {
	e := newProbeEnv(t)
	certPath, _ := e.files(t, e.clientCA.NewClient(t, "alice"), "alice")
	_, otherKey := e.files(t, e.clientCA.NewClient(t, "bob"), "bob")
	closed := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no URL", nil, []string{"probe"}, "probe needs one URL"},
		{"not https", nil, []string{"probe", "http://example.test/"}, "the scheme must be https"},
		{"both versions forced", nil, []string{"probe", "--tls12", "--tls13", "example.test"}, "--tls12 and --tls13 exclude each other"},
		{"key without cert", nil, []string{"probe", "--key", otherKey, "example.test"}, "--key needs --cert"},
		{"key of another certificate", nil, []string{"probe", "--cert", certPath, "--key", otherKey, "example.test"}, "does not match the certificate CN=alice"},
		{"pfx password variable unset", nil, []string{"probe", "--pfx", certPath, "--pfx-password-env", "NOPE", "example.test"}, "NOPE is not set"},
		{"bad proxy", nil, []string{"probe", "--proxy", "socks5://127.0.0.1:1080", "example.test"}, "want http://HOST:PORT"},
		{"nothing listening", nil, []string{"probe", "--connect-timeout", "2s", "https://" + closed + "/"}, "certlens: probe: connect to " + closed + ":"},
		{"proxy not listening", nil, []string{"probe", "--proxy", closed, "https://127.0.0.1:443/"}, "certlens: probe: connect to " + closed + " (the proxy):"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantExit2(t, tc.env, tc.args, tc.want) })
	}

	// HTTPS_PROXY is used when --proxy is not given (not for localhost,
	// as net/http decides): the name is never resolved, the proxy is dialled.
	wantExit2(t, []string{"HTTPS_PROXY=http://" + closed}, []string{"probe", "https://iis.example.test/"},
		"certlens: probe: connect to "+closed+" (the proxy):")
}

// TestProbeTimeouts: a server that accepts and never answers is a
// connection error naming the limit; what was seen is still reported.
func TestProbeTimeouts(t *testing.T) {
	// Reads what comes and never answers.
	addr := peertest.TCPServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	start := time.Now()
	stdout, stderr, code := run(t, nil, "probe", "--tls12", "--handshake-timeout", "500ms", "https://"+addr+"/")
	if code != 2 || !strings.Contains(stderr, "no answer within 500ms (--handshake-timeout)") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(stdout, "Handshake 0 (initial, partial, the connection ended mid-handshake)") {
		t.Errorf("report:\n%s", stdout)
	}
}

// TestProbeColourOnATerminal runs the probe on a pseudo-terminal (script
// from util-linux): colour there, none with NO_COLOR.
func TestProbeColourOnATerminal(t *testing.T) {
	scriptBin := peertest.Require(t, "script")
	e := newProbeEnv(t)
	addr := e.openssl(t, []*pkitest.Cert{e.clientCA})
	for _, tc := range []struct {
		env    string
		colour bool
	}{{"", true}, {"NO_COLOR=1", false}} {
		cmdline := binary + " probe --tls12 --ca-file " + e.serverCAFile + " https://" + addr + "/"
		c := exec.Command(scriptBin, "-qec", cmdline, "/dev/null")
		c.Env = []string{"HOME=" + t.TempDir(), "TERM=xterm", "PATH=/usr/bin:/bin"}
		if tc.env != "" {
			c.Env = append(c.Env, tc.env)
		}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, out)
		}
		if has := bytes.Contains(out, []byte("\x1b[32mok\x1b[0m")); has != tc.colour {
			t.Errorf("%q: green verdict %v, want %v:\n%q", tc.env, has, tc.colour, out)
		}
		if !bytes.Contains(out, []byte("Certificate request")) {
			t.Errorf("no report:\n%s", out)
		}
	}
}
