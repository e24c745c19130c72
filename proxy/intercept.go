package proxy

// Intercept mode: certlens terminates the browser's TLS with a leaf signed
// by its own CA (goproxy MITM) and opens its own TLS connection to the
// server, so it reads what observe mode cannot: TLS 1.3's and
// renegotiation's CertificateRequest, and the HTTP answer (403.7 ...).
//
// Each browser connection (one CONNECT) gets its own upstream transport:
// goproxy's shared transport hands one browser's upstream connection, and
// the client certificate presented on it, to another browser's requests
// (GOPROXY-NOTES.md). The upstream TCP bytes pass through the same tunnel
// tee and parser as observe mode, so records and bytes are measured; what
// the parser cannot read (encrypted phases) is completed from what
// crypto/tls handed certlens's client, in completeUpstream.

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/elazarl/goproxy"
)

// InterceptOptions configure intercept mode.
type InterceptOptions struct {
	// CA signs the leaf certificates the browser sees. Required.
	CA tls.Certificate
	// ClientCerts are presented upstream to hosts matching their pattern,
	// first match wins; a host matching none gets no certificate.
	ClientCerts []ClientCert
	// UpstreamRoots verify servers; nil means the system roots.
	UpstreamRoots *x509.CertPool
	// InsecureUpstream lets servers that fail verification through (the
	// events say so) instead of refusing them.
	InsecureUpstream bool
	// KeyLog receives the NSS key log lines of both sides; nil writes none.
	KeyLog io.Writer
	// CertCacheSize bounds the cached browser-side leaves; 0 means 1024.
	CertCacheSize int
}

// ClientCert is one intercept.client_certs entry.
type ClientCert struct {
	Pattern string // host pattern, path.Match syntax (*.corp.example)
	Source  string // the file it came from, for the events
	Cert    tls.Certificate
}

// clientCertFor picks the certificate configured for host.
func (o *InterceptOptions) clientCertFor(host string) *ClientCert {
	host = strings.ToLower(host)
	for i := range o.ClientCerts {
		if ok, _ := path.Match(strings.ToLower(o.ClientCerts[i].Pattern), host); ok {
			return &o.ClientCerts[i]
		}
	}
	return nil
}

// interceptor is intercept mode's state, which a Server in another mode
// does not have: the issuer lists learned per target, and the browser
// connections still open (closed at the end of a shutdown).
type interceptor struct {
	mirror mirrorLists

	mu       sync.Mutex
	browsers map[*browserConn]struct{}
}

func (i *interceptor) opened(c *browserConn) {
	i.mu.Lock()
	i.browsers[c] = struct{}{}
	i.mu.Unlock()
}

func (i *interceptor) closed(c *browserConn) {
	i.mu.Lock()
	delete(i.browsers, c)
	i.mu.Unlock()
}

// closeBrowsers ends the browser connections still open.
func (i *interceptor) closeBrowsers() {
	i.mu.Lock()
	left := slices.Collect(maps.Keys(i.browsers))
	i.mu.Unlock()
	for _, c := range left {
		_ = c.Close()
	}
}

type icKey struct{}

// setupIntercept turns the goproxy server into a MITM with certlens's CA.
func (s *Server) setupIntercept() {
	s.intercept = &interceptor{mirror: mirrorLists{m: map[string]*learnedList{}}, browsers: map[*browserConn]struct{}{}}
	s.gp.CertStore = newCertCache(s.opts.Intercept.CertCacheSize)
	sign := goproxy.TLSConfigFromCA(&s.opts.Intercept.CA)
	action := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: func(host string, ctx *goproxy.ProxyCtx) (*tls.Config, error) {
		cfg, err := sign(host, ctx)
		if err != nil {
			return nil, err
		}
		return s.browserTLS(cfg, ctx), nil
	}}
	s.gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		ic, _ := ctx.Req.Context().Value(icKey{}).(*icConn)
		if ic == nil {
			return goproxy.RejectConnect, host
		}
		ctx.UserData = ic
		ctx.RoundTripper = goproxy.RoundTripperFunc(ic.roundTrip)
		return action, host
	})
}
