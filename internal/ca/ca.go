// Package ca keeps intercept mode's root CA: the certificate a user imports
// into the browser's (or Windows') trusted roots so that certlens may stand
// in for the servers it proxies, and the key that signs those stand-ins.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// File names inside the data dir.
const (
	CertFile = "ca.crt"
	KeyFile  = "ca.key"
)

// Validity of a new root: long enough that a user imports it once.
const Validity = 10 * 365 * 24 * time.Hour

// ErrNotFound is returned by Load when the dir holds no CA yet.
var ErrNotFound = errors.New("no certlens CA")

// CA is the root certificate and its key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	Dir     string
	CertPEM []byte
}

// DefaultDir is where the CA lives unless configured: $XDG_DATA_HOME/certlens,
// ~/.local/share/certlens on Linux and the BSDs, and the per-user
// application data directory (os.UserConfigDir) on Windows and macOS, where
// there is no separate data directory convention.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "certlens"), nil
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the data dir: %w (set intercept.ca_dir)", err)
		}
		return filepath.Join(d, "certlens"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the data dir: %w (set XDG_DATA_HOME or intercept.ca_dir)", err)
	}
	return filepath.Join(home, ".local", "share", "certlens"), nil
}

// Fingerprint is the certificate's SHA-256 as Windows' certmgr and
// browsers show it: upper-case hex pairs separated by colons.
func (c *CA) Fingerprint() string {
	sum := sha256.Sum256(c.Cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// CertPath is where the certificate is.
func (c *CA) CertPath() string { return filepath.Join(c.Dir, CertFile) }

// TLSCertificate is the CA as goproxy's signer wants it.
func (c *CA) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// Load reads the CA in dir. On Unix a key file that group or others may
// read is refused: whoever reads it can impersonate every site to this
// machine's browsers.
func Load(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNotFound, dir)
	}
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s has mode %#o: others could read it; run chmod 600 %s", keyPath, st.Mode().Perm(), keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM CERTIFICATE", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s holds no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	return &CA{Cert: cert, Key: key, Dir: dir, CertPEM: certPEM}, nil
}

// LoadOrCreate loads the CA in dir, creating one when there is none;
// created says which.
func LoadOrCreate(dir string) (c *CA, created bool, err error) {
	c, err = Load(dir)
	if errors.Is(err, ErrNotFound) {
		c, err = Create(dir, false)
		return c, err == nil, err
	}
	return c, false, err
}

// Create makes a new root CA (ECDSA P-256, ten years, named after this host
// and today's date so that a user with several can tell them apart) and
// writes it to dir (made 0700; key 0600). An existing CA is replaced only
// with replace.
func Create(dir string, replace bool) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if !replace {
		if _, err := os.Stat(certPath); err == nil {
			return nil, fmt.Errorf("%s already exists; use --force to replace it (browsers that trust the old one must import the new one)", certPath)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject: pkix.Name{
			Organization:       []string{"certlens"},
			OrganizationalUnit: []string{"intercept mode, " + host},
			CommonName:         fmt.Sprintf("certlens intercept CA %s %s", host, now.UTC().Format("2006-01-02")),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Leaves only: a stolen key cannot mint intermediates.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is a broken CA, the
	// other way round Load reports a missing CA and a new one is made.
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Dir: dir, CertPEM: certPEM}, nil
}

// writeFile replaces path atomically with data at mode, whatever the umask.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
