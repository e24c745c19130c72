package handshake

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// initial12 scripts a clear TLS 1.2 handshake that asks for no certificate,
// with the given suite and ServerHello extensions (encrypt_then_mac,
// status_request), then the client's first request.
func initial12(suite uint16, exts ...uint16) *conn {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("example.test")))
	sh := message(typeServerHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16(suite)
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range exts {
				b.AddUint16(e)
				b.AddUint16(0)
			}
		})
	}))
	c.server(record(ContentHandshake, append(append(sh, certificate12([]byte("server-cert"))...), message(typeServerHelloDone, nil)...)))
	c.client(record(ContentHandshake, message(typeClientKeyExchange, []byte{1, 2})), record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.client(record(ContentApplicationData, make([]byte, 120)))
	return c
}

// script appends protected records written as "s28 c250 cC sA sD": the
// side, then a handshake record's length, C for ChangeCipherSpec, A for an
// alert, D for application data (sizes as if under AES-GCM; only the
// handshake records' lengths are read).
func script(c *conn, s string) *conn {
	for _, tok := range strings.Fields(s) {
		from := FromClient
		if tok[0] == 's' {
			from = FromServer
		}
		var rec []byte
		switch tok[1:] {
		case "C":
			rec = record(ContentChangeCipherSpec, make([]byte, 25))
		case "A":
			rec = record(ContentAlert, make([]byte, 26))
		case "D":
			rec = record(ContentApplicationData, make([]byte, 300))
		default:
			n, err := strconv.Atoi(tok[1:])
			if err != nil {
				panic(tok)
			}
			rec = record(ContentHandshake, make([]byte, n))
		}
		c.add(from, [][]byte{rec})
	}
	return c
}

// TestInferRenegotiation reads TLS 1.2 renegotiations without keys. The
// record lengths are the ones measured here from Apache 2.4 (per-location
// SSLVerifyClient require, OpenSSL 3.0) with curl 7.88 and Chromium, and
// the layouts the other stacks use (SChannel's one-record server flight).
func TestInferRenegotiation(t *testing.T) {
	const (
		gcm     = 0xc02b // ECDHE-ECDSA-AES128-GCM-SHA256
		chacha  = 0xcca9
		cbc     = 0xc009 // ECDHE-ECDSA-AES128-SHA
		cbc384  = 0xc024 // ECDHE-ECDSA-AES256-SHA384
		rsaGCM  = 0x009c // AES128-GCM-SHA256: no ServerKeyExchange
		unknown = 0xc0ac // ECDHE-ECDSA-AES128-CCM: not sized here
	)
	etm, status := []uint16{extEncryptThenMAC}, []uint16{extStatusRequest}
	cases := []struct {
		name            string
		suite           uint16
		exts            []uint16
		records         string
		visibility      Visibility
		requested, sent Tri
		crMin, crMax    int
		alert           bool
		helloRequest    bool
		clientInitiated bool
	}{
		{name: "GCM, curl sends a chain, accepted", suite: gcm,
			records:    "s28 c250 s141 s452 s139 s108 s28 c409 c61 c103 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, crMin: 84, crMax: 84, helloRequest: true},
		{name: "GCM, curl sends an empty Certificate, refused", suite: gcm,
			records:    "s28 c250 s141 s452 s139 s108 s28 c31 c61 cC c40 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 84, crMax: 84, alert: true, helloRequest: true},
		{name: "ChaCha20, curl sends a chain", suite: chacha,
			records:    "s20 c190 s133 s444 s131 s100 s20 c400 c53 c94 cC c32 sC s32",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, crMin: 84, crMax: 84, helloRequest: true},
		{name: "ChaCha20, curl sends nothing, refused", suite: chacha,
			records:    "s20 c190 s133 s444 s132 s100 s20 c23 c53 cC c32 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 84, crMax: 84, alert: true, helloRequest: true},
		{name: "CBC SHA-1 encrypt_then_mac: sizes are ranges", suite: cbc, exts: etm,
			records:    "s52 c212 s164 s468 s164 s132 s52 c436 c84 c116 cC c68 sC s68",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, crMin: 0, crMax: 95, helloRequest: true},
		{name: "CBC SHA-1 encrypt_then_mac, empty Certificate", suite: cbc, exts: etm,
			records:    "s52 c212 s164 s468 s164 s132 s52 c52 c84 cC c68 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 0, crMax: 95, alert: true, helloRequest: true},
		{name: "CBC SHA-384 encrypt_then_mac", suite: cbc384, exts: etm,
			records:    "s80 c240 s192 s496 s192 s160 s80 c80 c112 cC c96 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 0, crMax: 95, alert: true, helloRequest: true},
		// MAC-then-encrypt: IV + blocks of plaintext, MAC and padding.
		{name: "CBC SHA-1 MAC-then-encrypt, empty Certificate", suite: cbc,
			records:    "s48 c224 s160 s464 s160 s128 s48 c48 c80 cC c64 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 0, crMax: 91, alert: true, helloRequest: true},
		{name: "CBC: a record not of whole blocks fits no layout", suite: cbc,
			records:    "s50 c224 s160 s464 s160 s128 s50 c50 c80 cC c64 sA",
			visibility: VisibilityEncrypted, requested: Unknown, sent: Unknown},
		{name: "Chromium packs its flight: a chain", suite: gcm,
			records:    "s28 c1935 s141 s452 s139 s108 s28 c523 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, crMin: 84, crMax: 84, helloRequest: true},
		{name: "Chromium packs its flight: empty Certificate and key exchange", suite: gcm,
			records:    "s28 c1903 s141 s452 s139 s108 s28 c68 cC c40 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 84, crMax: 84, alert: true, helloRequest: true},
		{name: "Chromium leaves to pick a certificate", suite: gcm,
			records:    "s28 c1935 s141 s452 s138 s108 s28",
			visibility: VisibilityPartial, requested: Yes, sent: Unknown, crMin: 84, crMax: 84, helloRequest: true},
		{name: "SChannel's one-record flight, curl answers with an empty Certificate", suite: gcm,
			records:    "s28 c250 s2100 c31 c61 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: No, helloRequest: true},
		{name: "SChannel's one-record flight, curl sends a chain", suite: gcm,
			records:    "s28 c250 s2100 c1409 c61 c103 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, helloRequest: true},
		{name: "SChannel's one-record flight, a packed flight too small for a chain", suite: gcm,
			records:    "s28 c1903 s2100 c68 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Unknown, sent: No, helloRequest: true},
		{name: "no CertificateRequest: ClientKeyExchange alone", suite: gcm,
			records:    "s28 c250 s141 s452 s139 s28 c61 cC c40 sC s40",
			visibility: VisibilityInferred, requested: No, sent: No, helloRequest: true},
		{name: "RSA key exchange: no ServerKeyExchange", suite: rsaGCM,
			records:    "s28 c250 s141 s452 s108 s28 c31 c286 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 84, crMax: 84, helloRequest: true},
		{name: "status_request: one more record is a CertificateRequest or a CertificateStatus; no room for a chain", suite: gcm, exts: status,
			records:    "s28 c250 s141 s452 s139 s108 s28 c61 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Unknown, sent: No, helloRequest: true},
		{name: "status_request: one more record, and a per-message answer", suite: gcm, exts: status,
			records:    "s28 c250 s141 s452 s139 s108 s28 c31 c61 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: No, helloRequest: true},
		{name: "status_request: two more records are both", suite: gcm, exts: status,
			records:    "s28 c250 s141 s452 s900 s139 s108 s28 c31 c61 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 84, crMax: 84, helloRequest: true},
		{name: "the sides disagree: nothing", suite: gcm,
			records:    "s28 c250 s141 s452 s139 s28 c31 c61 cC c40 sC s40",
			visibility: VisibilityEncrypted, requested: Unknown, sent: Unknown, helloRequest: true},
		{name: "a 60 KB issuer list over four records", suite: gcm,
			records:    "s28 c250 s141 s452 s139 s16408 s16408 s16408 s11000 s28 c31 c61 cC c40 sA",
			visibility: VisibilityInferred, requested: Yes, sent: No, crMin: 3*16384 + 10976, crMax: 3*16384 + 10976, alert: true, helloRequest: true},
		{name: "client-initiated, resumed", suite: gcm,
			records:    "c250 s120 sC s40 cC c40",
			visibility: VisibilityInferred, requested: No, sent: No, clientInitiated: true},
		{name: "client-initiated, full handshake", suite: gcm,
			records:    "c250 s141 s452 s139 s108 s28 c409 c61 c103 cC c40 sC s40",
			visibility: VisibilityInferred, requested: Yes, sent: Yes, crMin: 84, crMax: 84, clientInitiated: true},
		{name: "the server's first record is no HelloRequest's size", suite: gcm,
			records:    "s141 c250 s452 s139 s108 s28 c61 cC c40 sC s40",
			visibility: VisibilityEncrypted, requested: Unknown, sent: Unknown},
		{name: "the client refuses to renegotiate", suite: gcm,
			records:    "s28 cA",
			visibility: VisibilityEncrypted, requested: Unknown, sent: Unknown, helloRequest: true},
		{name: "a suite not sized here", suite: unknown,
			records:    "s28 c250 s141 s452 s139 s108 s28 c31 c61 cC c40 sA",
			visibility: VisibilityEncrypted, requested: Unknown, sent: Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, _ := runAll(t, script(initial12(tc.suite, tc.exts...), tc.records), Options{})
			if len(hs) != 2 {
				t.Fatalf("%d handshakes", len(hs))
			}
			h := hs[1]
			var inf Inference
			if h.Inferred != nil {
				inf = *h.Inferred
			}
			if h.Phase != PhaseRenegotiation || h.Visibility != tc.visibility || inf.CertRequested != tc.requested || inf.CertSent != tc.sent ||
				inf.CertRequestMin != tc.crMin || inf.CertRequestLen != tc.crMax || inf.ServerAlert != tc.alert ||
				h.HelloRequest != tc.helloRequest || h.ClientInitiated != tc.clientInitiated {
				t.Errorf("phase %s visibility %s requested %s sent %s request %d..%d alert %v hello_request %v client_initiated %v\n"+
					"want %s %s %s %d..%d %v %v %v\nevidence: %s",
					h.Phase, h.Visibility, inf.CertRequested, inf.CertSent, inf.CertRequestMin, inf.CertRequestLen, inf.ServerAlert, h.HelloRequest, h.ClientInitiated,
					tc.visibility, tc.requested, tc.sent, tc.crMin, tc.crMax, tc.alert, tc.helloRequest, tc.clientInitiated, inf.Evidence)
			}
			if h.Inferred != nil && !strings.Contains(inf.Evidence, "renegotiation") {
				t.Errorf("evidence %q", inf.Evidence)
			}
			if aborted := strings.Contains(tc.name, "leaves"); h.ClientAborted() != aborted {
				t.Errorf("client aborted %v", h.ClientAborted())
			}
		})
	}
}

// TestRenegotiationLayoutChanges: a renegotiation whose Finished records
// are not sized by the old suite changed it; the next one is not read.
func TestRenegotiationLayoutChanges(t *testing.T) {
	const gcm = 0xc02b
	for _, tc := range []struct {
		name   string
		finish string // each side's Finished after its ChangeCipherSpec
		second Visibility
	}{
		{"same layout: the second renegotiation is read", "cC c40 sC s40", VisibilityInferred},
		{"ChaCha20-sized Finished: not read", "cC c32 sC s32", VisibilityEncrypted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := script(initial12(gcm), "s28 c250 s141 s452 s139 s108 s28 c409 c61 c103 "+tc.finish+" cD")
			script(c, "s28 c250 s141 s452 s139 s108 s28 c31 c61 cC c40 sA")
			hs, _ := runAll(t, c, Options{})
			if len(hs) != 3 || hs[1].Visibility != VisibilityInferred || hs[2].Visibility != tc.second {
				t.Fatalf("%s", toJSON(t, hs))
			}
		})
	}
}

func TestLayout12(t *testing.T) {
	cases := []struct {
		suite  CipherSuite
		etm    bool
		n      int
		lo, hi int
		ok     bool
	}{
		{0xc02b, false, 31, 7, 7, true},
		{0xc02b, false, 23, 0, 0, false},
		{0xcca9, false, 23, 7, 7, true},
		{0xc009, true, 52, 0, 15, true},    // IV 16 + one block + MAC 20
		{0xc009, true, 308, 16, 271, true}, // 17 blocks: 1 to 256 bytes of padding
		{0xc009, true, 300, 0, 0, false},   // 16.5 blocks
		{0xc009, false, 48, 0, 11, true},   // IV 16 + two blocks holding 7 + MAC 20 + padding
		{0xc009, false, 50, 0, 0, false},   // not whole blocks
		{0xc024, true, 80, 0, 15, true},    // MAC 48
		{0xc02b, false, 16408, 16384, 16384, true},
		{0xc02b, false, 16409, 0, 0, false}, // more than 2^14 of plaintext
		{0x1301, false, 100, 0, 0, false},   // a TLS 1.3 suite has no TLS 1.2 layout
	}
	for _, tc := range cases {
		l := newLayout12(tc.suite, tc.etm)
		lo, hi, ok := l.plain(tc.n)
		if ok != tc.ok || ok && (lo != tc.lo || hi != tc.hi) {
			t.Errorf("%s etm %v, %d bytes: %d..%d %v, want %d..%d %v", tc.suite, tc.etm, tc.n, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

// TestFalseStartThenHelloRequest: Chromium's False Start data ends the
// first handshake before the server's Finished; the server's HelloRequest
// after that Finished still starts a renegotiation the server asked for.
func TestFalseStartThenHelloRequest(t *testing.T) {
	c := initial12(0xc02b)
	n := len(*c)
	(*c)[n-2], (*c)[n-1] = (*c)[n-1], (*c)[n-2] // the client's data before the server's ChangeCipherSpec and Finished
	hs, _ := runAll(t, script(c, "s28 c1903 s141 s452 s139 s108 s28 c68 cC c40 sA"), Options{})
	if len(hs) != 2 || hs[0].End != EndApplicationData {
		t.Fatalf("%s", toJSON(t, hs))
	}
	h := hs[1]
	if !h.HelloRequest || h.ClientInitiated || h.Visibility != VisibilityInferred || h.Inferred.CertRequested != Yes || h.Inferred.CertSent != No {
		t.Errorf("hello_request %v client_initiated %v visibility %s inferred %+v", h.HelloRequest, h.ClientInitiated, h.Visibility, h.Inferred)
	}
}
