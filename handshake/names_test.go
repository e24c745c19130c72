package handshake

import (
	"crypto/tls"
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
