package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/ca"
	"github.com/certlens/certlens/proxy"
	"github.com/certlens/certlens/rules"
)

// interceptOptions loads what intercept mode needs before it listens: the
// CA (created on first use), client certificates, upstream roots and the
// key log. A file it cannot use is a configuration error. The returned
// closer closes the key log.
func interceptOptions(cfg *config.Config, log *zap.Logger) (proxy.InterceptOptions, io.Closer, error) {
	var o proxy.InterceptOptions
	dir, err := interceptCADir(cfg)
	if err != nil {
		return o, nil, &config.Error{Key: "intercept.ca_dir", Problem: err.Error()}
	}
	root, created, err := ca.LoadOrCreate(dir)
	if err != nil {
		return o, nil, &config.Error{Key: "intercept.ca_dir", Problem: err.Error()}
	}
	msg := "intercept CA loaded"
	if created {
		msg = "intercept CA created: import it into the browser's trusted roots (certlens ca export)"
	}
	log.Info(msg, zap.String("path", root.CertPath()), zap.String("subject", root.Cert.Subject.String()),
		zap.String("sha256", root.Fingerprint()))
	o.CA = root.TLSCertificate()

	for _, e := range cfg.Intercept.ClientCerts {
		cert, err := loadClientCert(e.File)
		if err != nil {
			return o, nil, &config.Error{Key: "intercept.client_certs", Problem: fmt.Sprintf("%s: %v", e.File, err)}
		}
		o.ClientCerts = append(o.ClientCerts, proxy.ClientCert{Pattern: e.Pattern, Source: e.File, Cert: cert})
	}
	o.UpstreamRoots, err = x509.SystemCertPool()
	if err != nil {
		o.UpstreamRoots = x509.NewCertPool()
	}
	for _, name := range cfg.Intercept.UpstreamRoots {
		data, err := os.ReadFile(name)
		if err != nil {
			return o, nil, &config.Error{Key: "intercept.upstream_roots", Problem: err.Error()}
		}
		// PEM or DER, as --ca-file takes them.
		certs, err := rules.ParseCertFile(data)
		if err != nil {
			return o, nil, &config.Error{Key: "intercept.upstream_roots", Problem: name + ": " + err.Error()}
		}
		for _, c := range certs {
			o.UpstreamRoots.AddCert(c)
		}
	}
	o.InsecureUpstream = cfg.Intercept.InsecureUpstream
	if o.InsecureUpstream {
		log.Warn("intercept.insecure_upstream is on: servers whose certificate does not verify are let through (flagged in their events)")
	}
	var closer io.Closer = io.NopCloser(nil)
	if cfg.Keylog != "" {
		f, err := os.OpenFile(cfg.Keylog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return o, nil, &config.Error{Key: "keylog", Problem: err.Error()}
		}
		o.KeyLog, closer = f, f
		log.Info("writing TLS secrets of both sides", zap.String("keylog", cfg.Keylog))
	}
	return o, closer, nil
}

// loadClientCert reads a certificate with its key: PEM holding both, or
// PKCS#12 with the password in CERTLENS_PFX_PASSWORD. The key must be the
// certificate's (presentable, as for the probe).
func loadClientCert(name string) (tls.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return tls.Certificate{}, err
	}
	var chain []*x509.Certificate
	var key any
	if bytes.Contains(data, []byte("-----BEGIN")) {
		if chain, err = rules.ParseCertFile(data); err == nil {
			key, err = parseKey(data)
		}
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("PEM certificate and key: %w", err)
		}
	} else {
		k, leaf, cas, err := pkcs12.DecodeChain(data, os.Getenv(config.PFXPasswordEnv))
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("neither PEM with a key nor PKCS#12 (password from %s): %w", config.PFXPasswordEnv, err)
		}
		chain, key = append([]*x509.Certificate{leaf}, cas...), k
	}
	c, err := presentable(chain, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return *c, nil
}
