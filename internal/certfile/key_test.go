package certfile

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

func TestRead(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens read CA")
	alice := ca.NewClient(t, "alice")
	dir := t.TempDir()
	good := filepath.Join(dir, "alice.pem")
	pkitest.WritePEM(t, good, alice, ca)
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("on the share\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	certs, data, err := Read(good)
	if err != nil || len(certs) != 2 || !certs[0].Equal(alice.Cert) || !certs[1].Equal(ca.Cert) || len(data) == 0 {
		t.Fatalf("chain file: %d certs, %d bytes, err %v; want alice then her CA", len(certs), len(data), err)
	}

	_, _, err = Read(text)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != text || !strings.HasPrefix(err.Error(), text+": not a certificate: a text file") {
		t.Errorf("text file: err %v, want a *FileError naming the path, then what the file is not", err)
	}

	_, _, err = Read(filepath.Join(dir, "missing.pem"))
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &fe) {
		t.Errorf("missing file: err %v, want the system's, not a *FileError", err)
	}
}

func TestKeyAndPair(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens key CA")
	for _, kt := range []pkitest.KeyType{pkitest.ECDSAP256, pkitest.RSA2048, pkitest.Ed25519} {
		t.Run(kt.String(), func(t *testing.T) {
			alice := ca.NewClient(t, "alice", pkitest.WithKeyType(kt))
			// The key after the certificate, as one PEM file holds both.
			key, err := Key(append(alice.CertPEM(), alice.KeyPEM()...))
			if err != nil {
				t.Fatal(err)
			}
			tc, err := Pair([]*x509.Certificate{alice.Cert, ca.Cert}, key)
			if err != nil || len(tc.Certificate) != 2 || tc.Leaf != alice.Cert ||
				!alice.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.PrivateKey.(crypto.Signer).Public()) {
				t.Fatalf("pair: %+v, err %v", tc, err)
			}
		})
	}

	alice, bob := ca.NewClient(t, "alice"), ca.NewClient(t, "bob")
	if _, err := Pair([]*x509.Certificate{alice.Cert}, bob.Key); err == nil || !strings.Contains(err.Error(), "the private key does not match the certificate CN=alice") {
		t.Errorf("bob's key for alice: err %v", err)
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"no key", "no PEM private key", alice.CertPEM()},
		{"encrypted", "the key is encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30}})},
		{"damaged", "PRIVATE KEY: ", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02}})},
	} {
		if _, err := Key(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
