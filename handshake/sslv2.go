package handshake

import "golang.org/x/crypto/cryptobyte"

// SSLv2ClientHello rewrites an SSL 2.0-format CLIENT-HELLO, which old
// clients and scanners still send to offer SSL 3.0 or TLS from an
// SSLv2-compatible start (RFC 5246 appendix E.2), as the TLS record
// carrying the equivalent ClientHello: the same version, the cipher
// suites that have TLS numbers, the session id, and the challenge as the
// random (right-aligned, zero-padded). Fed that record instead, the parser
// reads the session that follows. b must start with the SSLv2 record;
// n is how many of its bytes the SSLv2 record took, 0 when b does not
// start with a whole SSLv2 CLIENT-HELLO.
func SSLv2ClientHello(b []byte) (record []byte, n int) {
	if len(b) < 2 || b[0]&0x80 == 0 {
		return nil, 0
	}
	n = 2 + (int(b[0]&0x7f)<<8 | int(b[1]))
	if len(b) < n {
		return nil, 0
	}
	s := cryptobyte.String(b[2:n])
	var typ uint8
	var version, specLen, sidLen, challengeLen uint16
	var specs, sid, challenge []byte
	if !s.ReadUint8(&typ) || typ != 1 || !s.ReadUint16(&version) || version>>8 != 3 ||
		!s.ReadUint16(&specLen) || !s.ReadUint16(&sidLen) || !s.ReadUint16(&challengeLen) ||
		specLen%3 != 0 || sidLen > 32 || challengeLen < 16 || challengeLen > 32 ||
		!s.ReadBytes(&specs, int(specLen)) || !s.ReadBytes(&sid, int(sidLen)) || !s.ReadBytes(&challenge, int(challengeLen)) || !s.Empty() {
		return nil, 0
	}
	var hello cryptobyte.Builder
	hello.AddUint8(uint8(typeClientHello))
	hello.AddUint24LengthPrefixed(func(m *cryptobyte.Builder) {
		m.AddUint16(version)
		m.AddBytes(make([]byte, 32-len(challenge)))
		m.AddBytes(challenge)
		m.AddUint8LengthPrefixed(func(v *cryptobyte.Builder) { v.AddBytes(sid) })
		m.AddUint16LengthPrefixed(func(v *cryptobyte.Builder) {
			for i := 0; i+3 <= len(specs); i += 3 {
				if specs[i] == 0 {
					v.AddBytes(specs[i+1 : i+3])
				}
			}
		})
		m.AddUint8LengthPrefixed(func(v *cryptobyte.Builder) { v.AddUint8(0) })
	})
	msg, err := hello.Bytes()
	if err != nil {
		return nil, 0
	}
	rec := []byte{byte(ContentHandshake), 3, 1, byte(len(msg) >> 8), byte(len(msg))}
	return append(rec, msg...), n
}
