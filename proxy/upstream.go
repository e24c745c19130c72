package proxy

// Intercept mode, the upstream side: certlens's own TLS connections to the
// server, one transport per browser connection, through the same tunnel tee
// and parser as observe mode. What the parser cannot read is completed from
// what crypto/tls handed certlens's client (completeUpstream).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/proxy/internal/ownclient"
	"github.com/certlens/certlens/rules"
)

// maxRequestsSeen bounds the certificate requests kept per upstream
// connection (a server that renegotiates without end).
const maxRequestsSeen = 16

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
	up := &upstream{ic: ic, t: t, meta: t.meta}
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
		t.setReason(closeHandshakeFailed, err)
		_ = tc.Close()
		_ = t.Close()
		return nil, err
	}
	up.mu.Lock()
	up.handshakeOK = true
	up.mu.Unlock()
	return &upConn{Conn: tc, up: up}, nil
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
	errs        handshake.Errors
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
	up.ic.srv.intercept.mirror.learn(up.meta.Target, seen.cas)
	return cert, nil
}

// fail notes an error of certlens's TLS client: its text for the event,
// the server's alert it carries, and whether the server reset the connection.
func (up *upstream) fail(context string, err error) {
	up.mu.Lock()
	if len(up.errs) < 4 {
		up.errs = append(up.errs, fmt.Errorf("%s%w", context, err))
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
func completeUpstream(h *handshake.Handshake, req *certRequestSeen, completed bool, errs handshake.Errors, alert *handshake.AlertDescription) *handshake.Handshake {
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
