package main

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/otlpexport"
)

// newExporter builds the OTLP exporter otlp.* asks for; nil when
// otlp.endpoint is empty.
func newExporter(cfg *config.Config) (*otlpexport.Exporter, error) {
	o := cfg.OTLP
	if o.Endpoint == "" {
		return nil, nil
	}
	headers := make(map[string]string, len(o.Headers))
	for _, h := range o.Headers {
		headers[h.Name] = h.Value
	}
	opts := otlpexport.Options{
		Endpoint: o.Endpoint, Protocol: o.Protocol, Headers: headers,
		CAFile: o.TLS.CA, CertFile: o.TLS.Cert, KeyFile: o.TLS.Key,
		Timeout: o.Timeout, QueueSize: o.QueueSize, MetricsInterval: o.MetricsInterval,
		InstanceID: instanceID(), Version: strings.TrimPrefix(versionString(), "certlens "), Mode: cfg.Mode,
	}
	if cfg.Mode == config.ModeSidecar {
		opts.Upstream = cfg.Upstream
	}
	exp, err := otlpexport.New(opts)
	if err != nil {
		// config read the files; what is left is their content (a CA file
		// with no certificate, a key that does not match).
		key, problem, ok := strings.Cut(err.Error(), ": ")
		if !ok || !strings.HasPrefix(key, "otlp.") {
			key, problem = "otlp.endpoint", err.Error()
		}
		return nil, &config.Error{Key: key, Problem: problem + "; fix the file or the key"}
	}
	return exp, nil
}

// instanceID is service.instance.id: a random UUID (version 4) per
// process, as the semantic conventions suggest.
func instanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
