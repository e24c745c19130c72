// Package probetest runs certlens's probe the way its tests do, for the
// probe's own tests and the proxy's (which compare it with the other modes).
// Only tests import this package.
package probetest

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/certlens/certlens/proxy/probe"
)

// Run probes addr with cfg, TLS 1.3 and 1.2 unless cfg says, and hands
// every event to the invariant check.
func Run(t testing.TB, addr string, cfg probe.Config) []*probe.Attempt {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port = host, port
	if len(cfg.Versions) == 0 {
		cfg.Versions = []uint16{tls.VersionTLS13, tls.VersionTLS12}
	}
	as, err := probe.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := invariant.NewSource(t)
	for _, a := range as {
		for _, e := range a.Events {
			src.Event("handshake", e)
		}
		if a.Closed != nil {
			src.Event("connection closed", a.Closed)
		}
	}
	return as
}
