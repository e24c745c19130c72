package rules

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// ParseCertFile reads the certificates of an --expect-cert file's contents:
// PEM (possibly a chain, leaf first), DER, or PKCS#12 without a password.
// Only public certificates are read; a private key in the file is ignored.
func ParseCertFile(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		var certs []*x509.Certificate
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		}
		if len(certs) == 0 {
			return nil, errors.New("PEM file holds no CERTIFICATE block")
		}
		return certs, nil
	}
	if c, err := x509.ParseCertificate(data); err == nil {
		return []*x509.Certificate{c}, nil
	}
	_, leaf, cas, err := pkcs12.DecodeChain(data, "")
	if err != nil {
		if certs, terr := pkcs12.DecodeTrustStore(data, ""); terr == nil && len(certs) > 0 {
			return certs, nil
		}
		return nil, fmt.Errorf("neither PEM, DER nor a password-less PKCS#12 file: %w", err)
	}
	return append([]*x509.Certificate{leaf}, cas...), nil
}
