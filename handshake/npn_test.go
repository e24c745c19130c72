package handshake

import (
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// npnInitial12 is a TLS 1.2 handshake under AES-GCM in which the server
// accepted NPN and the client ends with clientEnd (its protected records
// after ChangeCipherSpec), then sends application data.
func npnInitial12(npn bool, clientEnd ...[]byte) *conn {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("example.test")))
	sh := message(typeServerHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16(0xc02b)
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			if npn {
				b.AddUint16(extNextProtoNeg)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("\x08http/1.1")) })
			}
		})
	}))
	c.server(record(ContentHandshake, append(append(sh, certificate12([]byte("server-cert"))...), message(typeServerHelloDone, nil)...)))
	c.client(append([][]byte{record(ContentHandshake, message(typeClientKeyExchange, []byte{1, 2})), record(ContentChangeCipherSpec, []byte{1})},
		clientEnd...)...)
	c.server(record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.client(record(ContentApplicationData, make([]byte, 120)))
	return c
}

// TestNextProtocolIsNotRenegotiation: NPN's NextProtocol after the client's
// ChangeCipherSpec, in its own record (OpenSSL) or packed with Finished
// (BoringSSL), ends one handshake; a second handshake record without NPN
// accepted still starts a renegotiation.
func TestNextProtocolIsNotRenegotiation(t *testing.T) {
	const (
		gcmFinished  = 16 + 24     // Finished under AES-GCM
		gcmNextProto = 4 + 32 + 24 // "http/1.1" padded to 32, under AES-GCM
		gcmPacked    = 4 + 32 + 16 + 24
	)
	cases := []struct {
		name       string
		npn        bool
		records    []int
		handshakes int
	}{
		{"NextProtocol then Finished, one record each", true, []int{gcmNextProto, gcmFinished}, 1},
		{"NextProtocol and Finished in one record", true, []int{gcmPacked}, 1},
		{"Finished alone though NPN was accepted", true, []int{gcmFinished}, 1},
		{"a second record without NPN is a renegotiation", false, []int{gcmFinished, gcmNextProto}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var end [][]byte
			for _, n := range tc.records {
				end = append(end, record(ContentHandshake, make([]byte, n)))
			}
			hs, _ := runAll(t, npnInitial12(tc.npn, end...), Options{})
			if len(hs) != tc.handshakes {
				t.Fatalf("%d handshakes, want %d: %+v", len(hs), tc.handshakes, hs)
			}
			if h := hs[0]; h.End != EndFinished || !h.ClientFinished || !h.ServerFinished {
				t.Errorf("first handshake end %s finished %v/%v; messages %v", h.End, h.ClientFinished, h.ServerFinished, h.Messages)
			}
		})
	}
}
