package certfile

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

func TestCertificates(t *testing.T) {
	root := pkitest.NewCA(t, "certlens file root")
	inter := root.NewIntermediate(t, "certlens file issuing CA")
	leaf := inter.NewClient(t, "alice")
	pemChain := append(append(append([]byte(nil), leaf.CertPEM()...), leaf.KeyPEM()...), inter.CertPEM()...)
	p12, err := pkcs12.Modern.WithRand(rand.Reader).Encode(leaf.Key, leaf.Cert, []*x509.Certificate{inter.Cert}, "")
	if err != nil {
		t.Fatal(err)
	}
	p12pw, err := pkcs12.Modern.WithRand(rand.Reader).Encode(leaf.Key, leaf.Cert, nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		data    []byte
		want    int
		wantErr string
	}{
		{"PEM chain with a key in between", pemChain, 2, ""},
		{"DER", leaf.DER, 1, ""},
		{"PKCS#12 without password", p12, 2, ""},
		{"PKCS#12 with a password", p12pw, 0, "a PKCS#12 file with a password, which certlens cannot open here; export the certificate without one, or as PEM"},
		{"PEM without certificates", leaf.KeyPEM(), 0, "a PEM file without a CERTIFICATE block (it holds PRIVATE KEY)"},
		{"PEM cut short", leaf.CertPEM()[:40], 0, "a -----BEGIN line but no PEM block that decodes"},
		{"damaged PEM certificate", pemBlock("CERTIFICATE", leaf.DER[:100]), 0, "PEM CERTIFICATE block 1 is damaged"},
		{"text", []byte("hello"), 0, "not a certificate: a text file without a -----BEGIN CERTIFICATE----- line: neither PEM, DER nor PKCS#12; give the certificate as PEM"},
		{"empty", nil, 0, "not a certificate: the file is empty"},
		{"binary garbage", []byte{0x82, 0x01, 0xff, 0x00, 0x30}, 0, "not a certificate: neither PEM, DER nor PKCS#12; give the certificate as PEM (-----BEGIN CERTIFICATE-----), DER (.cer, .der) or PKCS#12 without a password (.pfx, .p12)"},
		{"DER of a key", keyDER(t, leaf), 0, "not a certificate: DER data, but neither an X.509 certificate nor PKCS#12"},
		{"DER cut short", leaf.DER[:len(leaf.DER)/2], 0, "not a certificate: DER data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := Certificates(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "asn1") || strings.Contains(err.Error(), "\n") {
					t.Errorf("the parser's words, or more than one line: %q", err)
				}
				return
			}
			if err != nil || len(certs) != tc.want || !certs[0].Equal(leaf.Cert) {
				t.Fatalf("got %d certs, err %v", len(certs), err)
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyDER(t *testing.T, c *pkitest.Cert) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPKCS12(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens p12 CA")
	leaf := ca.NewClient(t, "alice")
	p12, err := pkcs12.Modern.WithRand(rand.Reader).Encode(leaf.Key, leaf.Cert, []*x509.Certificate{ca.Cert}, "secret")
	if err != nil {
		t.Fatal(err)
	}
	key, chain, err := PKCS12(p12, "secret")
	if err != nil || key == nil || len(chain) != 2 || !chain[0].Equal(leaf.Cert) {
		t.Fatalf("right password: key %T, %d certs, err %v", key, len(chain), err)
	}
	for _, pw := range []string{"", "wrong"} {
		if _, _, err := PKCS12(p12, pw); !errors.Is(err, ErrPKCS12Password) {
			t.Errorf("password %q: err %v, want ErrPKCS12Password", pw, err)
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		what string
	}{
		{"PEM", leaf.CertPEM(), "a PEM file"},
		{"DER certificate", leaf.DER, "a DER certificate, without its key"},
		{"text", []byte("hello"), "a text file without a -----BEGIN CERTIFICATE----- line"},
	} {
		_, _, err := PKCS12(tc.data, "")
		var notP12 *NotPKCS12Error
		if !errors.As(err, &notP12) || !strings.HasPrefix(notP12.What, tc.what) {
			t.Errorf("%s: err %v, want a NotPKCS12Error saying %q", tc.name, err, tc.what)
		}
	}
}
