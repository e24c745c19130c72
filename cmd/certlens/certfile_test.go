package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestCertificateFileMistakes gives every flag and key that takes a
// certificate file the wrong kind of file: each answer is one line that
// names the flag or key and the path, says what the file is not and what
// it should be, exit 2, and never the ASN.1 parser's words.
func TestCertificateFileMistakes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := pkitest.NewCA(t, "certlens file CA")
	alice := ca.NewClient(t, "alice")
	garbage := write("garbage.bin", []byte{0x82, 0x01, 0xff, 0x00, 0x30, 0x82, 0x01, 0x00, 0x17})
	text := write("notes.txt", []byte("the certificate is on the share\n"))
	keyPEM := write("alice.key", alice.KeyPEM())
	der := write("alice.cer", alice.DER)
	pfx := write("alice.pfx", alice.PFX(t, "s3cret"))

	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	intercept := func(env ...string) []string {
		return append([]string{"CERTLENS_INTERCEPT_CA_DIR=" + filepath.Join(dir, "ca")}, env...)
	}
	serveIntercept := []string{"serve", "--mode", "intercept", "--listen", listen, "--admin-listen="}
	const forms = "give the certificate as PEM (-----BEGIN CERTIFICATE-----), DER (.cer, .der) or PKCS#12 without a password (.pfx, .p12)"
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"expect-cert of random bytes", nil, []string{"serve", "--expect-cert", garbage},
			"certlens: config: expect_certs: " + garbage + ": not a certificate: neither PEM, DER nor PKCS#12; " + forms},
		{"expect-cert of text", nil, []string{"analyze", "--expect-cert", text, "trace.pcap"},
			"config: expect_certs: " + text + ": not a certificate: a text file without a -----BEGIN CERTIFICATE----- line: neither PEM, DER nor PKCS#12; " + forms},
		{"expect-cert of a key", nil, []string{"serve", "--expect-cert", keyPEM},
			"config: expect_certs: " + keyPEM + ": a PEM file without a CERTIFICATE block (it holds PRIVATE KEY)"},
		{"expect-cert of a PKCS#12 with a password", []string{"CERTLENS_EXPECT_CERTS=" + pfx}, []string{"serve"},
			"config: expect_certs: " + pfx + ": a PKCS#12 file with a password, which certlens cannot open here; export the certificate without one, or as PEM (openssl pkcs12 -in FILE -nokeys -out cert.pem)"},
		{"probe --cert of random bytes", nil, []string{"probe", "--cert", garbage, "example.test"},
			"certlens: --cert " + garbage + ": not a certificate: neither PEM, DER nor PKCS#12; " + forms},
		{"probe --ca-file of text", nil, []string{"probe", "--ca-file", text, "example.test"},
			"certlens: --ca-file " + text + ": not a certificate: a text file"},
		{"probe --pfx of random bytes", nil, []string{"probe", "--pfx", garbage, "example.test"},
			"certlens: --pfx " + garbage + ": not a PKCS#12 file: neither PEM, DER nor PKCS#12; give PKCS#12 (.pfx, .p12) here, or a PEM or DER certificate with --cert (and its key with --key)"},
		{"probe --pfx of a DER certificate", nil, []string{"probe", "--pfx", der, "example.test"},
			"--pfx " + der + ": not a PKCS#12 file: a DER certificate, without its key; give PKCS#12"},
		{"probe --pfx with a password and no variable", nil, []string{"probe", "--pfx", pfx, "example.test"},
			"certlens: --pfx " + pfx + " has a password: name the environment variable that holds it with --pfx-password-env"},
		{"probe --pfx with the wrong password", []string{"PW=wrong"}, []string{"probe", "--pfx", pfx, "--pfx-password-env", "PW", "example.test"},
			"certlens: --pfx " + pfx + ": the password in PW does not open it"},
		{"client certificate of random bytes", intercept("CERTLENS_INTERCEPT_CLIENT_CERTS=*=" + garbage), serveIntercept,
			"certlens: config: intercept.client_certs: " + garbage + ": not a certificate with its key: neither PEM, DER nor PKCS#12; give PEM holding the certificate and its key, or PKCS#12 (.pfx, .p12)"},
		{"client certificate without its key", intercept("CERTLENS_INTERCEPT_CLIENT_CERTS=*=" + der), serveIntercept,
			"config: intercept.client_certs: " + der + ": not a certificate with its key: a DER certificate, without its key"},
		{"client PKCS#12 without the password", intercept("CERTLENS_INTERCEPT_CLIENT_CERTS=*=" + pfx), serveIntercept,
			"config: intercept.client_certs: " + pfx + ": a PKCS#12 file with a password: put it in CERTLENS_PFX_PASSWORD"},
		{"client PKCS#12 with the wrong password", intercept("CERTLENS_INTERCEPT_CLIENT_CERTS=*="+pfx, "CERTLENS_PFX_PASSWORD=wrong"), serveIntercept,
			"config: intercept.client_certs: " + pfx + ": the password in CERTLENS_PFX_PASSWORD does not open this PKCS#12 file"},
		{"upstream root of text", intercept("CERTLENS_INTERCEPT_UPSTREAM_ROOTS=" + text), serveIntercept,
			"config: intercept.upstream_roots: " + text + ": not a certificate: a text file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantExit2(t, tc.env, tc.args, tc.want)
			if _, stderr, _ := run(t, tc.env, tc.args...); strings.Contains(stderr, "asn1") || strings.Contains(stderr, "pkcs12:") {
				t.Errorf("stderr has the parser's words: %q", stderr)
			}
		})
	}
}
