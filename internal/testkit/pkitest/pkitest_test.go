package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

var (
	oidKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
)

func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	return slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oid) })
}

func pemDERs(data []byte) [][]byte {
	var ders [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return ders
		}
		ders = append(ders, b.Bytes)
	}
}

func TestKeyTypes(t *testing.T) {
	ca := NewCA(t, "key type CA")
	tests := []struct {
		name  string
		kt    KeyType
		check func(any) bool
	}{
		{"default is P-256", -1, func(k any) bool { p, ok := k.(*ecdsa.PublicKey); return ok && p.Curve == elliptic.P256() }},
		{"P-384", ECDSAP384, func(k any) bool { p, ok := k.(*ecdsa.PublicKey); return ok && p.Curve == elliptic.P384() }},
		{"RSA 2048", RSA2048, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 2048 }},
		{"Ed25519", Ed25519, func(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.kt >= 0 {
				opts = append(opts, WithKeyType(tt.kt))
			}
			c := ca.NewClient(t, "client", opts...)
			if !tt.check(c.Cert.PublicKey) {
				t.Fatalf("public key %T, want %s", c.Cert.PublicKey, tt.name)
			}
			if err := c.Cert.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatalf("not signed by CA: %v", err)
			}
			if _, err := tls.X509KeyPair(c.CertPEM(), c.KeyPEM()); err != nil {
				t.Fatalf("CertPEM and KeyPEM do not pair: %v", err)
			}
		})
	}
}

func TestUsageOptions(t *testing.T) {
	ca := NewCA(t, "usage CA")
	tests := []struct {
		name    string
		opts    []Option
		wantKU  x509.KeyUsage
		kuExt   bool
		wantEKU []x509.ExtKeyUsage
		ekuExt  bool
	}{
		{"client defaults to digitalSignature and clientAuth", nil,
			x509.KeyUsageDigitalSignature, true, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true},
		{"key usage 0 leaves the extension out", []Option{WithKeyUsage(0)},
			0, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true},
		{"explicit key usage keyEncipherment only", []Option{WithKeyUsage(x509.KeyUsageKeyEncipherment)},
			x509.KeyUsageKeyEncipherment, true, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true},
		{"explicit EKU serverAuth only", []Option{WithExtKeyUsage(x509.ExtKeyUsageServerAuth)},
			x509.KeyUsageDigitalSignature, true, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, true},
		{"EKU with no purposes keeps the default", []Option{WithExtKeyUsage()},
			x509.KeyUsageDigitalSignature, true, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, true},
		{"no EKU leaves the extension out", []Option{WithNoExtKeyUsage()},
			x509.KeyUsageDigitalSignature, true, nil, false},
		{"later EKU option wins over no EKU", []Option{WithNoExtKeyUsage(), WithExtKeyUsage(x509.ExtKeyUsageEmailProtection)},
			x509.KeyUsageDigitalSignature, true, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ca.NewClient(t, "client", tt.opts...).Cert
			if c.KeyUsage != tt.wantKU || hasExtension(c, oidKeyUsage) != tt.kuExt {
				t.Errorf("KeyUsage %v (extension %v), want %v (extension %v)", c.KeyUsage, hasExtension(c, oidKeyUsage), tt.wantKU, tt.kuExt)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.wantEKU) || hasExtension(c, oidExtKeyUsage) != tt.ekuExt {
				t.Errorf("ExtKeyUsage %v (extension %v), want %v (extension %v)", c.ExtKeyUsage, hasExtension(c, oidExtKeyUsage), tt.wantEKU, tt.ekuExt)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	before := time.Now()
	ca := NewCA(t, "defaults CA")
	srv := ca.NewServer(t, "srv.example")
	cli := ca.NewClient(t, "alice")

	if !ca.Cert.IsCA || ca.Parent != nil || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("root: IsCA %v, parent %v, KU %v", ca.Cert.IsCA, ca.Parent, ca.Cert.KeyUsage)
	}
	if err := ca.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("root not self-signed: %v", err)
	}
	if got := srv.Cert.DNSNames; !slices.Equal(got, []string{"srv.example", "localhost"}) {
		t.Errorf("server DNS SANs %v", got)
	}
	if len(srv.Cert.IPAddresses) != 1 || srv.Cert.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("server IP SANs %v", srv.Cert.IPAddresses)
	}
	if !slices.Equal(srv.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server EKU %v", srv.Cert.ExtKeyUsage)
	}
	if cli.Cert.Subject.String() != "CN=alice" || len(cli.Cert.DNSNames) != 0 {
		t.Errorf("client subject %q, DNS %v", cli.Cert.Subject, cli.Cert.DNSNames)
	}
	// Validity is truncated to seconds in the certificate.
	nb, na := cli.Cert.NotBefore, cli.Cert.NotAfter
	if nb.After(before.Add(-time.Hour+time.Second)) || nb.Before(before.Add(-time.Hour-time.Minute)) ||
		na.Before(before.Add(24*time.Hour-time.Second)) || na.After(before.Add(24*time.Hour+time.Minute)) {
		t.Errorf("validity %v .. %v, want now-1h .. now+24h", nb, na)
	}
	if cli.Cert.SerialNumber.Cmp(srv.Cert.SerialNumber) == 0 || cli.Cert.SerialNumber.Sign() <= 0 {
		t.Errorf("serials not distinct positive: %v %v", cli.Cert.SerialNumber, srv.Cert.SerialNumber)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("server does not verify for localhost: %v", err)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client does not verify for clientAuth: %v", err)
	}
}

func TestSubjectValidityDNS(t *testing.T) {
	ca := NewCA(t, "CA")
	nb := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	subj := pkix.Name{Country: []string{"DE"}, Organization: []string{"Example"}, CommonName: "bob"}
	c := ca.NewServer(t, "ignored", WithValidity(nb, na), WithSubject(subj), WithDNSNames("a.example", "b.example")).Cert
	if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) {
		t.Errorf("validity %v .. %v, want %v .. %v", c.NotBefore, c.NotAfter, nb, na)
	}
	if got, want := c.Subject.String(), "CN=bob,O=Example,C=DE"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if !slices.Equal(c.DNSNames, []string{"a.example", "b.example"}) {
		t.Errorf("DNS SANs %v", c.DNSNames)
	}
	if got := c.Issuer.String(); got != "CN=CA" {
		t.Errorf("issuer %q", got)
	}
}

func TestChainFilesAndTLS(t *testing.T) {
	root := NewCA(t, "root")
	inter := root.NewIntermediate(t, "intermediate")
	leaf := inter.NewClient(t, "leaf")

	chain := leaf.Chain()
	if len(chain) != 3 || chain[0] != leaf || chain[1] != inter || chain[2] != root {
		t.Fatalf("Chain() = %v", chain)
	}
	if err := inter.Cert.CheckSignatureFrom(root.Cert); err != nil || !inter.Cert.IsCA {
		t.Fatalf("intermediate: IsCA %v, signature %v", inter.Cert.IsCA, err)
	}

	dir := t.TempDir()
	certPath, keyPath := leaf.WriteFiles(t, dir, "leaf")
	data, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	ders := pemDERs(data)
	if len(ders) != 2 || string(ders[0]) != string(leaf.DER) || string(ders[1]) != string(inter.DER) {
		t.Errorf("%s holds %d certificates, want leaf then intermediate", certPath, len(ders))
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("files do not load as a key pair: %v", err)
	}

	bundle := filepath.Join(dir, "ca.pem")
	WritePEM(t, bundle, root, inter)
	data, _ = os.ReadFile(bundle)
	if ders := pemDERs(data); len(ders) != 2 || string(ders[0]) != string(root.DER) || string(ders[1]) != string(inter.DER) {
		t.Errorf("bundle holds %d certificates, want root then intermediate", len(ders))
	}

	tc := leaf.TLSCertificate()
	if len(tc.Certificate) != 2 || tc.Leaf != leaf.Cert || tc.PrivateKey != leaf.Key {
		t.Errorf("TLSCertificate: %d certificates, leaf %v", len(tc.Certificate), tc.Leaf == leaf.Cert)
	}
}

func TestManyCAs(t *testing.T) {
	cas := ManyCAs(t, 260)
	total := 0
	seen := map[string]bool{}
	for i, ca := range cas {
		n := len(ca.Cert.RawSubject)
		if n < 220 || n > 240 {
			t.Errorf("CA %d subject is %d bytes, want about 230", i+1, n)
		}
		if want := fmt.Sprintf("certlens test CA %03d", i+1); ca.Cert.Subject.CommonName != want {
			t.Errorf("CA %d CN %q, want %q", i+1, ca.Cert.Subject.CommonName, want)
		}
		if seen[string(ca.Cert.RawSubject)] {
			t.Errorf("CA %d subject repeated", i+1)
		}
		seen[string(ca.Cert.RawSubject)] = true
		total += 2 + n
	}
	// The size that makes the issuer list span four TLS records.
	if total < 58000 || total > 62000 {
		t.Errorf("issuer list of 260 CAs is %d bytes, want about 60 KB", total)
	}
	again := ManyCAs(t, 1)[0]
	if string(again.Cert.RawSubject) != string(cas[0].Cert.RawSubject) {
		t.Errorf("names are not deterministic")
	}
}

func TestPFXRoundTrip(t *testing.T) {
	root := NewCA(t, "pfx root")
	leaf := root.NewIntermediate(t, "pfx issuing CA").NewClient(t, "pfx user")
	key, cert, cas, err := pkcs12.DecodeChain(leaf.PFX(t, "s3cret"), "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(leaf.Cert) || len(cas) != 1 || !cas[0].Equal(leaf.Parent.Cert) {
		t.Errorf("chain: leaf %v, %d CAs", cert.Subject, len(cas))
	}
	if pub, ok := key.(interface{ Public() crypto.PublicKey }); !ok || !leaf.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub.Public()) {
		t.Error("the key is not the certificate's")
	}
	if _, _, _, err := pkcs12.DecodeChain(leaf.PFX(t, "s3cret"), "wrong"); err == nil {
		t.Error("a wrong password decoded")
	}
}
