package report

import (
	"os"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

func sample(issuerBytes int, verdict string) *event.Handshake {
	return &event.Handshake{
		ConnID: "x#3", Mode: "analyze", ClientAddr: "10.0.0.5:50000", Target: "10.0.0.9:443", SNI: "iis.example.test",
		Index: 0, Phase: "initial", TLSVersion: "TLS 1.2", CipherSuite: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		Visibility: "clear", End: "finished",
		CertRequest: &event.CertRequest{Phase: "initial", IssuerCount: 2, IssuerBytes: issuerBytes, Records: 2,
			Issuers: []string{"CN=Contoso Root CA", "CN=Fabrikam Issuing CA 02"}, CertTypes: []string{"rsa_sign"}},
		ClientCert: &event.ClientCert{Sent: false},
		Findings: []rules.Finding{{ID: "client-cert-not-sent", Severity: rules.SeverityError, Predicts: "403.7",
			Summary: "The server asked for a client certificate and the client sent none",
			Detail:  strings.Repeat("evidence ", 30), Remedy: "Install a certificate issued by a listed CA."}},
		Verdict: verdict,
		PCAP:    &event.PCAPRef{Stream: 3, Frames: &event.PCAPFrames{CertRequest: 12, ClientCert: 15}},
	}
}

func TestConnection(t *testing.T) {
	var b strings.Builder
	w := New(&b, Options{})
	err := w.Connection(Connection{Heading: "tcp.stream 3", Handshakes: []*event.Handshake{sample(20000, "403.7")},
		Closed: &event.Closed{ClientAddr: "10.0.0.5:50000", Target: "10.0.0.9:443", Reason: "client closed", DurationMS: 12.5,
			BytesUp: 1234, BytesDown: 56789, TLSVersion: "TLS 1.2", Errors: []string{"capture gap: 10 bytes"}}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"tcp.stream 3  10.0.0.5:50000 -> 10.0.0.9:443  (iis.example.test)  TLS 1.2\n",
		"  Handshake 0 (initial, clear, completed)\n",
		"    Certificate request (frame 12): 2 CA names, 20,000 bytes, 3,616 over the 16,384-byte limit, in 2\n      records\n",
		"      1  CN=Contoso Root CA\n      2  CN=Fabrikam Issuing CA 02\n",
		"    Client certificate (frame 15): none sent (empty Certificate message)\n",
		"      ERROR   client-cert-not-sent: The server asked for a client certificate and the client sent\n              none [predicts 403.7]\n",
		"              Remedy: Install a certificate issued by a listed CA.\n",
		"    Verdict: 403.7 (predicted)\n",
		"  Closed: client closed after 12.5 ms; 1,234 bytes from the client, 56,789 from the server\n",
		"    Note: capture gap: 10 bytes\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 100 && !strings.Contains(line, "CN=") {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without Options.Color")
	}
}

func TestColour(t *testing.T) {
	var b strings.Builder
	w := New(&b, Options{Color: true})
	w.Connection(Connection{Heading: "tcp.stream 0", Handshakes: []*event.Handshake{sample(100, "403.7")}})
	out := b.String()
	if !strings.Contains(out, red+bold+"403.7"+reset) || !strings.Contains(out, bold+"tcp.stream 0"+reset) {
		t.Errorf("no colour on the verdict or the heading:\n%q", out)
	}
	// Colour codes do not count towards the wrapping width.
	if visibleLen(red+"ERROR"+reset) != 5 {
		t.Error("visibleLen counts escape codes")
	}
}

func TestUseColor(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if UseColor(f) {
		t.Error("colour on a regular file")
	}
	t.Setenv("NO_COLOR", "1")
	if UseColor(os.Stdout) {
		t.Error("colour despite NO_COLOR")
	}
}

func TestSummaryAndProblem(t *testing.T) {
	var b strings.Builder
	w := New(&b, Options{})
	ok := sample(100, "ok")
	ok.Findings = nil
	unknown := sample(100, "unknown")
	unknown.Findings = nil
	for i, h := range []*event.Handshake{ok, sample(100, "403.7"), unknown, sample(100, "403.7")} {
		w.Connection(Connection{Heading: "tcp.stream " + string(rune('0'+i)), Handshakes: []*event.Handshake{h}})
	}
	b.Reset()
	w.Summary()
	want := "4 handshakes:\n  403.7            2  (tcp.stream 1, tcp.stream 3)\n  ok               1  (tcp.stream 0)\n  unknown          1  (tcp.stream 2)\n"
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant\n%s", b.String(), want)
	}
	if Problem(ok) || Problem(unknown) || !Problem(sample(100, "403.7")) {
		t.Error("Problem misjudges verdicts")
	}
	warnOnly := sample(100, "unknown")
	warnOnly.Findings[0].Severity = rules.SeverityWarning
	if Problem(warnOnly) {
		t.Error("a warning is not a problem")
	}
	errOnly := sample(100, "ok")
	if !Problem(errOnly) {
		t.Error("an error finding is a problem, whatever the verdict")
	}
}

func TestProbeSection(t *testing.T) {
	h := sample(200, "403.7")
	h.PCAP = nil
	p := &Probe{
		Server:    &event.Cert{Subject: "CN=iis.example.test", Issuer: "CN=Contoso Root CA", NotAfter: "2030-01-01T00:00:00Z", PublicKey: "RSA 2048"},
		Chain:     2,
		Untrusted: "x509: certificate signed by unknown authority",
		Request:   "GET /secure/", Status: "403 Forbidden", Substatus: "403.7",
		Offers: []Offer{
			{Handshake: 0, Name: "alice.pem"},
			{Handshake: 0, Name: "mallory.pem", Reasons: []string{"ext-key-usage: no clientAuth.", "expired: long ago."}},
			{Handshake: 1, Name: "elsewhere.pem"},
		},
	}
	for _, color := range []bool{false, true} {
		var b strings.Builder
		w := New(&b, Options{Color: color})
		if err := w.Connection(Connection{Heading: "TLS 1.2", Handshakes: []*event.Handshake{h}, Probe: p}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		plain := out
		if color {
			for _, code := range []string{reset, bold, dim, red, green, yellow, cyan} {
				plain = strings.ReplaceAll(plain, code, "")
			}
			if !strings.Contains(out, red+bold+"403 Forbidden (IIS 403.7)"+reset) || !strings.Contains(out, green+"offer"+reset) {
				t.Errorf("no colour on the status or the offer:\n%q", out)
			}
		}
		for _, want := range []string{
			"  Server certificate: CN=iis.example.test, issued by CN=Contoso Root CA, valid to\n    2030-01-01T00:00:00Z, RSA 2048 (chain of 2); not trusted: x509: certificate signed by unknown\n    authority\n",
			"  HTTP: GET /secure/ -> 403 Forbidden (IIS 403.7)\n",
			"    alice.pem: a browser would offer it for this request\n",
			"    mallory.pem: a browser would not offer it for this request:\n      - ext-key-usage: no clientAuth.\n      - expired: long ago.\n",
		} {
			if !strings.Contains(plain, want) {
				t.Errorf("colour %v: report lacks %q:\n%s", color, want, plain)
			}
		}
		if strings.Contains(plain, "elsewhere.pem") {
			t.Error("an offer for another handshake was written under this one")
		}
	}

	var b strings.Builder
	New(&b, Options{}).Connection(Connection{Heading: "TLS 1.3", Handshakes: []*event.Handshake{h},
		Probe: &Probe{Stopped: "handshake with 10.0.0.9:443: remote error: tls: handshake failure"}})
	if !strings.Contains(b.String(), "  Stopped: handshake with 10.0.0.9:443: remote error: tls: handshake failure\n") {
		t.Errorf("no Stopped line:\n%s", b.String())
	}
}

// A server chooses its DNs and the client its SNI: what they send must not
// reach the reader's terminal as control sequences, in analyze's and
// probe's report as in view's.
func TestConnectionEscapesControls(t *testing.T) {
	h := sample(100, "403.7")
	h.SNI = "evil\x1b]0;owned\x07.test"
	h.CertRequest.Issuers = []string{"CN=Clear\x1b[2J\u009bScreen"}
	cl := &event.Closed{Reason: "client closed", Errors: []string{"bad\rline"}}
	p := &Probe{Request: "GET /\x1b[1A", Offers: []Offer{{Name: "me", Reasons: []string{"x\x00y"}}}}
	var b strings.Builder
	if err := New(&b, Options{}).Connection(Connection{Heading: "h\x1b", Handshakes: []*event.Handshake{h}, Closed: cl, Probe: p}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && isControl(r) }) {
		t.Errorf("report carries a control character:\n%q", out)
	}
	for _, want := range []string{`evil\x1b]0;owned\x07.test`, `CN=Clear\x1b[2J\x9bScreen`, `bad\x0dline`} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if h.SNI != "evil\x1b]0;owned\x07.test" || h.CertRequest.Issuers[0] != "CN=Clear\x1b[2J\u009bScreen" || cl.Errors[0] != "bad\rline" {
		t.Error("the report changed the caller's events")
	}
}

// An event of printable strings, which is every event but a hostile
// server's, is shown as it is: not copied string by string through
// reflection for each line the console log or view prints. One with a
// control character is copied where it must be, and only there.
func TestPrintableCopyCopiesOnlyWhatItChanges(t *testing.T) {
	h := sample(100, "403.7")
	if allocs := testing.AllocsPerRun(100, func() {
		if printableCopy(h) != h {
			t.Fatal("a printable event was copied")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations for a printable event, want 0", allocs)
	}
	h.CertRequest.Issuers = append(h.CertRequest.Issuers, "CN=Bad\x1b[2J")
	c := printableCopy(h)
	if c == h || c.CertRequest == h.CertRequest || c.CertRequest.Issuers[2] != `CN=Bad\x1b[2J` || h.CertRequest.Issuers[2] != "CN=Bad\x1b[2J" {
		t.Errorf("copy %q, caller's %q", c.CertRequest.Issuers, h.CertRequest.Issuers)
	}
	if c.ClientCert != h.ClientCert || &c.Findings[0] != &h.Findings[0] {
		t.Error("parts with nothing to change were copied")
	}
}
