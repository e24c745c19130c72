package proxy

// The probe seen from the proxy's side: certlens probe through certlens
// serve, and the probe as one more mode in the verdict tests.

import (
	"crypto/tls"
	"net/url"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/probetest"
	"github.com/certlens/certlens/proxy/probe"
)

// TestProbeThroughProxy: the probe reaches the server through certlens
// serve's CONNECT, and both read the same TLS 1.2 issuer list.
func TestProbeThroughProxy(t *testing.T) {
	serverCA, clientCA := pkitest.NewCA(t, "certlens probe server CA"), pkitest.NewCA(t, "certlens probe client CA")
	cas := []*pkitest.Cert{pkitest.NewCA(t, "certlens probe other CA 1"), clientCA, pkitest.NewCA(t, "certlens probe other CA 2")}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "localhost"), ClientCAs: cas, Verify: 1, WWW: true})
	proxyAddr, ev := startProxy(t, Options{})
	as := probetest.Run(t, addr, probe.Config{Proxy: &url.URL{Scheme: "http", Host: proxyAddr}, Versions: []uint16{tls.VersionTLS12}})
	if len(as[0].Events) != 1 || as[0].Events[0].CertRequest == nil {
		t.Fatalf("want one handshake with a request; attempt %+v", as[0])
	}
	cr := as[0].Events[0].CertRequest
	if cr.IssuerCount != len(cas) || cr.IssuerBytes != pkitest.IssuerListSize(cas) {
		t.Errorf("the probe read %d DNs, %d bytes; want %d, %d", cr.IssuerCount, cr.IssuerBytes, len(cas), pkitest.IssuerListSize(cas))
	}
	seen := ev.waitHandshakes(t, 1)[0]
	if seen.CertRequest == nil || seen.CertRequest.IssuerBytes != cr.IssuerBytes {
		t.Errorf("the proxy saw cert_request %+v, the probe %d bytes", seen.CertRequest, cr.IssuerBytes)
	}
	if as[0].Closed.BytesUp == 0 || as[0].Closed.BytesDown == 0 {
		t.Errorf("closed %+v", as[0].Closed)
	}
}
