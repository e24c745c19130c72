package proxy

// Intercept mode, the browser's side: certlens's CA signs the leaf the
// browser sees, the browser is asked for a certificate with the issuer list
// the server sent (once one is learned), and its connection's end ends the
// upstream side too.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// How the events name what the browser was asked.
const (
	browserAskedList = "mirrored"
	browserNotAsked  = "not_asked"
)

// responseTimeout bounds the wait for an upstream answer's headers.
const responseTimeout = time.Minute

// extPostHandshakeAuth is RFC 8446's post_handshake_auth extension.
const extPostHandshakeAuth = 49

// interceptConnect prepares a CONNECT for MITM: the browser connection's
// state, and a watch on the hijacked connection so that its end closes
// the upstream side and is logged.
func (s *Server) interceptConnect(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	host, _, _ := net.SplitHostPort(r.Host)
	ic := &icConn{
		srv:   s,
		meta:  event.Meta{ConnID: s.nextID(), Mode: event.ModeIntercept, ClientAddr: r.RemoteAddr, Target: r.Host, CommunityID: browserFlow(r)},
		host:  host,
		start: time.Now(),
		idle:  s.dyn.Load().IdleTimeout,
	}
	ic.transport = &http.Transport{
		// Never through a proxy the environment names, and never h2
		// upstream: HTTP/2 forbids the renegotiation IIS asks with.
		Proxy:                 nil,
		DialContext:           s.dial,
		DialTLSContext:        ic.dialTLS,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       ic.idle,
		ResponseHeaderTimeout: responseTimeout,
		// The browser's Accept-Encoding goes through untouched.
		DisableCompression: true,
	}
	return browserWriter{ResponseWriter: w, ic: ic}, r.WithContext(context.WithValue(r.Context(), icKey{}, ic))
}

// browserTLS completes the browser-side config goproxy signed for the
// host: HTTP/1.1 only (goproxy's h2 MITM would need AllowHTTP2, and IIS's
// renegotiation cannot happen under h2 anyway), the key log, and, once a
// connection has learned the host's issuer list, a certificate request
// carrying exactly that list, so the browser makes the choice it would
// make for the real server.
func (s *Server) browserTLS(cfg *tls.Config, ctx *goproxy.ProxyCtx) *tls.Config {
	cfg.NextProtos = []string{"http/1.1"}
	cfg.KeyLogWriter = s.opts.Intercept.KeyLog
	ic, _ := ctx.UserData.(*icConn)
	if ic == nil {
		return cfg
	}
	cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		// certlens's own client cannot offer post-handshake
		// authentication; whether the browser did decides whom a server
		// that wants it refuses.
		pha := slices.Contains(chi.Extensions, extPostHandshakeAuth)
		ic.mu.Lock()
		ic.browserPHA = pha
		ic.mu.Unlock()
		return nil, nil
	}
	if l := s.intercept.mirror.get(ic.meta.Target); l != nil {
		cfg.ClientAuth = tls.RequestClientCert
		cfg.ClientCAs = l.pool
		ic.mu.Lock()
		ic.asked, ic.askedCount = true, len(l.dns)
		ic.mu.Unlock()
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		chain := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			chain[i] = c.Raw
		}
		ic.mu.Lock()
		ic.browserDone, ic.browserChain = true, chain
		ic.mu.Unlock()
		return nil
	}
	return cfg
}

// icConn is one intercepted browser connection.
type icConn struct {
	srv       *Server
	meta      event.Meta
	host      string
	start     time.Time
	idle      time.Duration // tunnel.idle_timeout when the browser connected
	transport *http.Transport
	dials     atomic.Int32
	last      atomic.Pointer[rules.HTTPOutcome] // the latest answer, for the http line

	mu           sync.Mutex
	asked        bool // the browser was asked for a certificate
	askedCount   int
	browserDone  bool // the browser-side handshake reached its certificate check
	browserChain [][]byte
	browserPHA   bool // the browser's ClientHello offered post_handshake_auth
	up, down     int64
	tunnels      []*tunnel // its upstream connections
}

// browserWriter hands goproxy a hijacked connection certlens can watch.
type browserWriter struct {
	http.ResponseWriter
	ic *icConn
}

func (w browserWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("certlens: connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := &browserConn{Conn: c, ic: w.ic}
	w.ic.srv.intercept.opened(bc)
	return bc, rw, nil
}

// browserConn is the browser's side of an intercepted CONNECT. Its reads
// time out after the idle timeout: net/http clears deadlines on hijack,
// and a browser that keeps a connection open without a request would
// otherwise hold it, and its upstream connection, forever.
type browserConn struct {
	net.Conn
	ic        *icConn
	closeOnce sync.Once
}

func (c *browserConn) Read(b []byte) (int, error) {
	if idle := c.ic.idle; idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	n, err := c.Conn.Read(b)
	c.ic.count(int64(n), 0)
	return n, err
}

func (c *browserConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.ic.count(0, int64(n))
	return n, err
}

func (c *browserConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.ic.srv.intercept.closed(c)
		c.ic.closed()
	})
	return err
}

func (ic *icConn) count(up, down int64) {
	ic.mu.Lock()
	ic.up += up
	ic.down += down
	ic.mu.Unlock()
}

// closed ends the upstream side with the browser's. A browser connection
// that never reached the server (its TLS handshake with certlens failed,
// or it sent no request) still gets its "connection closed" event.
func (ic *icConn) closed() {
	ic.mu.Lock()
	for _, t := range ic.tunnels {
		t.setReason(closeBrowser, nil)
	}
	ic.mu.Unlock()
	ic.transport.CloseIdleConnections()
	if ic.dials.Load() > 0 {
		return
	}
	ic.mu.Lock()
	up, down := ic.up, ic.down
	ic.mu.Unlock()
	// crypto/tls tells a server nothing of the client's verdict on its
	// certificate before the client's Finished, so the two cases are one.
	reason := "browser sent no request: its TLS handshake with certlens failed (does it trust certlens's CA? certlens ca export) or it closed first"
	c := event.NewClosed(ic.meta, handshake.Observation{})
	c.BytesUp, c.BytesDown, c.Reason = up, down, reason
	c.SetDuration(time.Since(ic.start))
	ic.srv.log.Info("connection closed", zap.Inline(c))
}

// browserSide says what the browser was asked and chose, for the events.
func (ic *icConn) browserSide(i *event.Intercept) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	i.BrowserAsked = browserNotAsked
	i.BrowserPHA = ic.browserPHA
	if ic.asked {
		i.BrowserAsked, i.BrowserIssuerCount = browserAskedList, ic.askedCount
		if ic.browserDone {
			i.BrowserCert = event.NewClientCert(ic.browserChain)
		}
	}
}

// browserFlow is the Community ID of the browser's own connection to
// certlens, for the event of a browser connection that never reached the
// server (its tunnels' events name certlens's connections to the server).
func browserFlow(r *http.Request) string {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return ""
	}
	return communityid.FromStrings(0, r.RemoteAddr, local.String())
}
