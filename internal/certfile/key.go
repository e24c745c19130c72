package certfile

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Key reads the first private key of a PEM file (PKCS#8, PKCS#1, SEC 1).
func Key(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted: decrypt it (openssl pkey -in KEY -out plain.key) or use --pfx")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: %T cannot sign", b.Type, key)
		}
		return signer, nil
	}
}

// Pair joins a chain (leaf first) and its key into what a TLS client
// presents, once it has checked that the key is the leaf's: a mismatch
// would only show as the server's refusal, far from the file at fault.
func Pair(chain []*x509.Certificate, key any) (*tls.Certificate, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the key (%T) cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("the private key does not match the certificate %s", chain[0].Subject)
	}
	tc := &tls.Certificate{PrivateKey: signer, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}
