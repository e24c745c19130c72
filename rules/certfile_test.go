package rules

import (
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlens/certlens/internal/pkitest"
)

func TestParseCertFile(t *testing.T) {
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
		{"PKCS#12 with a password", p12pw, 0, "password-less PKCS#12"},
		{"PEM without certificates", leaf.KeyPEM(), 0, "no CERTIFICATE block"},
		{"garbage", []byte("hello"), 0, "neither PEM, DER"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := ParseCertFile(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(certs) != tc.want || !certs[0].Equal(leaf.Cert) {
				t.Fatalf("got %d certs, err %v", len(certs), err)
			}
		})
	}
}
