package handshake

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// The cached suite names say what crypto/tls says, for every code point.
func TestCipherSuiteNamesMatchCryptoTLS(t *testing.T) {
	for id := range 1 << 16 {
		c := CipherSuite(id)
		if isGREASE(uint16(id)) {
			continue
		}
		if got, want := c.String(), tls.CipherSuiteName(uint16(id)); got != want {
			t.Fatalf("%#04x: %q, crypto/tls says %q", id, got, want)
		}
	}
}

// The named schemes and certificate types are the registries' (and
// crypto/tls's) code points.
func TestNamedConstantsAreTheRegistries(t *testing.T) {
	for _, tc := range []struct {
		got  fmt.Stringer
		want string
		tls  tls.SignatureScheme
	}{
		{ECDSAWithP256AndSHA256, "ecdsa_secp256r1_sha256", tls.ECDSAWithP256AndSHA256},
		{ECDSAWithP384AndSHA384, "ecdsa_secp384r1_sha384", tls.ECDSAWithP384AndSHA384},
		{ECDSAWithP521AndSHA512, "ecdsa_secp521r1_sha512", tls.ECDSAWithP521AndSHA512},
		{PSSWithSHA256, "rsa_pss_rsae_sha256", tls.PSSWithSHA256},
		{PSSWithSHA384, "rsa_pss_rsae_sha384", tls.PSSWithSHA384},
		{PSSWithSHA512, "rsa_pss_rsae_sha512", tls.PSSWithSHA512},
		{Ed25519, "ed25519", tls.Ed25519},
		{CertTypeRSASign, "rsa_sign", 0},
		{CertTypeECDSASign, "ecdsa_sign", 0},
	} {
		if tc.got.String() != tc.want {
			t.Errorf("%s, want %s", tc.got, tc.want)
		}
		if s, ok := tc.got.(SignatureScheme); ok && uint16(s) != uint16(tc.tls) {
			t.Errorf("%s is %#04x, crypto/tls's %#04x", s, uint16(s), uint16(tc.tls))
		}
	}
	if SignatureScheme(tls.PKCS1WithSHA256).Signature12() != SignatureRSA || SignatureScheme(tls.ECDSAWithSHA1).Signature12() != SignatureECDSA {
		t.Error("Signature12 does not read the low byte of a TLS 1.2 SignatureAndHashAlgorithm")
	}
}
