package handshake

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// clientHello13 is a TLS 1.3 ClientHello, offering post_handshake_auth
// when pha is set.
func clientHello13(pha bool) []byte {
	return message(typeClientHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0x1301); b.AddUint16(0x1302) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(extSupportedVersions)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0x0304) })
			})
			if pha {
				b.AddUint16(extPostHandshakeAuth)
				b.AddUint16(0)
			}
		})
	}))
}

// initial13 scripts a TLS 1.3 handshake with OpenSSL's one-message-per-
// record server flight that asks for no certificate (SHA-256 suite:
// Finished records of 53 bytes) and the client's Finished.
func initial13(pha bool) *conn {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello13(pha)))
	c.server(record(ContentHandshake, serverHello(0x0304)), record(ContentChangeCipherSpec, []byte{1}))
	return script13(c, "s23 s900 s97 s53 c53")
}

// script13 appends protected TLS 1.3 records written as "s282 c103".
func script13(c *conn, s string) *conn {
	for _, tok := range strings.Fields(s) {
		from := FromClient
		if tok[0] == 's' {
			from = FromServer
		}
		n, err := strconv.Atoi(tok[1:])
		if err != nil {
			panic(tok)
		}
		c.add(from, [][]byte{record(ContentApplicationData, make([]byte, n))})
	}
	return c
}

// TestInferPostHandshake reads TLS 1.3 post-handshake authentication from
// record sizes, with the record lengths measured here from Apache 2.4
// (per-location SSLVerifyClient require) and curl 7.88, SHA-256 suite.
func TestInferPostHandshake(t *testing.T) {
	cases := []struct {
		name       string
		pha        bool
		opts       Options
		records    string
		found      bool
		visibility Visibility
		end        End
		sent       Tri
		crLen      int
		alert      bool
	}{
		{name: "curl sends a chain, the server answers", pha: true,
			records: "s282 s282 c103 s132 c436 c97 c53 s666 s666 s248 c19 s19",
			found:   true, visibility: VisibilityInferred, end: EndFinished, sent: Yes, crLen: 115},
		{name: "curl sends an empty Certificate, the server's alert", pha: true,
			records: "s282 s282 c103 s132 c57 c53 s19",
			found:   true, visibility: VisibilityInferred, end: EndFinished, sent: No, crLen: 115, alert: true},
		{name: "the request came before the server's tickets", pha: true,
			records: "c103 s282 s282 s132 c57 c53 s19",
			found:   true, visibility: VisibilityInferred, end: EndFinished, sent: No, crLen: 115, alert: true},
		{name: "the connection ends after the answer", pha: true,
			records: "s282 c103 s132 c57 c53",
			found:   true, visibility: VisibilityPartial, end: EndEOF, sent: No, crLen: 115},
		{name: "a 60 KB issuer list over four records", pha: true,
			records: "s282 c103 s16401 s16401 s16401 s11000 c57 c53 s19",
			found:   true, visibility: VisibilityInferred, end: EndFinished, sent: No, crLen: 3*16384 + 10983, alert: true},
		{name: "tickets and answers only: no request", pha: true,
			records: "s282 s282 c103 s248 c103 s248 c19 s19"},
		{name: "an answer's sizes before any request are not one", pha: true,
			records: "s282 c57 c53 s19"},
		{name: "an empty Certificate cannot be larger than the request", pha: true,
			records: "s282 c103 s60 c57 c53 s19"},
		{name: "a chain needs a CertificateVerify of a signature's size", pha: true,
			records: "s282 c103 s132 c436 c30 c53 s248"},
		{name: "the client did not offer post_handshake_auth", pha: false,
			records: "s282 c103 s132 c57 c53 s19"},
		{name: "the caller stops after the handshake", pha: true, opts: Options{StopAfterHandshake: true},
			records: "s282 c103 s132 c57 c53 s19"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, _ := runAll(t, script13(initial13(tc.pha), tc.records), tc.opts)
			if hs[0].Phase != PhaseInitial || hs[0].Visibility != VisibilityInferred {
				t.Fatalf("initial handshake %s %s", hs[0].Phase, hs[0].Visibility)
			}
			if !tc.found {
				if len(hs) != 1 {
					t.Fatalf("%d handshakes, want the initial one only: %s", len(hs), toJSON(t, hs[1:]))
				}
				return
			}
			if len(hs) != 2 {
				t.Fatalf("%d handshakes", len(hs))
			}
			h := hs[1]
			inf := h.Inferred
			if h.Phase != PhasePostHandshake || h.Index != 1 || h.Visibility != tc.visibility || h.End != tc.end || inf == nil ||
				inf.CertRequested != Yes || inf.CertSent != tc.sent || inf.CertRequestLen != tc.crLen || inf.ServerAlert != tc.alert {
				t.Fatalf("%s", toJSON(t, h))
			}
			if h.ClientHello == nil || !h.ClientHello.PostHandshakeAuth || h.Version != VersionTLS13 || !h.ClientFinished || !h.ServerFinished {
				t.Errorf("client hello %v version %s finished %v %v", h.ClientHello, h.Version, h.ClientFinished, h.ServerFinished)
			}
		})
	}
}

// TestPostHandshakeWatchIsBounded: after a TLS 1.3 handshake whose client
// offered post_handshake_auth the parser reads record headers a while
// longer, then is done.
func TestPostHandshakeWatchIsBounded(t *testing.T) {
	p := NewParser(Options{})
	for _, ch := range *initial13(true) {
		p.Feed(ch.from, ch.data)
	}
	p.Feed(FromServer, record(ContentApplicationData, make([]byte, 282)))
	if p.Done() {
		t.Fatal("done right after the handshake: no post-handshake request can be seen")
	}
	for i := 0; i < 2*maxPHARecords && !p.Done(); i++ {
		p.Feed(FromServer, record(ContentApplicationData, make([]byte, 1000)))
	}
	if !p.Done() {
		t.Error("still reading after the watch's bound")
	}
	if hs := append(p.Drain(), p.Close()...); len(hs) != 1 {
		t.Errorf("%d handshakes", len(hs))
	}
	// Without the offer the parser is done with the handshake.
	p = NewParser(Options{})
	for _, ch := range *initial13(false) {
		p.Feed(ch.from, ch.data)
	}
	p.Feed(FromServer, record(ContentApplicationData, make([]byte, 282)))
	if !p.Done() {
		t.Error("a client without post_handshake_auth is watched")
	}
}
