package main

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/ca"
	"github.com/certlens/certlens/internal/certfile"
	"github.com/certlens/certlens/proxy"
)

// interceptOptions loads what intercept mode needs before it serves:
// client certificates, upstream roots, the CA (created on first use) and
// the key log. A file it cannot use is a configuration error. The returned
// closer closes the key log.
func interceptOptions(cfg *config.Config, log *zap.Logger) (proxy.InterceptOptions, io.Closer, error) {
	var o proxy.InterceptOptions
	// The files the user named first: a mistake there must not leave a
	// new CA behind, nor a line on stdout before the error.
	for _, e := range cfg.Intercept.ClientCerts {
		cert, err := loadClientCert(e.File)
		if err != nil {
			return o, nil, &config.Error{Key: "intercept.client_certs", Problem: fmt.Sprintf("%s: %v", e.File, err)}
		}
		o.ClientCerts = append(o.ClientCerts, proxy.ClientCert{Pattern: e.Pattern, Source: e.File, Cert: cert})
	}
	var err error
	o.UpstreamRoots, err = x509.SystemCertPool()
	if err != nil {
		o.UpstreamRoots = x509.NewCertPool()
	}
	for _, name := range cfg.Intercept.UpstreamRoots {
		// PEM, DER or PKCS#12 without a password, as --expect-cert.
		certs, _, err := certfile.Read(name)
		if err != nil {
			return o, nil, &config.Error{Key: "intercept.upstream_roots", Problem: err.Error()}
		}
		for _, c := range certs {
			o.UpstreamRoots.AddCert(c)
		}
	}
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
