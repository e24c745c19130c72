package peertest

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// NewNSSDB creates an empty NSS database (no password) in home/.pki/nssdb,
// where Chromium on Linux looks for the user's certificates, and returns
// its directory.
func NewNSSDB(tb testing.TB, home string) string {
	tb.Helper()
	dir := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatalf("peertest: %v", err)
	}
	runTool(tb, Require(tb, "certutil"), "-N", "-d", "sql:"+dir, "--empty-password")
	return dir
}

// NSSImportIdentity imports c with its private key, under nickname, and
// the issuers given (none, or some of its chain: a test leaves one out to
// make a store whose chain has a gap) as PKCS#12 through pk12util, as a
// user imports a .p12 into Chromium.
func NSSImportIdentity(tb testing.TB, dir string, c *pkitest.Cert, nickname string, issuers ...*pkitest.Cert) {
	tb.Helper()
	const password = "certlens"
	var cas []*x509.Certificate
	for _, x := range issuers {
		cas = append(cas, x.Cert)
	}
	pfx, err := pkcs12.Modern2023.Encode(c.Key, c.Cert, cas, password)
	if err != nil {
		tb.Fatalf("peertest: PKCS#12 for %s: %v", c.Cert.Subject, err)
	}
	// Importing the certificate first names it: pk12util keeps an existing
	// certificate's nickname and links the key to it.
	NSSImportCert(tb, dir, c, nickname, ",,")
	path := filepath.Join(tb.TempDir(), "identity.p12")
	if err := os.WriteFile(path, pfx, 0o600); err != nil {
		tb.Fatal(err)
	}
	runTool(tb, Require(tb, "pk12util"), "-i", path, "-d", "sql:"+dir, "-W", password)
}

// NSSImportCert imports c alone (no key) under nickname with NSS trust
// flags (",," none; "C,," a CA trusted for TLS servers).
func NSSImportCert(tb testing.TB, dir string, c *pkitest.Cert, nickname, trust string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "cert.pem")
	pkitest.WritePEM(tb, path, c)
	runTool(tb, Require(tb, "certutil"), "-A", "-d", "sql:"+dir, "-n", nickname, "-t", trust, "-i", path)
}
