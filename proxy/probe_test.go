package proxy

// The probe seen from the proxy's side: certlens probe through certlens
// serve, and the probe as one more mode in the verdict tests.

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"testing"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/proxy/probe"
)

// runProbe probes addr with cfg, TLS 1.3 and 1.2 unless cfg says, and
// hands every event to the invariant check.
func runProbe(t *testing.T, addr string, cfg probe.Config) []*probe.Attempt {
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

func eventFindings(e *event.Handshake) []string {
	var out []string
	for _, f := range e.Findings {
		out = append(out, f.ID)
	}
	return out
}

// TestProbeThroughProxy: the probe reaches the server through certlens
// serve's CONNECT, and both read the same TLS 1.2 issuer list.
func TestProbeThroughProxy(t *testing.T) {
	serverCA, clientCA := pkitest.NewCA(t, "certlens probe server CA"), pkitest.NewCA(t, "certlens probe client CA")
	cas := []*pkitest.Cert{pkitest.NewCA(t, "certlens probe other CA 1"), clientCA, pkitest.NewCA(t, "certlens probe other CA 2")}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "localhost"), ClientCAs: cas, Verify: 1, WWW: true})
	proxyAddr, ev := startProxy(t, Options{})
	as := runProbe(t, addr, probe.Config{Proxy: &url.URL{Scheme: "http", Host: proxyAddr}, Versions: []uint16{tls.VersionTLS12}})
	if len(as[0].Events) != 1 || as[0].Events[0].CertRequest == nil {
		t.Fatalf("want one handshake with a request; attempt %+v", as[0])
	}
	cr := as[0].Events[0].CertRequest
	if cr.IssuerCount != len(cas) || cr.IssuerBytes != pkitest.IssuerListSize(cas) {
		t.Errorf("the probe read %d DNs, %d bytes; want %d, %d", cr.IssuerCount, cr.IssuerBytes, len(cas), pkitest.IssuerListSize(cas))
	}
	seen := ev.wait(t, "handshake", 1)[0]
	if field(seen, "cert_request", "issuer_bytes") != float64(cr.IssuerBytes) {
		t.Errorf("the proxy saw %v bytes, the probe %d", field(seen, "cert_request", "issuer_bytes"), cr.IssuerBytes)
	}
	if as[0].Closed.BytesUp == 0 || as[0].Closed.BytesDown == 0 {
		t.Errorf("closed %+v", as[0].Closed)
	}
}
