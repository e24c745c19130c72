package certfile

import (
	"crypto/x509"
	"fmt"

	"github.com/certlens/certlens/rules"
)

// capiCert is one certificate of a CryptoAPI system store as crypt32
// gives it.
type capiCert struct {
	DER          []byte
	FriendlyName string
	// ProvInfo is the CERT_KEY_PROV_INFO_PROP_ID property: where the
	// private key is. nil when the certificate has none linked, which is
	// what Chromium on Windows drops it for.
	ProvInfo *capiProvInfo
}

// capiProvInfo is a CRYPT_KEY_PROV_INFO's fields that matter here.
type capiProvInfo struct {
	Container, Provider string
	ProvType            uint32 // 0 for a CNG key storage provider
	KeySpec             uint32
}

// KeySpec values (wincrypt.h, ncrypt.h).
const (
	atKeyExchange    = 1
	atSignature      = 2
	certNCryptSpec   = 0xFFFFFFFF // CERT_NCRYPT_KEY_SPEC: a CNG key
	capiPersonal     = "My"
	capiIntermediate = "CA"
	capiRoot         = "Root"
)

// capiSource lists the certificates of a CryptoAPI system store by name
// ("My", "CA", "Root"): crypt32 on Windows, a fake in tests.
type capiSource interface {
	certificates(store string) ([]capiCert, error)
}

// readCAPI reads the personal store with what crypt32 says of each key,
// and the CA and Root stores as the certificates chains are built from.
func readCAPI(spec StoreSpec, src capiSource) (*Store, error) {
	s := &Store{Spec: spec}
	mine, err := src.certificates(capiPersonal)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", spec, err)
	}
	for _, c := range mine {
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			continue // crypt32 keeps what Go cannot parse; a browser could not use it either
		}
		name := c.FriendlyName
		if name == "" {
			name = cert.Subject.CommonName
		}
		s.Certs = append(s.Certs, StoreCert{Name: name, Cert: cert, Key: capiKey(c.ProvInfo)})
	}
	for _, store := range []string{capiIntermediate, capiRoot} {
		certs, err := src.certificates(store)
		if err != nil {
			return nil, fmt.Errorf("store %s: the %s store: %w", spec, store, err)
		}
		for _, c := range certs {
			if cert, err := x509.ParseCertificate(c.DER); err == nil {
				s.Pool = append(s.Pool, cert)
			}
		}
	}
	return s, nil
}

// capiKey says what a CRYPT_KEY_PROV_INFO tells of the key.
func capiKey(p *capiProvInfo) rules.Key {
	if p == nil {
		return rules.Key{State: rules.KeyMissing}
	}
	k := rules.Key{State: rules.KeyPresent, Provider: p.Provider}
	switch {
	case p.KeySpec == certNCryptSpec || p.ProvType == 0:
		k.Spec = rules.SpecCNG
	case p.KeySpec == atKeyExchange:
		k.Spec = rules.SpecKeyExchange
	case p.KeySpec == atSignature:
		k.Spec = rules.SpecSignature
	default:
		k.Spec = fmt.Sprintf("KeySpec %d", p.KeySpec)
	}
	return k
}
