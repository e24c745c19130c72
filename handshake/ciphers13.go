package handshake

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/hkdf"
)

// suite13 is a TLS 1.3 suite's AEAD and hash (RFC 8446 B.4).
type suite13 struct {
	keyLen int
	hash   func() hash.Hash
	chacha bool
}

var suites13 = map[CipherSuite]suite13{
	0x1301: {keyLen: 16, hash: sha256.New},               // TLS_AES_128_GCM_SHA256
	0x1302: {keyLen: 32, hash: sha512.New384},            // TLS_AES_256_GCM_SHA384
	0x1303: {keyLen: 32, hash: sha256.New, chacha: true}, // TLS_CHACHA20_POLY1305_SHA256
}

// newTLS13Cipher returns the record cipher for one traffic secret
// (a *_HANDSHAKE_TRAFFIC_SECRET or *_TRAFFIC_SECRET_0 of the key log), at
// sequence number 0: key and iv per RFC 8446 7.3.
func newTLS13Cipher(suite CipherSuite, secret Secret) (*recordCipher, error) {
	s, ok := suites13[suite]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedSuite, suite)
	}
	if n := hashLen(suite); len(secret) != n {
		return nil, fmt.Errorf("TLS 1.3 keys: traffic secret of %d bytes, %s wants %d", len(secret), suite, n)
	}
	key, err := expandLabel(s.hash, secret, "key", s.keyLen)
	if err != nil {
		return nil, err
	}
	iv, err := expandLabel(s.hash, secret, "iv", 12)
	if err != nil {
		return nil, err
	}
	c := &recordCipher{kind: kindTLS13, iv: iv}
	if s.chacha {
		c.aead, err = chacha20poly1305.New(key)
	} else {
		c.aead, err = newGCM(key)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446 7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(n))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes([]byte("tls13 "))
		b.AddBytes([]byte(label))
	})
	b.AddUint8LengthPrefixed(func(*cryptobyte.Builder) {})
	info, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if _, err := hkdf.Expand(h, secret, info).Read(out); err != nil {
		return nil, fmt.Errorf("HKDF-Expand-Label %q: %w", label, err)
	}
	return out, nil
}
