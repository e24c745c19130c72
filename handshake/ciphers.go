package handshake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrDecrypt is wrapped by every record that does not open: a bad tag or
// MAC, bad padding, a record too short for its cipher, or an empty TLS 1.3
// plaintext. Wrong keys and damaged records look the same.
var ErrDecrypt = errors.New("record does not decrypt")

// ErrUnsupportedSuite: the cipher suite (or protocol version) has no
// decrypter here; the handshake stays encrypted.
var ErrUnsupportedSuite = errors.New("cipher suite not supported for decryption")

// maxPlaintext is the largest record plaintext TLS allows (RFC 5246 6.2.1,
// RFC 8446 5.1); a TLS 1.3 inner plaintext may add one content type byte and
// padding up to 256 bytes more (RFC 8446 5.2).
const maxPlaintext = 1 << 14

type recordKind uint8

const (
	kindTLS13    recordKind = iota + 1
	kindGCM12               // 4-byte implicit + 8-byte explicit nonce (RFC 5288)
	kindChaCha12            // iv XOR seq, no explicit nonce (RFC 7905)
	kindCBC12               // explicit IV, MAC-then-encrypt (RFC 5246 6.2.3.2)
	kindCBCEtM12            // explicit IV, encrypt-then-MAC (RFC 7366)
)

// recordCipher removes the record protection of one direction of one
// connection under one key. It counts sequence numbers: every record of that
// direction under that key must go through Open or Skip, in order.
type recordCipher struct {
	kind  recordKind
	aead  cipher.AEAD
	iv    []byte // TLS 1.3 and ChaCha: the 12-byte per-key IV; GCM: the 4-byte salt
	block cipher.Block
	mac   func() hash.Hash // CBC: HMAC under this direction's MAC key
	seq   uint64
	nonce [12]byte
}

// Seq is the sequence number the next record will be opened with.
func (c *recordCipher) Seq() uint64 { return c.seq }

// Skip counts one record without decrypting it: application data is never
// decrypted, yet its sequence number is used up.
func (c *recordCipher) Skip() { c.seq++ }

// Open removes the protection of one record whose header declared typ and
// version and whose body is body. It appends the plaintext to dst and
// returns it with the real content type (TLS 1.3 hides it inside). body is
// not modified. The sequence number advances whether or not the record
// opens, as it did for the peers.
func (c *recordCipher) Open(dst []byte, typ ContentType, version uint16, body []byte) (ContentType, []byte, error) {
	seq := c.seq
	c.seq++
	if len(body) > maxCiphertext {
		return 0, dst, fmt.Errorf("%w: %d-byte record exceeds %d", ErrDecrypt, len(body), maxCiphertext)
	}
	switch c.kind {
	case kindTLS13:
		return c.open13(dst, typ, version, body, seq)
	case kindGCM12, kindChaCha12:
		return c.openAEAD12(dst, typ, version, body, seq)
	case kindCBC12, kindCBCEtM12:
		return c.openCBC12(dst, typ, version, body, seq)
	}
	return 0, dst, ErrUnsupportedSuite
}

func (c *recordCipher) xorNonce(seq uint64) []byte {
	copy(c.nonce[:], c.iv)
	for i := range 8 {
		c.nonce[4+i] ^= byte(seq >> (56 - 8*i))
	}
	return c.nonce[:]
}

func (c *recordCipher) open13(dst []byte, typ ContentType, version uint16, body []byte, seq uint64) (ContentType, []byte, error) {
	overhead := c.aead.Overhead()
	if len(body) < overhead+1 {
		return 0, dst, fmt.Errorf("%w: %d-byte record is shorter than the %d-byte tag and a content type", ErrDecrypt, len(body), overhead)
	}
	if len(body) > maxPlaintext+256+overhead {
		return 0, dst, fmt.Errorf("%w: %d-byte TLS 1.3 record exceeds 2^14+256 plus the tag", ErrDecrypt, len(body))
	}
	// The additional data is the record header itself (RFC 8446 5.2).
	ad := [5]byte{byte(typ), byte(version >> 8), byte(version), byte(len(body) >> 8), byte(len(body))}
	start := len(dst)
	out, err := c.aead.Open(dst, c.xorNonce(seq), body, ad[:])
	if err != nil {
		return 0, dst, fmt.Errorf("%w: TLS 1.3 record %d: authentication failed", ErrDecrypt, seq)
	}
	// The real type is the last non-zero byte; zeros after it are padding.
	plain := out[start:]
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, dst, fmt.Errorf("%w: TLS 1.3 record %d has no content type", ErrDecrypt, seq)
	}
	return ContentType(plain[i]), out[:start+i], nil
}

// additionalData12 is TLS 1.2's seq_num, type, version and plaintext length.
func additionalData12(seq uint64, typ ContentType, version uint16, n int) [13]byte {
	var ad [13]byte
	binary.BigEndian.PutUint64(ad[:8], seq)
	ad[8] = byte(typ)
	binary.BigEndian.PutUint16(ad[9:], version)
	binary.BigEndian.PutUint16(ad[11:], uint16(n))
	return ad
}

func (c *recordCipher) openAEAD12(dst []byte, typ ContentType, version uint16, body []byte, seq uint64) (ContentType, []byte, error) {
	overhead := c.aead.Overhead()
	var nonce []byte
	if c.kind == kindGCM12 {
		if len(body) < 8+overhead {
			return 0, dst, fmt.Errorf("%w: %d-byte record is shorter than the explicit nonce and tag", ErrDecrypt, len(body))
		}
		copy(c.nonce[:4], c.iv)
		copy(c.nonce[4:], body[:8])
		nonce, body = c.nonce[:], body[8:]
	} else {
		if len(body) < overhead {
			return 0, dst, fmt.Errorf("%w: %d-byte record is shorter than the tag", ErrDecrypt, len(body))
		}
		nonce = c.xorNonce(seq)
	}
	n := len(body) - overhead
	if n > maxPlaintext {
		return 0, dst, fmt.Errorf("%w: %d bytes of plaintext exceed 2^14", ErrDecrypt, n)
	}
	ad := additionalData12(seq, typ, version, n)
	out, err := c.aead.Open(dst, nonce, body, ad[:])
	if err != nil {
		return 0, dst, fmt.Errorf("%w: TLS 1.2 record %d: authentication failed", ErrDecrypt, seq)
	}
	return typ, out, nil
}

func (c *recordCipher) openCBC12(dst []byte, typ ContentType, version uint16, body []byte, seq uint64) (ContentType, []byte, error) {
	bs := c.block.BlockSize()
	m := c.mac()
	macLen := m.Size()
	if c.kind == kindCBCEtM12 {
		// The MAC covers the IV and ciphertext and comes last (RFC 7366 3).
		if len(body) < bs+bs+macLen {
			return 0, dst, fmt.Errorf("%w: %d-byte record is too short for IV, a block and the MAC", ErrDecrypt, len(body))
		}
		ct := body[:len(body)-macLen]
		ad := additionalData12(seq, typ, version, len(ct))
		m.Write(ad[:])
		m.Write(ct)
		if !hmac.Equal(m.Sum(nil), body[len(ct):]) {
			return 0, dst, fmt.Errorf("%w: TLS 1.2 record %d: MAC mismatch", ErrDecrypt, seq)
		}
		body = ct
	}
	if len(body) < 2*bs || len(body)%bs != 0 {
		return 0, dst, fmt.Errorf("%w: %d-byte CBC record is not IV plus whole blocks", ErrDecrypt, len(body))
	}
	iv, ct := body[:bs], body[bs:]
	start := len(dst)
	dst = append(dst, ct...)
	plain := dst[start:]
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(plain, plain)
	pad := int(plain[len(plain)-1])
	need := pad + 1
	if c.kind == kindCBC12 {
		need += macLen
	}
	if need > len(plain) {
		return 0, dst[:start], fmt.Errorf("%w: TLS 1.2 record %d: bad padding", ErrDecrypt, seq)
	}
	good := 1
	for _, b := range plain[len(plain)-1-pad:] {
		good &= subtle.ConstantTimeByteEq(b, byte(pad))
	}
	if good != 1 {
		return 0, dst[:start], fmt.Errorf("%w: TLS 1.2 record %d: bad padding", ErrDecrypt, seq)
	}
	plain = plain[:len(plain)-1-pad]
	if c.kind == kindCBC12 {
		data, got := plain[:len(plain)-macLen], plain[len(plain)-macLen:]
		ad := additionalData12(seq, typ, version, len(data))
		m.Write(ad[:])
		m.Write(data)
		if !hmac.Equal(m.Sum(nil), got) {
			return 0, dst[:start], fmt.Errorf("%w: TLS 1.2 record %d: MAC mismatch", ErrDecrypt, seq)
		}
		plain = data
	}
	if len(plain) > maxPlaintext {
		return 0, dst[:start], fmt.Errorf("%w: %d bytes of plaintext exceed 2^14", ErrDecrypt, len(plain))
	}
	return typ, dst[:start+len(plain)], nil
}

// suite12 describes a TLS 1.2 suite's record protection.
type suite12 struct {
	kind   recordKind // kindGCM12, kindChaCha12 or kindCBC12
	keyLen int
	macLen int // CBC: the HMAC's length
	mac    func() hash.Hash
	prf    func() hash.Hash
}

var suites12 = map[CipherSuite]suite12{
	// AES-GCM (RFC 5288, RFC 5289).
	0x009c: {kind: kindGCM12, keyLen: 16, prf: sha256.New}, // RSA_WITH_AES_128_GCM_SHA256
	0x009d: {kind: kindGCM12, keyLen: 32, prf: sha512.New384},
	0x009e: {kind: kindGCM12, keyLen: 16, prf: sha256.New}, // DHE_RSA
	0x009f: {kind: kindGCM12, keyLen: 32, prf: sha512.New384},
	0xc02b: {kind: kindGCM12, keyLen: 16, prf: sha256.New}, // ECDHE_ECDSA
	0xc02c: {kind: kindGCM12, keyLen: 32, prf: sha512.New384},
	0xc02f: {kind: kindGCM12, keyLen: 16, prf: sha256.New}, // ECDHE_RSA
	0xc030: {kind: kindGCM12, keyLen: 32, prf: sha512.New384},
	// ChaCha20-Poly1305 (RFC 7905).
	0xcca8: {kind: kindChaCha12, keyLen: 32, prf: sha256.New}, // ECDHE_RSA
	0xcca9: {kind: kindChaCha12, keyLen: 32, prf: sha256.New}, // ECDHE_ECDSA
	0xccaa: {kind: kindChaCha12, keyLen: 32, prf: sha256.New}, // DHE_RSA
	// AES-CBC with HMAC (RFC 5246, RFC 5289); TLS 1.2's PRF is SHA-256
	// unless the suite names SHA-384.
	0x002f: {kind: kindCBC12, keyLen: 16, macLen: 20, mac: sha1.New, prf: sha256.New}, // RSA_WITH_AES_128_CBC_SHA
	0x0035: {kind: kindCBC12, keyLen: 32, macLen: 20, mac: sha1.New, prf: sha256.New},
	0x0033: {kind: kindCBC12, keyLen: 16, macLen: 20, mac: sha1.New, prf: sha256.New}, // DHE_RSA
	0x0039: {kind: kindCBC12, keyLen: 32, macLen: 20, mac: sha1.New, prf: sha256.New},
	0xc009: {kind: kindCBC12, keyLen: 16, macLen: 20, mac: sha1.New, prf: sha256.New}, // ECDHE_ECDSA
	0xc00a: {kind: kindCBC12, keyLen: 32, macLen: 20, mac: sha1.New, prf: sha256.New},
	0xc013: {kind: kindCBC12, keyLen: 16, macLen: 20, mac: sha1.New, prf: sha256.New}, // ECDHE_RSA
	0xc014: {kind: kindCBC12, keyLen: 32, macLen: 20, mac: sha1.New, prf: sha256.New},
	0x003c: {kind: kindCBC12, keyLen: 16, macLen: 32, mac: sha256.New, prf: sha256.New}, // RSA_WITH_AES_128_CBC_SHA256
	0x003d: {kind: kindCBC12, keyLen: 32, macLen: 32, mac: sha256.New, prf: sha256.New},
	0x0067: {kind: kindCBC12, keyLen: 16, macLen: 32, mac: sha256.New, prf: sha256.New}, // DHE_RSA
	0x006b: {kind: kindCBC12, keyLen: 32, macLen: 32, mac: sha256.New, prf: sha256.New},
	0xc023: {kind: kindCBC12, keyLen: 16, macLen: 32, mac: sha256.New, prf: sha256.New}, // ECDHE_ECDSA
	0xc024: {kind: kindCBC12, keyLen: 32, macLen: 48, mac: sha512.New384, prf: sha512.New384},
	0xc027: {kind: kindCBC12, keyLen: 16, macLen: 32, mac: sha256.New, prf: sha256.New}, // ECDHE_RSA
	0xc028: {kind: kindCBC12, keyLen: 32, macLen: 48, mac: sha512.New384, prf: sha512.New384},
}

// tls12Params is what a TLS 1.2 connection's record keys derive from.
type tls12Params struct {
	Suite        CipherSuite
	Master       Secret // 48 bytes, the key log's CLIENT_RANDOM line
	ClientRandom []byte
	ServerRandom []byte
	// EncryptThenMAC: both hellos carried encrypt_then_mac (RFC 7366), which
	// changes CBC records (OpenSSL negotiates it; Go does not).
	EncryptThenMAC bool
}

// newTLS12Ciphers derives the key block (RFC 5246 6.3) and returns the
// record ciphers of the client's and the server's direction, both at
// sequence number 0 (their ChangeCipherSpec).
func newTLS12Ciphers(p tls12Params) (client, server *recordCipher, err error) {
	s, ok := suites12[p.Suite]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedSuite, p.Suite)
	}
	if len(p.Master) != 48 || len(p.ClientRandom) != 32 || len(p.ServerRandom) != 32 {
		return nil, nil, fmt.Errorf("TLS 1.2 keys: master secret of %d bytes, randoms of %d and %d: want 48, 32, 32",
			len(p.Master), len(p.ClientRandom), len(p.ServerRandom))
	}
	ivLen := 0
	switch s.kind {
	case kindGCM12:
		ivLen = 4
	case kindChaCha12:
		ivLen = 12
	}
	seed := make([]byte, 0, 64)
	seed = append(append(seed, p.ServerRandom...), p.ClientRandom...)
	kb := prf12(s.prf, p.Master, "key expansion", seed, 2*s.macLen+2*s.keyLen+2*ivLen)
	next := func(n int) []byte { b := kb[:n:n]; kb = kb[n:]; return b }
	cMAC, sMAC := next(s.macLen), next(s.macLen)
	cKey, sKey := next(s.keyLen), next(s.keyLen)
	cIV, sIV := next(ivLen), next(ivLen)
	build := func(key, iv, macKey []byte) (*recordCipher, error) {
		c := &recordCipher{kind: s.kind, iv: iv}
		switch s.kind {
		case kindGCM12:
			c.aead, err = newGCM(key)
		case kindChaCha12:
			c.aead, err = chacha20poly1305.New(key)
		default:
			c.block, err = aes.NewCipher(key)
			c.mac = func() hash.Hash { return hmac.New(s.mac, macKey) }
			if p.EncryptThenMAC {
				c.kind = kindCBCEtM12
			}
		}
		return c, err
	}
	if client, err = build(cKey, cIV, cMAC); err != nil {
		return nil, nil, err
	}
	if server, err = build(sKey, sIV, sMAC); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// prf12 is TLS 1.2's PRF (RFC 5246 5): P_hash(secret, label + seed).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	mac := hmac.New(h, secret)
	out := make([]byte, 0, n+mac.Size())
	mac.Write(ls)
	a := mac.Sum(nil) // A(1)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}
