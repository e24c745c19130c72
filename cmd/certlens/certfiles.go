package main

// The certificate files the commands take, read by internal/certfile and
// worded for the flag or config key that named them.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/certfile"
	"github.com/certlens/certlens/rules"
)

// loadExpectCerts reads the --expect-cert files. A file certlens cannot use
// is a configuration error, reported before anything starts.
func loadExpectCerts(paths []string) ([]rules.ExpectedCert, error) {
	var out []rules.ExpectedCert
	for _, p := range paths {
		if name, ok := strings.CutPrefix(p, config.StorePrefix); ok {
			ids, err := loadStore(name)
			if err != nil {
				return nil, &config.Error{Key: "expect_certs", Problem: err.Error()}
			}
			out = append(out, ids...)
			continue
		}
		chain, _, err := certfile.Read(p)
		if err != nil {
			return nil, &config.Error{Key: "expect_certs", Problem: err.Error()}
		}
		out = append(out, rules.ExpectedCert{Name: filepath.Base(p), Chain: chain})
	}
	return out, nil
}

// loadStore reads the client certificates of a store for the rules: each
// with the chain the store builds and what it says of the key. A store
// with none is an error: the user expected one.
func loadStore(name string) ([]rules.ExpectedCert, error) {
	spec, err := certfile.ParseStore(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := certfile.ReadStore(ctx, spec)
	if err != nil {
		return nil, err
	}
	ids := s.Identities()
	if len(ids) == 0 {
		return nil, fmt.Errorf("store %s holds no client certificate", spec)
	}
	return ids, nil
}

// loadClientCert reads a certificate with its key: PEM holding both, or
// PKCS#12 with the password in CERTLENS_PFX_PASSWORD. The key must be the
// certificate's, as for the probe.
func loadClientCert(name string) (tls.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return tls.Certificate{}, err
	}
	var chain []*x509.Certificate
	var key any
	if bytes.Contains(data, []byte("-----BEGIN")) {
		if chain, err = certfile.Certificates(data); err == nil {
			key, err = certfile.Key(data)
		}
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("PEM certificate and key: %w", err)
		}
	} else {
		password, set := os.LookupEnv(config.PFXPasswordEnv)
		k, c, err := certfile.PKCS12(data, password)
		var notP12 *certfile.NotPKCS12Error
		switch {
		case errors.Is(err, certfile.ErrPKCS12Password) && !set:
			return tls.Certificate{}, fmt.Errorf("a PKCS#12 file with a password: put it in %s", config.PFXPasswordEnv)
		case errors.Is(err, certfile.ErrPKCS12Password):
			return tls.Certificate{}, fmt.Errorf("the password in %s does not open this PKCS#12 file", config.PFXPasswordEnv)
		case errors.As(err, &notP12):
			return tls.Certificate{}, fmt.Errorf("not a certificate with its key: %s; give PEM holding the certificate and its key, or PKCS#12 (.pfx, .p12)", notP12.What)
		case err != nil:
			return tls.Certificate{}, err
		}
		chain, key = c, k
	}
	c, err := certfile.Pair(chain, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return *c, nil
}

// fileKeyState says whether a certificate file holds the leaf's own
// private key (a PEM key, or PKCS#12 without a password), read as probe
// reads one: a key that is another certificate's is no key for this one.
func fileKeyState(chain []*x509.Certificate, data []byte) rules.KeyState {
	var key any
	key, err := certfile.Key(data)
	if err != nil {
		if key, _, err = certfile.PKCS12(data, ""); err != nil {
			return rules.KeyUnknown
		}
	}
	if _, err := certfile.Pair(chain, key); err != nil {
		return rules.KeyUnknown
	}
	return rules.KeyPresent
}

// probeCert is the user's certificate: the chain judged against each
// request, and what is presented when there is a key.
type probeCert struct {
	name    string
	chain   []*x509.Certificate
	present *tls.Certificate
}

// readCerts reads the certificates of the file a flag names, and its bytes.
func readCerts(flag, path string) ([]*x509.Certificate, []byte, error) {
	certs, data, err := certfile.Read(path)
	var content *certfile.FileError
	switch {
	case errors.As(err, &content):
		return nil, nil, fmt.Errorf("%s %w", flag, err) // "--cert FILE: what it is not"
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return certs, data, nil
}

func loadCAFile(path string) (*x509.CertPool, error) {
	certs, _, err := readCerts("--ca-file", path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// loadProbeCert reads --cert/--key or --pfx. nil when neither is given.
func loadProbeCert(certPath, keyPath, pfxPath, pwEnv string) (*probeCert, error) {
	switch {
	case pfxPath != "" && (certPath != "" || keyPath != ""):
		return nil, errors.New("--pfx excludes --cert and --key")
	case keyPath != "" && certPath == "":
		return nil, errors.New("--key needs --cert")
	case pwEnv != "" && pfxPath == "":
		return nil, errors.New("--pfx-password-env needs --pfx")
	case pfxPath != "":
		return loadPFX(pfxPath, pwEnv)
	case certPath == "":
		return nil, nil
	}
	chain, data, err := readCerts("--cert", certPath)
	if err != nil {
		return nil, err
	}
	pc := &probeCert{name: filepath.Base(certPath), chain: chain}
	keyData, keyFrom := data, certPath
	if keyPath != "" {
		if keyData, err = os.ReadFile(keyPath); err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		keyFrom = keyPath
	}
	key, err := certfile.Key(keyData)
	switch {
	case err != nil && keyPath != "":
		return nil, fmt.Errorf("--key %s: %w", keyFrom, err)
	case err != nil:
		return pc, nil // a certificate alone: judged, not presented
	}
	if pc.present, err = certfile.Pair(chain, key); err != nil {
		return nil, fmt.Errorf("%s: %w", keyFrom, err)
	}
	return pc, nil
}

func loadPFX(path, pwEnv string) (*probeCert, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--pfx: %w", err)
	}
	password := ""
	if pwEnv != "" {
		var ok bool
		if password, ok = os.LookupEnv(pwEnv); !ok {
			return nil, fmt.Errorf("--pfx-password-env: %s is not set", pwEnv)
		}
	}
	key, chain, err := certfile.PKCS12(data, password)
	var notP12 *certfile.NotPKCS12Error
	switch {
	case errors.Is(err, certfile.ErrPKCS12Password) && pwEnv == "":
		return nil, fmt.Errorf("--pfx %s has a password: name the environment variable that holds it with --pfx-password-env", path)
	case errors.Is(err, certfile.ErrPKCS12Password):
		return nil, fmt.Errorf("--pfx %s: the password in %s does not open it", path, pwEnv)
	case errors.As(err, &notP12):
		return nil, fmt.Errorf("--pfx %s: %v; give PKCS#12 (.pfx, .p12) here, or a PEM or DER certificate with --cert (and its key with --key)", path, err)
	case err != nil:
		return nil, fmt.Errorf("--pfx %s: %w", path, err)
	}
	pc := &probeCert{name: filepath.Base(path), chain: chain}
	if pc.present, err = certfile.Pair(chain, key); err != nil {
		return nil, fmt.Errorf("--pfx %s: %w", path, err)
	}
	return pc, nil
}

// rulesOptions are the rules.* keys of cfg, with the certificates a user
// expects to be offered (--expect-cert, or probe's --cert).
func rulesOptions(cfg *config.Config, expect []rules.ExpectedCert) rules.Options {
	return rules.Options{
		IssuerListWarnBytes:  cfg.Rules.IssuerListWarnBytes,
		IssuerListErrorBytes: cfg.Rules.IssuerListErrorBytes,
		ExpectCerts:          expect,
		ClientCertHosts:      cfg.Rules.ClientCertHosts,
	}
}
