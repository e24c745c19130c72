// Package pkitest mints X.509 certificates and keys for tests at run time, so
// no private key is ever committed. Every certlens test that needs a CA, an
// intermediate, a server or a client certificate gets it here, with whatever
// key type, Key Usage, Extended Key Usage or validity the case needs.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// KeyType selects the algorithm of a certificate's key.
type KeyType int

// The zero value is ECDSA P-256: it is what most tests want and the cheapest
// to generate.
const (
	ECDSAP256 KeyType = iota
	ECDSAP384
	RSA2048
	Ed25519
)

func (k KeyType) String() string {
	switch k {
	case ECDSAP256:
		return "ECDSA P-256"
	case ECDSAP384:
		return "ECDSA P-384"
	case RSA2048:
		return "RSA 2048"
	case Ed25519:
		return "Ed25519"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

type options struct {
	keyType     KeyType
	keyUsage    x509.KeyUsage
	keyUsageSet bool
	extKeyUsage []x509.ExtKeyUsage
	ekuSet      bool
	noEKU       bool
	notBefore   time.Time
	notAfter    time.Time
	subject     *pkix.Name
	dnsNames    []string
	dnsSet      bool
}

// Option changes one property of a certificate from the default for its kind.
type Option func(*options)

// WithKeyType sets the key algorithm.
func WithKeyType(k KeyType) Option { return func(o *options) { o.keyType = k } }

// WithKeyUsage sets the Key Usage bits; 0 leaves the extension out, which is
// a case of its own for browsers (FACTS.md: absent KU is acceptable).
func WithKeyUsage(ku x509.KeyUsage) Option {
	return func(o *options) { o.keyUsage, o.keyUsageSet = ku, true }
}

// WithExtKeyUsage sets the EKU purposes. Called with none, the kind's default
// stays; use WithNoExtKeyUsage to leave the extension out.
func WithExtKeyUsage(eku ...x509.ExtKeyUsage) Option {
	return func(o *options) {
		if len(eku) == 0 {
			return
		}
		o.extKeyUsage, o.ekuSet, o.noEKU = append([]x509.ExtKeyUsage(nil), eku...), true, false
	}
}

// WithNoExtKeyUsage leaves the EKU extension out.
func WithNoExtKeyUsage() Option {
	return func(o *options) { o.extKeyUsage, o.ekuSet, o.noEKU = nil, true, true }
}

// WithValidity sets NotBefore and NotAfter, e.g. to mint expired or
// not-yet-valid certificates.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// WithSubject replaces the CN-only subject; the cn argument is then ignored
// for the subject (it still names server DNS SANs).
func WithSubject(name pkix.Name) Option {
	return func(o *options) { n := name; o.subject = &n }
}

// WithDNSNames replaces the kind's default DNS SANs.
func WithDNSNames(names ...string) Option {
	return func(o *options) { o.dnsNames, o.dnsSet = append([]string(nil), names...), true }
}

// Cert is a certificate with its key and the certificate that issued it.
type Cert struct {
	Cert   *x509.Certificate
	DER    []byte
	Key    crypto.Signer
	Parent *Cert // nil for a root
}

type kind int

const (
	kindRoot kind = iota
	kindIntermediate
	kindServer
	kindClient
)

// NewCA mints a self-signed root CA.
func NewCA(tb testing.TB, cn string, opts ...Option) *Cert {
	tb.Helper()
	return issue(tb, nil, kindRoot, cn, opts)
}

// NewIntermediate mints a CA certificate issued by c.
func (c *Cert) NewIntermediate(tb testing.TB, cn string, opts ...Option) *Cert {
	tb.Helper()
	return issue(tb, c, kindIntermediate, cn, opts)
}

// NewServer mints a serverAuth certificate issued by c whose SANs (DNS cn and
// "localhost", IP 127.0.0.1) let local clients verify it by name or address.
func (c *Cert) NewServer(tb testing.TB, cn string, opts ...Option) *Cert {
	tb.Helper()
	return issue(tb, c, kindServer, cn, opts)
}

// NewClient mints a client certificate issued by c: KU digitalSignature and
// EKU clientAuth unless the options say otherwise, i.e. what IE/Edge and
// Chromium accept by default.
func (c *Cert) NewClient(tb testing.TB, cn string, opts ...Option) *Cert {
	tb.Helper()
	return issue(tb, c, kindClient, cn, opts)
}

func issue(tb testing.TB, parent *Cert, k kind, cn string, opts []Option) *Cert {
	tb.Helper()
	now := time.Now()
	o := options{notBefore: now.Add(-time.Hour), notAfter: now.Add(24 * time.Hour)}
	for _, opt := range opts {
		opt(&o)
	}
	key, err := newKey(o.keyType)
	if err != nil {
		tb.Fatalf("pkitest: generate %v key for %q: %v", o.keyType, cn, err)
	}
	serial, err := randomSerial()
	if err != nil {
		tb.Fatalf("pkitest: serial for %q: %v", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
	}
	if o.subject != nil {
		tmpl.Subject = *o.subject
	}
	switch k {
	case kindRoot, kindIntermediate:
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	case kindServer:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if o.keyType == RSA2048 {
			// TLS 1.2 RSA key exchange needs it; harmless otherwise.
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
		if cn != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	case kindClient:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if o.keyUsageSet {
		tmpl.KeyUsage = o.keyUsage
	}
	if o.ekuSet {
		tmpl.ExtKeyUsage = o.extKeyUsage
	}
	if o.dnsSet {
		tmpl.DNSNames = o.dnsNames
	}

	signer, issuerTmpl := key, tmpl
	if parent != nil {
		signer, issuerTmpl = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerTmpl, key.Public(), signer)
	if err != nil {
		tb.Fatalf("pkitest: create certificate %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("pkitest: parse certificate %q: %v", cn, err)
	}
	return &Cert{Cert: cert, DER: der, Key: key, Parent: parent}
}

func newKey(k KeyType) (crypto.Signer, error) {
	switch k {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown key type %v", k)
}

// randomSerial returns a positive 127-bit serial: RFC 5280 wants at most 20
// octets and positive, and random serials keep re-minted certificates apart.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// Chain returns c, its issuer, and so on up to the root.
func (c *Cert) Chain() []*Cert {
	var chain []*Cert
	for x := c; x != nil; x = x.Parent {
		chain = append(chain, x)
	}
	return chain
}

// sentChain is what a peer presents: the chain without its self-signed root.
func (c *Cert) sentChain() []*Cert {
	chain := c.Chain()
	if len(chain) > 1 {
		chain = chain[:len(chain)-1]
	}
	return chain
}

// CertPEM returns c's certificate alone as PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM returns c's private key as PKCS#8 PEM, which OpenSSL, curl, nginx
// and Go all read whatever the algorithm.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		// Only reachable with a key type newKey does not make.
		panic(fmt.Sprintf("pkitest: marshal PKCS#8 key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes dir/base.crt (c then its intermediates, not the root, as
// a server or client presents them) and dir/base.key (mode 0600).
func (c *Cert) WriteFiles(tb testing.TB, dir, base string) (certPath, keyPath string) {
	tb.Helper()
	certPath = filepath.Join(dir, base+".crt")
	keyPath = filepath.Join(dir, base+".key")
	WritePEM(tb, certPath, c.sentChain()...)
	if err := os.WriteFile(keyPath, c.KeyPEM(), 0o600); err != nil {
		tb.Fatalf("pkitest: write key: %v", err)
	}
	return certPath, keyPath
}

// WritePEM writes the certificates (each alone, no chain) to path, in order,
// e.g. a CAfile whose order is the order of the issuer list a server sends.
func WritePEM(tb testing.TB, path string, certs ...*Cert) {
	tb.Helper()
	var buf []byte
	for _, c := range certs {
		buf = append(buf, c.CertPEM()...)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.Fatalf("pkitest: write %s: %v", path, err)
	}
}

// TLSCertificate returns c for crypto/tls, with its chain but not the root.
func (c *Cert) TLSCertificate() tls.Certificate {
	var tc tls.Certificate
	for _, x := range c.sentChain() {
		tc.Certificate = append(tc.Certificate, x.DER)
	}
	tc.PrivateKey = c.Key
	tc.Leaf = c.Cert
	return tc
}

// ManyCAs mints n root CAs with long subjects (C, ST, L, O, OU, CN; about
// 230 bytes of DER each), the shape of a Windows Trusted Root store that
// makes IIS send an oversized issuer list: 260 of them make about 60 KB.
// Names are deterministic ("certlens test CA 001", ...) so lists compare
// across runs; keys are P-256 because hundreds of them must stay cheap.
func ManyCAs(tb testing.TB, n int) []*Cert {
	tb.Helper()
	cas := make([]*Cert, 0, n)
	for i := 1; i <= n; i++ {
		cas = append(cas, NewCA(tb, "", WithSubject(manyCASubject(i))))
	}
	return cas
}

func manyCASubject(i int) pkix.Name {
	return pkix.Name{
		Country:            []string{"US"},
		Province:           []string{"Commonwealth of Massachusetts"},
		Locality:           []string{"Cambridge, Middlesex Co"},
		Organization:       []string{fmt.Sprintf("certlens Interoperability Test Authority %03d Inc", i)},
		OrganizationalUnit: []string{"Client Certificate Issuer List Size Test"},
		CommonName:         fmt.Sprintf("certlens test CA %03d", i),
	}
}

// IssuerListSize is the certificate_authorities length of a CertificateRequest
// naming cas: each subject with its 2-byte length (Wireshark's dnames_len).
func IssuerListSize(cas []*Cert) int {
	n := 0
	for _, ca := range cas {
		n += 2 + len(ca.Cert.RawSubject)
	}
	return n
}

// PFX returns c with its key and its chain (not the root) as a PKCS#12
// file encrypted with password, the way Windows exports a client
// certificate (.pfx) for a user to import.
func (c *Cert) PFX(tb testing.TB, password string) []byte {
	tb.Helper()
	var cas []*x509.Certificate
	for _, x := range c.sentChain()[1:] {
		cas = append(cas, x.Cert)
	}
	data, err := pkcs12.Modern.Encode(c.Key, c.Cert, cas, password)
	if err != nil {
		tb.Fatalf("pkitest: PKCS#12 of %s: %v", c.Cert.Subject, err)
	}
	return data
}
