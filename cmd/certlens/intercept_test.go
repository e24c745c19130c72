package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestCAInitExport: the commands a user runs before intercept mode.
func TestCAInitExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	out, stderr, code := run(t, nil, "ca", "init", "--dir", dir)
	if code != 0 || !strings.Contains(out, "sha256:") {
		t.Fatalf("ca init: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := run(t, nil, "ca", "init", "--dir", dir); code == 0 || !strings.Contains(stderr, "--force") {
		t.Errorf("second ca init: exit %d, %q", code, stderr)
	}
	pemOut, _, code := run(t, nil, "ca", "export", "--dir", dir)
	b, _ := pem.Decode([]byte(pemOut))
	if code != 0 || b == nil {
		t.Fatalf("ca export: exit %d %q", code, pemOut)
	}
	der, _, code := run(t, []string{"CERTLENS_INTERCEPT_CA_DIR=" + dir}, "ca", "export", "--der")
	if code != 0 || der != string(b.Bytes) {
		t.Errorf("ca export --der (dir from the environment): exit %d, %d bytes, PEM has %d", code, len(der), len(b.Bytes))
	}
	if c, err := x509.ParseCertificate(b.Bytes); err != nil || !c.IsCA {
		t.Errorf("exported certificate: %v", err)
	}
	if _, stderr, code := run(t, nil, "ca", "export", "--dir", t.TempDir()); code == 0 || !strings.Contains(stderr, "certlens ca init") {
		t.Errorf("export without a CA: exit %d %q", code, stderr)
	}
}

// TestServeIntercept: serve --mode intercept creates its CA, says where,
// and curl trusting the exported root gets through with the events and a
// key log of both sides.
func TestServeIntercept(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	serverCA := pkitest.NewCA(t, "certlens cli intercept server CA")
	dir := t.TempDir()
	// DER, as Windows exports a root: upstream_roots takes it as --ca-file does.
	roots := filepath.Join(dir, "server-ca.cer")
	if err := os.WriteFile(roots, serverCA.Cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: serverCA.NewServer(t, "127.0.0.1"), ClientCAs: []*pkitest.Cert{serverCA}, Verify: 1, TLS12: true, WWW: true,
	})
	_, port, _ := strings.Cut(addr, ":")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	keylog := filepath.Join(dir, "keys.log")
	cfg := filepath.Join(dir, "certlens.yaml")
	caDir := filepath.Join(dir, "ca")
	if err := os.WriteFile(cfg, []byte("intercept:\n  ca_dir: "+caDir+"\n  upstream_roots: ["+roots+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp := startServe(t, "serve", "--config", cfg, "--mode", "intercept", "--listen", listen, "--admin-listen=", "--allow-ports", port, "--keylog", keylog)
	created := sp.next("intercept CA created: import it into the browser's trusted roots (certlens ca export)")
	if created["path"] != filepath.Join(caDir, "ca.crt") || len(created["sha256"].(string)) != 95 {
		t.Errorf("CA event %v", created)
	}
	sp.next("listening")
	exported := filepath.Join(dir, "exported.pem")
	pemOut, _, _ := run(t, nil, "ca", "export", "--dir", caDir)
	if err := os.WriteFile(exported, []byte(pemOut), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(curlBin, "-sS", "--noproxy", "", "-x", "http://"+listen, "--cacert", exported, "https://"+addr+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "s_server") {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	hs := sp.nextHandshake()
	// s_server only asks (-verify): the 200 that answers the empty
	// certificate shows the site accepts requests without one.
	if hs.Mode != "intercept" || hs.HTTPStatus != 200 || hs.Verdict != "ok" || hs.TLSVersion != "TLS 1.2" ||
		!slices.Contains(findingIDs(hs), "client-cert-not-sent") {
		t.Errorf("handshake event %+v", hs)
	}
	data, _ := os.ReadFile(keylog)
	if n := strings.Count(string(data), "CLIENT_HANDSHAKE_TRAFFIC_SECRET") + strings.Count(string(data), "CLIENT_RANDOM"); n < 2 {
		t.Errorf("key log has %d handshakes, want both sides':\n%s", n, data)
	}
	if st, err := os.Stat(keylog); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key log mode: %v", err)
	}
}

func TestLoadClientCert(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens client cert file CA")
	alice := ca.NewIntermediate(t, "certlens issuing CA").NewClient(t, "alice")
	dir := t.TempDir()
	both := filepath.Join(dir, "alice.pem")
	if err := os.WriteFile(both, append(alice.CertPEM(), alice.KeyPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for _, c := range alice.Chain()[1:] {
		chain = append(chain, c.Cert)
	}
	pfx, err := pkcs12.Modern2023.Encode(alice.Key, alice.Cert, chain, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, "alice.p12")
	if err := os.WriteFile(p12, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	certOnly := filepath.Join(dir, "cert-only.pem")
	if err := os.WriteFile(certOnly, alice.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	if c, err := loadClientCert(both); err != nil || c.Leaf == nil || c.Leaf.Subject.CommonName != "alice" {
		t.Errorf("PEM: %v", err)
	}
	t.Setenv("CERTLENS_PFX_PASSWORD", "s3cret")
	if c, err := loadClientCert(p12); err != nil || len(c.Certificate) != 3 || c.PrivateKey == nil {
		t.Errorf("PKCS#12: %d certificates, %v", len(c.Certificate), err)
	}
	t.Setenv("CERTLENS_PFX_PASSWORD", "wrong")
	if _, err := loadClientCert(p12); err == nil || !strings.Contains(err.Error(), "CERTLENS_PFX_PASSWORD") {
		t.Errorf("PKCS#12 with a wrong password: %v", err)
	}
	if _, err := loadClientCert(certOnly); err == nil {
		t.Error("a PEM file without a key was accepted")
	}
	bob := ca.NewClient(t, "bob")
	mismatched := filepath.Join(dir, "mismatched.pem")
	if err := os.WriteFile(mismatched, append(alice.CertPEM(), bob.KeyPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadClientCert(mismatched); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("alice's certificate with bob's key: %v", err)
	}
}
