package handshake

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// feedMode splits each chunk before feeding: the parser must not care how
// the bytes were cut.
type feedMode struct {
	name  string
	split func(rng *rand.Rand, b []byte) [][]byte
}

var feedModes = []feedMode{
	{"whole", func(_ *rand.Rand, b []byte) [][]byte { return [][]byte{b} }},
	{"one byte", func(_ *rand.Rand, b []byte) [][]byte {
		out := make([][]byte, len(b))
		for i := range b {
			out[i] = b[i : i+1]
		}
		return out
	}},
	{"random", func(rng *rand.Rand, b []byte) [][]byte {
		var out [][]byte
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(3000))
			out = append(out, b[:n])
			b = b[n:]
		}
		return out
	}},
}

// run feeds a scripted connection and returns every handshake and the observation.
func run(t testing.TB, c *conn, mode feedMode, opts Options) ([]*Handshake, Observation) {
	t.Helper()
	p := NewParser(opts)
	rng := rand.New(rand.NewPCG(1, 2))
	var hs []*Handshake
	for _, ch := range *c {
		for _, part := range mode.split(rng, ch.data) {
			// Feed may be given a buffer the caller reuses: prove the
			// parser keeps nothing of it by scribbling over it afterwards.
			buf := append([]byte(nil), part...)
			p.Feed(ch.from, buf)
			for i := range buf {
				buf[i] = 0xee
			}
			hs = append(hs, p.Drain()...)
		}
	}
	hs = append(hs, p.Close()...)
	return hs, p.Observation()
}

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runAll runs every feed mode and fails unless they agree; it returns the result of "whole".
func runAll(t *testing.T, c *conn, opts Options) ([]*Handshake, Observation) {
	t.Helper()
	want, obs := run(t, c, feedModes[0], opts)
	for _, m := range feedModes[1:] {
		got, _ := run(t, c, m, opts)
		if a, b := toJSON(t, want), toJSON(t, got); a != b {
			t.Fatalf("feeding %q differs from whole chunks:\nwhole: %s\n%s: %s", m.name, a, m.name, b)
		}
	}
	return want, obs
}

func TestMutualTLS12(t *testing.T) {
	var dns [][]byte
	for i := range 3 {
		dns = append(dns, dnDER(i))
	}
	hs, obs := runAll(t, mutualTLS12(16384, dns, []byte("leaf"), []byte("intermediate")), Options{})
	if len(hs) != 1 {
		t.Fatalf("got %d handshakes, want 1", len(hs))
	}
	h := hs[0]
	if h.Visibility != VisibilityClear || h.End != EndFinished || h.Phase != PhaseInitial || h.Version != VersionTLS12 {
		t.Errorf("visibility %s end %s phase %s version %s", h.Visibility, h.End, h.Phase, h.Version)
	}
	if h.ClientHello == nil || h.ClientHello.ServerName != "example.test" {
		t.Errorf("client hello %+v", h.ClientHello)
	}
	cr := h.CertRequest
	if cr == nil {
		t.Fatal("no CertificateRequest")
	}
	wantBytes := 0
	for _, dn := range dns {
		wantBytes += 2 + len(dn)
	}
	if len(cr.Issuers) != 3 || cr.IssuerBytes != wantBytes || cr.Records != 1 {
		t.Errorf("issuers %d bytes %d records %d, want 3 %d 1", len(cr.Issuers), cr.IssuerBytes, cr.Records, wantBytes)
	}
	if got := cr.Issuers[1].String(); got != "CN=certlens synthetic CA 001,O=certlens synthetic issuer 001 with a long organization name,C=US" {
		t.Errorf("DN string %q", got)
	}
	if got := toJSON(t, cr.CertTypes); got != "[\n \"rsa_sign\",\n \"ecdsa_sign\"\n]" {
		t.Errorf("cert types %s", got)
	}
	if cc := h.ClientCertificate; cc == nil || len(cc.Chain) != 2 || string(cc.Chain[0]) != "leaf" {
		t.Errorf("client certificate %+v", cc)
	}
	if !h.ClientFinished || !h.ServerFinished || h.Abbreviated {
		t.Errorf("finished %v/%v resumed %v", h.ClientFinished, h.ServerFinished, h.Abbreviated)
	}
	if obs.Handshakes != 1 || obs.NotTLS != "" {
		t.Errorf("observation %+v", obs)
	}
}

func TestIssuerListSpansRecords(t *testing.T) {
	var dns [][]byte
	for i := range 260 {
		dns = append(dns, dnDER(i))
	}
	hs, _ := runAll(t, mutualTLS12(16384, dns), Options{})
	cr := hs[0].CertRequest
	if cr == nil || len(cr.Issuers) != 260 {
		t.Fatalf("cert request %v", cr)
	}
	if cr.Records < 2 || cr.IssuerBytes <= 16384 {
		t.Errorf("records %d bytes %d: want a list over 16 KiB in several records", cr.Records, cr.IssuerBytes)
	}
	if cc := hs[0].ClientCertificate; cc == nil || len(cc.Chain) != 0 {
		t.Errorf("want an empty client Certificate, got %+v", cc)
	}
	for i, dn := range cr.Issuers {
		if !bytes.Equal(dn.Raw, dns[i]) {
			t.Fatalf("DN %d differs", i)
		}
	}
}

func TestMessagesShareRecordsAndSpanThem(t *testing.T) {
	// Tiny records: every message is cut, several times, at odd places.
	dns := [][]byte{dnDER(1), dnDER(2)}
	hs, _ := runAll(t, mutualTLS12(7, dns, []byte("c")), Options{})
	cr := hs[0].CertRequest
	if cr == nil || len(cr.Issuers) != 2 || cr.Records < 10 {
		t.Fatalf("cert request %+v", cr)
	}
}

func TestServerAlertEndsHandshake(t *testing.T) {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("a.test")))
	c.server(record(ContentHandshake, append(append(serverHello(0x0303), certRequest12(dnDER(1))...), message(typeServerHelloDone, nil)...)))
	c.client(record(ContentHandshake, certificate12()), record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentAlert, []byte{2, 40}))
	hs, _ := runAll(t, c, Options{})
	if len(hs) != 1 || hs[0].End != EndAlert || hs[0].Visibility != VisibilityClear {
		t.Fatalf("%s", toJSON(t, hs))
	}
	a := hs[0].Alerts
	if len(a) != 1 || a[0].From != FromServer || a[0].Description != AlertHandshakeFailure || a[0].Level != AlertFatal {
		t.Errorf("alerts %+v", a)
	}
}

func TestRenegotiationSeenEncrypted(t *testing.T) {
	c := mutualTLS12(16384, [][]byte{dnDER(1)}, []byte("c"))
	c.client(record(ContentApplicationData, make([]byte, 100)))
	c.server(record(ContentHandshake, make([]byte, 36))) // HelloRequest
	c.client(record(ContentHandshake, make([]byte, 300)))
	c.server(record(ContentHandshake, make([]byte, 2000)), record(ContentHandshake, make([]byte, 400)))
	// Record sizes that fit no flight of a real stack: nothing is inferred
	// (TestInferRenegotiation reads the ones that do).
	c.client(record(ContentHandshake, make([]byte, 900)), record(ContentHandshake, make([]byte, 30)), record(ContentHandshake, make([]byte, 20)),
		record(ContentChangeCipherSpec, make([]byte, 25)), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentChangeCipherSpec, make([]byte, 25)), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentApplicationData, make([]byte, 500)))
	hs, obs := runAll(t, c, Options{})
	if len(hs) != 2 {
		t.Fatalf("got %d handshakes: %s", len(hs), toJSON(t, hs))
	}
	r := hs[1]
	if r.Phase != PhaseRenegotiation || r.Visibility != VisibilityEncrypted || r.End != EndFinished || r.Index != 1 {
		t.Errorf("renegotiation: phase %s visibility %s end %s index %d", r.Phase, r.Visibility, r.End, r.Index)
	}
	if got := toJSON(t, r.ServerRecords); got != "[\n 36,\n 2000,\n 400,\n 40\n]" {
		t.Errorf("server records %s", got)
	}
	if obs.Handshakes != 2 {
		t.Errorf("observation handshakes %d", obs.Handshakes)
	}
}

func TestStopAfterHandshake(t *testing.T) {
	c := mutualTLS12(16384, [][]byte{dnDER(1)}, []byte("c"))
	p := NewParser(Options{StopAfterHandshake: true})
	for _, ch := range *c {
		p.Feed(ch.from, ch.data)
	}
	if !p.Done() {
		t.Error("want Done after a TLS 1.2 handshake with StopAfterHandshake")
	}
	p = NewParser(Options{})
	for _, ch := range *c {
		p.Feed(ch.from, ch.data)
	}
	if p.Done() {
		t.Error("TLS 1.2 must keep watching for renegotiation by default")
	}
}

// TestTLS13Inferred: a TLS 1.3 handshake is read from its record sizes
// where they fit a known layout, and stays encrypted where they do not.
func TestTLS13Inferred(t *testing.T) {
	tests := []struct {
		name           string
		server, client []int // protected record lengths after the ServerHello
		visibility     Visibility
		requested      Tri
		sent           Tri
	}{
		// OpenSSL's one message per record, curl's empty Certificate then Finished.
		{"request, no certificate", []int{23, 254, 800, 281, 53, 200}, []int{25, 53}, VisibilityInferred, Yes, No},
		{"no request", []int{23, 800, 281, 53, 200}, []int{53}, VisibilityInferred, No, No},
		// Peers that pad records to 256 bytes (openssl -record_padding 256).
		{"padded", []int{256, 512, 1024, 512, 256, 256}, []int{256}, VisibilityEncrypted, Unknown, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{}
			c.client(record(ContentHandshake, clientHello("a.test", 0x0304, 0x0303)))
			c.server(record(ContentHandshake, serverHello(0x0304)), record(ContentChangeCipherSpec, []byte{1}))
			flight := func(lens []int) (out [][]byte) {
				for _, n := range lens {
					out = append(out, record(ContentApplicationData, make([]byte, n)))
				}
				return out
			}
			last := len(tt.server) - 1
			c.server(flight(tt.server[:last])...)
			c.client(append([][]byte{record(ContentChangeCipherSpec, []byte{1})}, flight(tt.client)...)...)
			c.server(flight(tt.server[last:])...)
			p := NewParser(Options{})
			for _, ch := range *c {
				p.Feed(ch.from, ch.data)
			}
			hs := p.Drain()
			if !p.Done() {
				t.Error("want Done after a TLS 1.3 handshake")
			}
			if len(hs) != 1 {
				t.Fatalf("got %d handshakes", len(hs))
			}
			h := hs[0]
			if h.Visibility != tt.visibility || h.Version != VersionTLS13 || h.End != EndFinished {
				t.Errorf("visibility %s version %s end %s, want %s TLS 1.3 finished", h.Visibility, h.Version, h.End, tt.visibility)
			}
			if !slices.Equal(h.ServerRecords, tt.server) || !slices.Equal(h.ClientRecords, tt.client) {
				t.Errorf("records server %v client %v, want %v %v", h.ServerRecords, h.ClientRecords, tt.server, tt.client)
			}
			var req, sent Tri
			if h.Inferred != nil {
				req, sent = h.Inferred.CertRequested, h.Inferred.CertSent
			}
			if req != tt.requested || sent != tt.sent {
				t.Errorf("inferred requested %s sent %s, want %s %s", req, sent, tt.requested, tt.sent)
			}
			if (h.Inferred == nil) != (tt.visibility != VisibilityInferred) {
				t.Errorf("inferred %+v with visibility %s", h.Inferred, h.Visibility)
			}
		})
	}
}

func TestConnectionDiesMidHandshake(t *testing.T) {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("a.test")))
	c.server(record(ContentHandshake, append(serverHello(0x0303), certRequest12(dnDER(1))...)))
	hs, _ := runAll(t, c, Options{})
	if len(hs) != 1 || hs[0].Visibility != VisibilityPartial || hs[0].End != EndEOF || hs[0].CertRequest == nil {
		t.Fatalf("%s", toJSON(t, hs))
	}
}

func TestNotTLS(t *testing.T) {
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"plain HTTP", `starts with "GET /"`, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"SSH", `starts with "SSH-2"`, []byte("SSH-2.0-OpenSSH_9.2\r\n")},
		{"SSLv2 hello", "SSLv2-compatible", []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15}},
		{"binary", "starts with bytes 00ff", []byte{0x00, 0xff, 0x10, 0x20, 0x30, 0x40}},
		{"alert first", "starts with bytes 15", record(ContentAlert, []byte{2, 40})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{}
			c.client(tc.data)
			c.server([]byte("whatever the server says"))
			hs, obs := runAll(t, c, Options{})
			if len(hs) != 0 || !strings.Contains(obs.NotTLS, tc.want) {
				t.Errorf("handshakes %d, not_tls %q, want %q", len(hs), obs.NotTLS, tc.want)
			}
		})
	}
}

func TestServerNotTLS(t *testing.T) {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("a.test")))
	c.server([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	hs, _ := runAll(t, c, Options{})
	if len(hs) != 1 || hs[0].End != EndServerNotTLS || hs[0].Visibility != VisibilityPartial {
		t.Fatalf("%s", toJSON(t, hs))
	}
}

func TestOversizeMessageSkipped(t *testing.T) {
	big := make([]byte, 5000)
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("a.test")))
	c.server(records(ContentHandshake, append(append(serverHello(0x0303), message(typeCertificate, big)...), certRequest12(dnDER(7))...), 1000))
	hs, _ := runAll(t, c, Options{MaxMessage: 4096})
	h := hs[0]
	if len(h.Errors) != 1 || !strings.Contains(h.Errors[0].Error(), "certificate of 5000 bytes exceeds the 4096-byte limit") || !errors.Is(h.Errors[0], ErrOversize) {
		t.Errorf("errors %q", h.Errors)
	}
	if h.CertRequest == nil || len(h.CertRequest.Issuers) != 1 {
		t.Errorf("the message after the oversize one must still be read: %+v", h.CertRequest)
	}
}

func TestMalformedIssuerListKeepsWhatWasRead(t *testing.T) {
	good := certRequest12(dnDER(1), dnDER(2))
	// Cut the second DN's length so it runs past the vector: two DNs' worth of
	// bytes, one readable DN.
	bad := append([]byte(nil), good...)
	off := 4 + 1 + 2 + 2 + 4 + 2 + 2 + len(dnDER(1))
	bad[off], bad[off+1] = 0xff, 0xff
	m, err := ParseCertificateRequest(bad[4:], false, true)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "certificate_authorities entry 2") {
		t.Fatalf("err %v", err)
	}
	if m == nil || len(m.Issuers) != 1 || m.IssuerBytes != 4+len(dnDER(1))+len(dnDER(2)) {
		t.Errorf("kept %+v", m)
	}
}

func TestUnparsableDNIsKept(t *testing.T) {
	m, err := ParseCertificateRequest(certRequest12([]byte{0x30, 0x03, 0x01})[4:], false, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Issuers) != 1 || !strings.HasPrefix(m.Issuers[0].String(), "<unparsed DN 3 bytes") {
		t.Errorf("issuers %v", m.Issuers)
	}
	if j := toJSON(t, m.Issuers[0]); !strings.Contains(j, `"error"`) || !strings.Contains(j, `"der": "MAMB"`) {
		t.Errorf("json %s", j)
	}
}

func TestGarbageAfterHandshakeStopsQuietly(t *testing.T) {
	c := mutualTLS12(16384, [][]byte{dnDER(1)}, []byte("c"))
	c.client(bytes.Repeat([]byte{0xff}, 100))
	hs, obs := runAll(t, c, Options{})
	if len(hs) != 1 || hs[0].End != EndFinished {
		t.Fatalf("%s", toJSON(t, hs))
	}
	if len(obs.Errors) != 1 || !strings.Contains(obs.Errors[0], "invalid record header ffffffffff") {
		t.Errorf("errors %q", obs.Errors)
	}
}

// TestMidstream: joined in the middle of a connection, the parser reads
// only record headers, and a handshake record after application data is a
// renegotiation, encrypted, never a clear message.
func TestMidstream(t *testing.T) {
	p := NewParser(Options{})
	p.Midstream(FromClient)
	p.Midstream(FromServer)
	c := &conn{}
	c.client(record(ContentApplicationData, make([]byte, 80)))
	// The encrypted HelloRequest: its first bytes would read as a clear one.
	c.server(record(ContentHandshake, append([]byte{0, 0, 0, 0}, make([]byte, 24)...)))
	c.client(record(ContentHandshake, make([]byte, 400)))
	c.server(record(ContentHandshake, make([]byte, 900)), record(ContentHandshake, make([]byte, 300)))
	c.client(record(ContentHandshake, make([]byte, 600)), record(ContentChangeCipherSpec, make([]byte, 25)), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentChangeCipherSpec, make([]byte, 25)), record(ContentHandshake, make([]byte, 40)))
	for _, ch := range *c {
		p.Feed(ch.from, ch.data)
	}
	hs := append(p.Drain(), p.Close()...)
	if len(hs) != 1 {
		t.Fatalf("%d handshakes, want the renegotiation", len(hs))
	}
	h := hs[0]
	if h.Index != 1 || h.Phase != PhaseRenegotiation || h.Visibility != VisibilityEncrypted || h.End != EndFinished || h.HelloRequest || h.ClientInitiated {
		t.Errorf("index %d phase %s visibility %s end %s hello request %v client initiated %v", h.Index, h.Phase, h.Visibility, h.End, h.HelloRequest, h.ClientInitiated)
	}
	// Joined after the server's HelloRequest, the client's ClientHello is
	// the first record seen: who started is not known.
	p = NewParser(Options{})
	p.Midstream(FromClient)
	p.Midstream(FromServer)
	for _, ch := range (*c)[2:] {
		p.Feed(ch.from, ch.data)
	}
	if hs := append(p.Drain(), p.Close()...); len(hs) != 1 || hs[0].ClientInitiated {
		t.Errorf("joined after the HelloRequest: %s", toJSON(t, hs))
	}
	if !slices.Equal(h.ServerRecords, []int{28, 900, 300, 40}) || !slices.Equal(h.ClientRecords, []int{400, 600, 40}) {
		t.Errorf("records server %v client %v", h.ServerRecords, h.ClientRecords)
	}
}

// TestHandshakeErrorsAreValues: a handshake's errors are kept as values a
// caller can branch on, whatever the text, and they marshal as the texts
// they always were.
func TestHandshakeErrorsAreValues(t *testing.T) {
	notTLS := &conn{}
	notTLS.client(record(ContentHandshake, clientHello("a.test")))
	notTLS.server([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	malformed := &conn{}
	bad := certRequest12(dnDER(1), dnDER(2))
	off := 4 + 1 + 2 + 2 + 4 + 2 + 2 + len(dnDER(1))
	bad[off], bad[off+1] = 0xff, 0xff
	malformed.client(record(ContentHandshake, clientHello("a.test")))
	malformed.server(record(ContentHandshake, append(serverHello(0x0303), bad...)))
	for _, tc := range []struct {
		name string
		c    *conn
		want error
	}{
		{"server answers in HTTP", notTLS, ErrNotTLS},
		{"issuer list runs past its vector", malformed, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, _ := runAll(t, tc.c, Options{})
			if len(hs) != 1 || len(hs[0].Errors) == 0 || !errors.Is(hs[0].Errors[0], tc.want) {
				t.Fatalf("want an error that is %v; %s", tc.want, toJSON(t, hs))
			}
			got, err := json.Marshal(hs[0].Errors)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(hs[0].Errors.Strings())
			if string(got) != string(want) || !strings.HasPrefix(string(got), `["`) {
				t.Errorf("errors marshal as %s, want their texts %s", got, want)
			}
		})
	}
}
