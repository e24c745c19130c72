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
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/proxy/internal/ownclient"
	"github.com/certlens/certlens/rules"
)

// ModeIntercept is Options.Mode for intercept mode.
const ModeIntercept = "intercept"

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

// Bounds on what one connection or host may make certlens hold.
const (
	maxMirrorHosts   = 4096
	maxRequestsSeen  = 16
	maxBodyPeek      = 8 << 10
	maxInflatedPeek  = 32 << 10
	responseTimeout  = time.Minute
	browserAskedList = "mirrored"
	browserNotAsked  = "not_asked"
)

// extPostHandshakeAuth is RFC 8446's post_handshake_auth extension.
const extPostHandshakeAuth = 49

type icKey struct{}

// setupIntercept turns the goproxy server into a MITM with certlens's CA.
func (s *Server) setupIntercept() {
	s.mirror = &mirrorLists{m: map[string]*learnedList{}}
	s.browsers = map[*browserConn]struct{}{}
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

// interceptConnect prepares a CONNECT for MITM: the browser connection's
// state, and a watch on the hijacked connection so that its end closes
// the upstream side and is logged.
func (s *Server) interceptConnect(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	host, _, _ := net.SplitHostPort(r.Host)
	ic := &icConn{
		srv:   s,
		meta:  event.Meta{ConnID: s.nextID(), Mode: ModeIntercept, ClientAddr: r.RemoteAddr, Target: r.Host},
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
	if l := s.mirror.get(ic.meta.Target); l != nil {
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
	s := w.ic.srv
	s.mu.Lock()
	s.browsers[bc] = struct{}{}
	s.mu.Unlock()
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
		s := c.ic.srv
		s.mu.Lock()
		delete(s.browsers, c)
		s.mu.Unlock()
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
		t.setReason("browser closed")
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

// dialTLS opens one upstream connection: TCP through the tunnel tee, then
// certlens's own TLS client.
func (ic *icConn) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	s := ic.srv
	meta := ic.meta
	if n := ic.dials.Add(1); n > 1 {
		// Later connections of the same browser connection (the server
		// closed the first) keep its id with a suffix.
		meta.ConnID += "." + strconv.Itoa(int(n))
	}
	// certlens is this connection's client: its own key log lets the
	// parser decrypt TLS 1.3 and renegotiation from the wire (records,
	// certificate types), as the probe does.
	secrets := keylog.NewStore(16)
	t, err := s.openTunnel(ctx, meta, network, addr, secrets)
	if err != nil {
		return nil, err
	}
	up := &upstream{ic: ic, t: t, meta: meta}
	// No handshake can have been drained yet, and no byte fed: the sink is
	// in place in time.
	t.mu.Lock()
	t.sink = up.take
	t.mu.Unlock()
	ic.mu.Lock()
	ic.tunnels = append(ic.tunnels, t)
	ic.mu.Unlock()
	held := &ownclient.Conn{Conn: t}
	cfg := up.tlsConfig()
	cfg.KeyLogWriter = ownclient.KeyLog{Store: secrets, Next: cfg.KeyLogWriter}
	tc := tls.Client(held, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		held.Failed(err)
		up.fail("upstream TLS handshake: ", err)
		t.setReason("TLS handshake failed: " + err.Error())
		_ = tc.Close()
		_ = t.Close()
		return nil, err
	}
	up.mu.Lock()
	up.handshakeOK = true
	up.mu.Unlock()
	return &upConn{Conn: tc, up: up}, nil
}

// roundTrip sends one browser request upstream and notes the answer.
func (ic *icConn) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	var up *upstream
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c, ok := info.Conn.(*upConn); ok {
				up = c.up
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if up != nil {
				up.mu.Lock()
				up.requestsSent++
				up.mu.Unlock()
			}
		},
	}
	resp, err := ic.transport.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		ic.last.Store(nil)
		// goproxy would only log a warning and drop the browser: answer.
		return badGateway(req, ic.host, err), nil
	}
	o := peekOutcome(resp)
	ic.last.Store(o)
	if up != nil {
		up.answered(o)
	}
	return resp, nil
}

func badGateway(req *http.Request, host string, err error) *http.Response {
	msg := fmt.Sprintf("certlens (intercept mode): no answer from %s: %v\n", host, err)
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) || strings.Contains(err.Error(), "not trusted") {
		msg += "The server's certificate is not trusted: add its CA to intercept.upstream_roots, or set intercept.insecure_upstream: true.\n"
	}
	return &http.Response{
		StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:          io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)),
		Request:       req,
	}
}

// upConn is the upstream TLS connection the transport uses; it records
// the error that ends it (a TLS 1.3 server refuses a client certificate
// with an alert after the client's handshake is over).
type upConn struct {
	*tls.Conn
	up *upstream
}

func (c *upConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.up.fail("upstream TLS: ", err)
	}
	return n, err
}

// upstream is one TLS connection of certlens's own to the server.
type upstream struct {
	ic   *icConn
	t    *tunnel
	meta event.Meta

	mu          sync.Mutex
	requests    []certRequestSeen
	handshakeOK bool
	verified    bool
	verifyErr   string
	errs        []string
	alert       *handshake.AlertDescription // the server's, as crypto/tls read it
	reset       bool                        // the server reset the connection
	pending     []*handshake.Handshake      // drained, waiting for the HTTP answer
	// requestsSent and answers tell a server that reset the connection
	// after a request, unanswered (IIS over TLS 1.3 wanting a certificate).
	requestsSent, answers int
}

// certRequestSeen is one CertificateRequest as crypto/tls handed it over,
// and certlens's answer.
type certRequestSeen struct {
	index   int // the handshake it belongs to
	version uint16
	cas     [][]byte
	schemes []tls.SignatureScheme
	sent    [][]byte
	source  string
}

func (up *upstream) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: up.ic.host,
		RootCAs:    up.ic.srv.opts.Intercept.UpstreamRoots,
		// Verified in verify instead, so that the reason is recorded and
		// insecure_upstream can let the server through, flagged.
		InsecureSkipVerify:   true,
		VerifyConnection:     up.verify,
		GetClientCertificate: up.clientCert,
		Renegotiation:        tls.RenegotiateFreelyAsClient,
		NextProtos:           []string{"http/1.1"},
		KeyLogWriter:         up.ic.srv.opts.Intercept.KeyLog,
	}
}

func (up *upstream) verify(cs tls.ConnectionState) error {
	opts := &up.ic.srv.opts.Intercept
	err := ownclient.VerifyServer(cs, up.ic.host, opts.UpstreamRoots)
	up.mu.Lock()
	up.verified = err == nil
	if err != nil {
		up.verifyErr = err.Error()
	}
	up.mu.Unlock()
	if err == nil {
		return nil
	}
	up.ic.srv.log.Error("upstream certificate not trusted", zap.String("conn_id", up.meta.ConnID), zap.String("target", up.meta.Target),
		zap.String("error", err.Error()), zap.Bool("insecure_upstream", opts.InsecureUpstream),
		zap.String("remedy", "add the server's CA to intercept.upstream_roots, or set intercept.insecure_upstream: true"))
	if opts.InsecureUpstream {
		return nil
	}
	return fmt.Errorf("server certificate not trusted: %w", err)
}

// clientCert answers a CertificateRequest (initial, TLS 1.3 or a
// renegotiation) with the configured certificate, or none, and keeps the
// request: its issuer list is what the parser could not read when it came
// encrypted, and what the browser is asked with from now on.
func (up *upstream) clientCert(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	seen := certRequestSeen{
		// The handshakes finished before this one: its index. Counted by
		// the parser rather than here, so a renegotiation without a
		// certificate request still counts.
		index:   up.t.parser.Observation().Handshakes,
		version: cri.Version,
		schemes: slices.Clone(cri.SignatureSchemes),
		sent:    [][]byte{},
		source:  "none configured for " + up.ic.host + " (intercept.client_certs)",
	}
	for _, dn := range cri.AcceptableCAs {
		seen.cas = append(seen.cas, bytes.Clone(dn))
	}
	cert := &tls.Certificate{}
	if cc := up.ic.srv.opts.Intercept.clientCertFor(up.ic.host); cc != nil {
		cert = &cc.Cert
		seen.sent = cc.Cert.Certificate
		seen.source = "intercept.client_certs " + cc.Pattern + "=" + cc.Source
	}
	up.mu.Lock()
	if len(up.requests) < maxRequestsSeen {
		up.requests = append(up.requests, seen)
	}
	up.mu.Unlock()
	up.ic.srv.mirror.learn(up.meta.Target, seen.cas)
	return cert, nil
}

// fail notes an error of certlens's TLS client: its text for the event,
// the server's alert it carries, and whether the server reset the connection.
func (up *upstream) fail(context string, err error) {
	up.mu.Lock()
	if len(up.errs) < 4 {
		up.errs = append(up.errs, context+err.Error())
	}
	if d, ok := ownclient.RemoteAlert(err); ok && up.alert == nil {
		up.alert = &d
	}
	up.reset = up.reset || errors.Is(err, syscall.ECONNRESET)
	up.mu.Unlock()
}

// take receives the tunnel's handshakes (t.mu held). The latest waits for
// the HTTP answer to its request; an earlier one will get none (a
// renegotiation followed it), and at close all are written.
func (up *upstream) take(hs []*handshake.Handshake, closing bool) {
	up.mu.Lock()
	up.pending = append(up.pending, hs...)
	var out []*handshake.Handshake
	switch {
	case closing:
		out, up.pending = up.pending, nil
	case len(up.pending) > 1:
		n := len(up.pending) - 1
		out, up.pending = up.pending[:n:n], up.pending[n:]
	}
	up.mu.Unlock()
	for _, h := range out {
		up.emit(h, nil)
	}
}

// answered writes the waiting handshakes, the latest with the HTTP answer
// to the request it carried.
func (up *upstream) answered(o *rules.HTTPOutcome) {
	up.t.mu.Lock()
	defer up.t.mu.Unlock()
	up.mu.Lock()
	up.answers++
	out := up.pending
	up.pending = nil
	up.mu.Unlock()
	for i, h := range out {
		if i == len(out)-1 {
			up.emit(h, o)
		} else {
			up.emit(h, nil)
		}
	}
}

func (up *upstream) emit(h *handshake.Handshake, hr *rules.HTTPOutcome) {
	s := up.ic.srv
	up.mu.Lock()
	var req *certRequestSeen
	for i := range up.requests {
		if up.requests[i].index == h.Index {
			req = &up.requests[i]
		}
	}
	completed := up.handshakeOK && h.Index == 0
	errs, alert := up.errs, up.alert
	up.errs, up.alert = nil, nil
	reset := up.reset && up.requestsSent > up.answers
	info := &event.Intercept{UpstreamVerified: up.verified, UpstreamVerifyError: up.verifyErr}
	up.mu.Unlock()
	info.InsecureUpstream = s.opts.Intercept.InsecureUpstream && info.UpstreamVerifyError != ""
	if req != nil {
		info.ClientCertSource = req.source
	}
	up.ic.browserSide(info)

	m := completeUpstream(h, req, completed, errs, alert)
	// certlens's own client never offers post-handshake authentication: a
	// server that wants it refuses certlens where it would have asked a
	// browser that offered it.
	ev := rules.Evidence{HTTP: hr, ResetAfterRequest: reset, OwnClientNoPHA: info.BrowserPHA}
	e := event.Diagnose(up.meta, m, ev, s.dyn.Load().Rules)
	e.Intercept = info
	s.emitHandshake(up.t, m, e)
}

// completeUpstream is where intercept mode adds to a handshake of its own
// upstream connection what its TLS client knows and the parser could not
// read: for TLS 1.3 and renegotiation the CertificateRequest (issuer list
// in wire order, signature schemes) and the certificate certlens answered
// with; such a handshake is then `decrypted`, as certlens holds its keys.
// completed says certlens's TLS client finished the handshake (known for
// the initial one), so that no request means none was made. errs are the
// TLS client's errors, alert the server's alert among them. h is not changed.
func completeUpstream(h *handshake.Handshake, req *certRequestSeen, completed bool, errs []string, alert *handshake.AlertDescription) *handshake.Handshake {
	cv := handshake.ClientView{Done: completed, Errors: errs, ServerAlert: alert}
	if req != nil {
		cv.CertRequest = ownclient.CertRequest(&tls.CertificateRequestInfo{AcceptableCAs: req.cas, SignatureSchemes: req.schemes},
			handshake.Version(req.version))
		cv.Sent = req.sent
	}
	// Not the version, ServerHello and chain: the parser reads them, in
	// clear or decrypted with certlens's own key log.
	m := h.Complete(cv)
	if m.Version == 0 && req != nil {
		m.Version = handshake.Version(req.version)
	}
	return m
}

// peekOutcome reads the status, and for an error the start of the body
// (the IIS error page names the substatus; rules read 0x80070032), then
// puts the bytes back in front of the body for the browser. The body is
// kept for the rules only, never logged.
func peekOutcome(resp *http.Response) *rules.HTTPOutcome {
	o := &rules.HTTPOutcome{Status: resp.StatusCode}
	if resp.StatusCode < 400 || resp.Body == nil || resp.Body == http.NoBody {
		return o
	}
	buf := make([]byte, maxBodyPeek)
	n, err := io.ReadFull(resp.Body, buf)
	prefix := buf[:n]
	rest := io.Reader(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		rest = errReader{err}
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(prefix), rest), resp.Body}
	text := prefix
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		text = inflatePrefix(prefix)
	}
	o.Body = string(text)
	o.Substatus = rules.IISSubstatus(resp.StatusCode, o.Body)
	return o
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// inflatePrefix decompresses what it can of the start of a gzip stream.
func inflatePrefix(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(io.LimitReader(zr, maxInflatedPeek))
	return out
}

// mirrorLists are the issuer lists learned per target (host:port), the
// raw DNs and a CertPool that makes crypto/tls send exactly them.
type mirrorLists struct {
	mu sync.Mutex
	m  map[string]*learnedList
}

type learnedList struct {
	dns  [][]byte
	pool *x509.CertPool
}

// learn keeps target's latest list. crypto/tls sends ClientCAs.Subjects(),
// each certificate's RawSubject in the order added, so a pool of stand-ins
// whose RawSubject is a learned DN sends that DN byte for byte. Their Raw
// only has to be distinct (the pool drops duplicates by it) for a list
// that names a DN twice to be mirrored twice too.
func (ml *mirrorLists) learn(target string, dns [][]byte) {
	pool := x509.NewCertPool()
	for i, dn := range dns {
		raw := append([]byte{byte(i >> 8), byte(i)}, dn...)
		pool.AddCert(&x509.Certificate{Raw: raw, RawSubject: dn})
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if _, ok := ml.m[target]; !ok && len(ml.m) >= maxMirrorHosts {
		ml.m = map[string]*learnedList{}
	}
	ml.m[target] = &learnedList{dns: dns, pool: pool}
}

func (ml *mirrorLists) get(target string) *learnedList {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	return ml.m[target]
}

// closeBrowsers ends intercepted browser connections still open at the
// end of a shutdown.
func (s *Server) closeBrowsers() {
	s.mu.Lock()
	left := slices.Collect(maps.Keys(s.browsers))
	s.mu.Unlock()
	for _, c := range left {
		_ = c.Close()
	}
}

// DrainServer reads what the server sent, up to limit bytes or for d, and
// tees it as Read would: after crypto/tls gave up on an oversize message,
// the rest of it reaches the parser (ownclient.Conn.Failed).
func (t *tunnel) DrainServer(limit int, d time.Duration) {
	_ = t.Conn.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 32<<10)
	for limit > 0 {
		n, err := t.Conn.Read(b[:min(len(b), limit)])
		if n > 0 {
			t.moved(true, int64(n))
			t.feed(handshake.FromServer, b[:n])
			limit -= n
		}
		if err != nil {
			return
		}
	}
}

var _ ownclient.ServerDrainer = (*tunnel)(nil)
