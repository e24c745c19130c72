package handshake

import (
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestStreamShorterThanAHeader(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"other protocol", "ping", `starts with "ping"`},
		{"truncated TLS", "\x16\x03\x01", "the stream ended after 3 bytes (160301)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{}
			c.client([]byte(tc.data))
			hs, obs := runAll(t, c, Options{})
			if len(hs) != 0 || !strings.Contains(obs.NotTLS, tc.want) {
				t.Errorf("handshakes %d, not_tls %q, want %q", len(hs), obs.NotTLS, tc.want)
			}
		})
	}
}

// serverHelloALPN is a TLS 1.2 ServerHello that selects proto.
func serverHelloALPN(proto string) []byte {
	return message(typeServerHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16(0xc02b)
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(extALPN)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(proto)) })
				})
			})
		})
	}))
}

func TestRenegotiationKnowsTheConnectionsALPN(t *testing.T) {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("h2.example.test")))
	c.server(record(ContentHandshake, append(serverHelloALPN("h2"), message(typeServerHelloDone, nil)...)))
	c.client(record(ContentHandshake, message(typeClientKeyExchange, []byte{1})), record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.client(record(ContentApplicationData, make([]byte, 50)))
	c.server(record(ContentHandshake, make([]byte, 36)))
	hs, _ := runAll(t, c, Options{})
	if len(hs) != 2 || hs[0].ALPN != "h2" || hs[1].ALPN != "h2" || hs[1].Phase != PhaseRenegotiation {
		t.Fatalf("%s", toJSON(t, hs))
	}
}
