package ca

import (
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCreateLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certlens")
	c, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: %v, created %v", err, created)
	}
	if !c.Cert.IsCA || !c.Cert.MaxPathLenZero || c.Cert.MaxPathLen != 0 {
		t.Errorf("not a leaf-only CA: IsCA %v MaxPathLen %d", c.Cert.IsCA, c.Cert.MaxPathLen)
	}
	if _, ok := c.Cert.PublicKey.(*ecdsa.PublicKey); !ok || c.Key.Curve.Params().Name != "P-256" {
		t.Errorf("key %T", c.Cert.PublicKey)
	}
	if life := c.Cert.NotAfter.Sub(c.Cert.NotBefore); life < Validity || life > Validity+2*time.Hour {
		t.Errorf("validity %v", life)
	}
	if cn := c.Cert.Subject.CommonName; !strings.HasPrefix(cn, "certlens intercept CA ") || !strings.Contains(cn, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("CN %q names neither certlens nor the date", cn)
	}
	if fp := c.Fingerprint(); len(fp) != 32*3-1 || strings.Count(fp, ":") != 31 {
		t.Errorf("fingerprint %q", fp)
	}
	if runtime.GOOS != "windows" {
		for name, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeyFile): 0o600} {
			st, err := os.Stat(name)
			if err != nil || st.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %o", name, st.Mode().Perm(), err, want)
			}
		}
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created || again.Fingerprint() != c.Fingerprint() {
		t.Errorf("second LoadOrCreate: %v, created %v, same %v", err, created, again.Fingerprint() == c.Fingerprint())
	}
	if _, err := Create(dir, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Create over an existing CA: %v", err)
	}
	replaced, err := Create(dir, true)
	if err != nil || replaced.Fingerprint() == c.Fingerprint() {
		t.Errorf("Create --force: %v", err)
	}
}

func TestLoadRefusesReadableKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permissions")
	}
	dir := t.TempDir()
	if _, err := Create(dir, false); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, KeyFile)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Load with a 0644 key: %v", err)
	}
}

func TestLoadMissingAndBroken(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Create(dir, false); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := Create(other, false); err != nil {
		t.Fatal(err)
	}
	// A key that is not the certificate's.
	data, _ := os.ReadFile(filepath.Join(other, KeyFile))
	if err := os.WriteFile(filepath.Join(dir, KeyFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is not the key") {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if d, err := DefaultDir(); err != nil || d != filepath.Join("/srv/data", "certlens") {
		t.Errorf("DefaultDir = %q, %v", d, err)
	}
}
