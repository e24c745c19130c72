// Package probe is `certlens probe`: certlens's own TLS client connects to a
// server as a browser would, once per TLS version, sends a request and
// follows the server into renegotiation, and its connection is read by the
// same parser and rules as a proxy's tunnel. Being the client, it also
// sees what the server encrypts to an observer.
package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/proxy/internal/ownclient"
	"github.com/certlens/certlens/rules"
)

// Config describes one `certlens probe`: a server, and how to talk to it.
type Config struct {
	// Host and Port are the server's; Path is the request path (with query).
	Host, Port, Path string
	// Versions are the TLS versions to try, one connection each, in order
	// (tls.VersionTLS13, tls.VersionTLS12).
	Versions []uint16
	// Proxy is an HTTP proxy to reach the server through with CONNECT; nil
	// connects directly.
	Proxy *url.URL
	// Certificate is presented whenever the server asks; nil answers with
	// an empty Certificate, as a browser with nothing to offer does.
	Certificate *tls.Certificate
	// RootCAs verify the server's certificate; nil means the system's. The
	// probe goes on whatever the outcome: it reports it.
	RootCAs *x509.CertPool
	// KeyLogWriter receives the probe's own TLS secrets (NSS key log).
	KeyLogWriter io.Writer
	Rules        rules.Options
	// Timeouts of each connection's phases; zero means the default.
	ConnectTimeout, HandshakeTimeout, ResponseTimeout time.Duration
}

// Probe timeout defaults: a server that takes longer is itself a finding.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultResponseTimeout  = 15 * time.Second
)

// maxProbeBody bounds what is read of a response body: enough for any IIS
// error page, whose substatus is all that is read from it.
const maxProbeBody = 64 << 10

// Attempt is one probe connection with one TLS version.
type Attempt struct {
	// Version is the TLS version asked for (tls.VersionTLS13, ...).
	Version uint16
	Meta    event.Meta
	// Handshakes are the parser's, completed with what the probe knew as
	// the client (mergeClientView); Events their diagnosis, in order.
	Handshakes []*handshake.Handshake
	Events     []*event.Handshake
	Closed     *event.Closed
	// Server is the server's certificate chain (leaf first) as the probe
	// received it, and Trust the verification error, nil when trusted.
	Server []*x509.Certificate
	Trust  error
	// HTTP is the answer to GET Path, nil when none came.
	HTTP *rules.HTTPOutcome
	// StatusLine is the response's status line, e.g. "403 Forbidden".
	StatusLine string
	// Unsupported: the server does not speak this TLS version. The attempt
	// then has no events: a version refused is no finding.
	Unsupported bool
	// Err is why the attempt stopped short: an *Error.
	Err error
}

// Error says which stage of an attempt failed and where.
type Error struct {
	Stage string // connect, proxy, handshake, request, response
	Addr  string
	Err   error
}

func (e *Error) Error() string {
	switch e.Stage {
	case "connect":
		return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err)
	case "proxy":
		return fmt.Sprintf("proxy CONNECT to %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("%s with %s: %v", e.Stage, e.Addr, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Run connects once per version in cfg.Versions and diagnoses every
// handshake of each connection. It fails only when ctx ends; connection
// errors are in each Attempt.
func Run(ctx context.Context, cfg Config) ([]*Attempt, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	var out []*Attempt
	for i, v := range cfg.Versions {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		meta := event.Meta{ConnID: fmt.Sprintf("probe-%d", i+1), Mode: event.ModeProbe, Target: net.JoinHostPort(cfg.Host, cfg.Port)}
		out = append(out, probeOnce(ctx, cfg, v, meta))
	}
	return out, ctx.Err()
}

// clientView is what the probe, as the client, knows of one handshake that
// a passive parser may only have seen encrypted.
type clientView struct {
	state   tls.ConnectionState
	request *tls.CertificateRequestInfo
	sent    [][]byte // the chain presented, empty for an empty Certificate
	// done: crypto/tls completed this handshake (it checked the server's
	// Finished), whatever the parser could see of its end.
	done bool
}

// clientViews collects a connection's views from crypto/tls callbacks,
// keyed by the parser's handshake index: the probe's reads feed the parser
// before crypto/tls sees the bytes, so when a callback runs the parser has
// begun the handshake it belongs to. (crypto/tls calls VerifyConnection on
// the initial handshake only, so callbacks cannot count renegotiations.)
type clientViews struct {
	mu     sync.Mutex
	parser *handshake.Parser
	views  map[int]*clientView
}

// maxViews bounds the views of a server that renegotiates without end.
const maxViews = 16

func (c *clientViews) current() *clientView {
	i := c.parser.Started() - 1
	if v := c.views[i]; v != nil {
		return v
	}
	if i < 0 || len(c.views) >= maxViews {
		return &clientView{} // kept nowhere
	}
	v := &clientView{}
	c.views[i] = v
	return v
}

func (c *clientViews) verified(cs tls.ConnectionState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current().state = cs
	return nil
}

func (c *clientViews) asked(cri *tls.CertificateRequestInfo, sent [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.current()
	v.request, v.sent = cri, sent
}

// settle marks the handshakes so far completed, and gives the views of
// renegotiations, which VerifyConnection does not see, the connection's
// state once they are over.
func (c *clientViews) settle(cs tls.ConnectionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A renegotiation that asked for nothing ran no callback; the client
	// still read all of it.
	for i := range min(c.parser.Started(), maxViews) {
		if c.views[i] == nil && len(c.views) < maxViews {
			c.views[i] = &clientView{}
		}
	}
	for _, v := range c.views {
		if v.state.Version == 0 {
			v.state = cs
		}
		v.done = true
	}
}

func (c *clientViews) get(i int) *clientView {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.views[i]
}

func probeOnce(ctx context.Context, cfg Config, version uint16, meta event.Meta) *Attempt {
	a := &Attempt{Version: version, Meta: meta}
	start := time.Now()
	// The probe is the client: its own key log lets the parser decrypt
	// TLS 1.3 and renegotiation as it does a browser's, so records and
	// bytes are the wire's, not crypto/tls's account of them.
	secrets := keylog.NewStore(16)
	parser := handshake.NewParser(handshake.Options{Secrets: secrets})
	raw, err := dialProbe(ctx, cfg, meta.Target)
	if err != nil {
		a.Err = err
		return a
	}
	a.Meta.ClientAddr = raw.LocalAddr().String()
	a.Meta.CommunityID = communityid.FromAddrs(0, raw.LocalAddr(), raw.RemoteAddr())
	tee := &probeConn{Conn: raw, parser: parser}
	views := &clientViews{parser: parser, views: map[int]*clientView{}}
	present := cfg.Certificate
	held := &ownclient.Conn{Conn: tee}
	tc := tls.Client(held, &tls.Config{
		ServerName: serverName(cfg.Host),
		MinVersion: version, MaxVersion: version,
		// The probe judges the server's certificate itself (trust below)
		// and must go on to see the certificate request whatever it is.
		InsecureSkipVerify: true,
		VerifyConnection:   views.verified,
		// As a browser would on a site that asks after the request (IIS,
		// Apache per location): follow the server into renegotiation.
		Renegotiation: tls.RenegotiateFreelyAsClient,
		// HTTP/1.1 only: the request below is HTTP/1.1, and renegotiation
		// is what is being probed (RFC 9113 forbids it over h2).
		NextProtos:   []string{"http/1.1"},
		KeyLogWriter: ownclient.KeyLog{Store: secrets, Next: cfg.KeyLogWriter},
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if present == nil {
				views.asked(cri, [][]byte{})
				return &tls.Certificate{}, nil
			}
			views.asked(cri, present.Certificate)
			return present, nil
		},
	})
	defer func() {
		tc.Close()
		a.finish(cfg, parser, views, tee, start)
	}()

	_ = tc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		held.Failed(err)
		a.Unsupported = versionRefused(err)
		a.Err = &Error{Stage: "handshake", Addr: meta.Target, Err: timedOut(err, cfg.HandshakeTimeout, "--handshake-timeout")}
		return a
	}
	cs := tc.ConnectionState()
	views.settle(cs)
	a.Server = cs.PeerCertificates
	a.Trust = ownclient.VerifyServer(cs, cfg.Host, cfg.RootCAs)

	_ = tc.SetDeadline(time.Now().Add(cfg.ResponseTimeout))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: certlens-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		cfg.Path, hostHeader(cfg.Host, cfg.Port))
	if _, err := io.WriteString(tc, req); err != nil {
		a.Err = &Error{Stage: "request", Addr: meta.Target, Err: err}
		return a
	}
	// The server may renegotiate here, inside the read: crypto/tls runs
	// that handshake, and the callbacks above record it.
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		a.Err = &Error{Stage: "response", Addr: meta.Target, Err: timedOut(err, cfg.ResponseTimeout, "--response-timeout")}
		return a
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	resp.Body.Close()
	views.settle(tc.ConnectionState())
	a.StatusLine = resp.Status
	a.HTTP = &rules.HTTPOutcome{Status: resp.StatusCode, Substatus: rules.IISSubstatus(resp.StatusCode, string(body)), Body: string(body)}
	return a
}

// finish closes the parser and diagnoses every handshake it saw.
func (a *Attempt) finish(cfg Config, parser *handshake.Parser, views *clientViews, tee *probeConn, start time.Time) {
	// The last secrets may have come after the last bytes were fed.
	parser.Retry()
	hs := append(parser.Drain(), parser.Close()...)
	var remote *handshake.AlertDescription
	if a.Err != nil {
		if d, ok := ownclient.RemoteAlert(a.Err); ok {
			remote = &d
		}
	}
	for _, h := range hs {
		a.Handshakes = append(a.Handshakes, mergeClientView(h, views.get(h.Index), remote))
	}
	reason := "probe done"
	if a.Err != nil {
		reason = a.Err.Error()
	}
	a.Closed = event.NewClosed(a.Meta, parser.Observation())
	a.Closed.BytesUp, a.Closed.BytesDown = tee.up, tee.down
	a.Closed.SetDuration(time.Since(start))
	a.Closed.Reason = reason
	if a.Unsupported {
		return
	}
	for i, h := range a.Handshakes {
		ev := rules.Evidence{Host: cfg.Host, NoCertToSend: cfg.Certificate == nil}
		// The answer came after the last handshake: it is that one's outcome.
		if i == len(a.Handshakes)-1 {
			ev.HTTP = a.HTTP
			ev.ResetAfterRequest = a.HTTP == nil && errors.Is(a.Err, syscall.ECONNRESET) && stage(a.Err) == "response"
		}
		a.Events = append(a.Events, event.Diagnose(a.Meta, h, ev, cfg.Rules))
	}
	var conn rules.Connection
	for _, e := range a.Events {
		e.Fold(&conn)
	}
	a.Closed.Conclude(&conn)
}

// timedOut says which limit a deadline error hit, so the user knows what to raise.
func timedOut(err error, d time.Duration, flag string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no answer within %v (%s): %w", d, flag, err)
	}
	return err
}

func stage(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Stage
	}
	return ""
}

// mergeClientView completes a handshake the parser read with what the probe
// knew as its client: the CertificateRequest crypto/tls decrypted (TLS 1.3,
// renegotiation), the certificate it answered with, the negotiated
// parameters and the server's alert. Facts the parser read on the wire win;
// only what it could not read is filled, and the handshake is then
// "decrypted". This is the one place client-side knowledge enters; a key
// log decrypting inside the parser would leave less to fill here.
func mergeClientView(h *handshake.Handshake, v *clientView, remote *handshake.AlertDescription) *handshake.Handshake {
	cv := handshake.ClientView{ServerAlert: remote}
	if v != nil {
		cs := v.state
		cv.Version, cv.CipherSuite, cv.ALPN = handshake.Version(cs.Version), handshake.CipherSuite(cs.CipherSuite), cs.NegotiatedProtocol
		for _, c := range cs.PeerCertificates {
			cv.ServerChain = append(cv.ServerChain, c.Raw)
		}
		if v.request != nil {
			cv.CertRequest, cv.Sent = ownclient.CertRequest(v.request, h.Version), v.sent
			if h.Version == 0 {
				cv.CertRequest = ownclient.CertRequest(v.request, cv.Version)
			}
		}
		cv.Done = v.done
	}
	return h.Complete(cv)
}

// alertProtocolVersion is the alert a server answers a version it does not
// speak with (RFC 8446 6.2).
const alertProtocolVersion handshake.AlertDescription = 70

// versionRefused reports a handshake that failed because the server does
// not speak the version asked for.
func versionRefused(err error) bool {
	if d, ok := ownclient.RemoteAlert(err); ok {
		return d == alertProtocolVersion
	}
	return strings.Contains(err.Error(), "unsupported protocol version") ||
		strings.Contains(err.Error(), "server selected unsupported protocol version")
}

// serverName is the SNI for host: none for an address.
func serverName(host string) string {
	if net.ParseIP(host) != nil {
		return "" // SNI carries names only (RFC 6066 3)
	}
	return host
}

func hostHeader(host, port string) string {
	if port == "443" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// dialProbe opens the TCP connection to target, through the HTTP proxy when
// one is set.
func dialProbe(ctx context.Context, cfg Config, target string) (net.Conn, error) {
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	if cfg.Proxy == nil {
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, &Error{Stage: "connect", Addr: target, Err: err}
		}
		return c, nil
	}
	paddr := cfg.Proxy.Host
	if cfg.Proxy.Port() == "" {
		paddr = net.JoinHostPort(cfg.Proxy.Hostname(), "80")
	}
	c, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, &Error{Stage: "connect", Addr: paddr + " (the proxy)", Err: err}
	}
	_ = c.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nUser-Agent: certlens-probe\r\n"
	if u := cfg.Proxy.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	br := bufio.NewReader(c)
	_, err = io.WriteString(c, req+"\r\n")
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("the proxy %s answered %s", paddr, resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, &Error{Stage: "proxy", Addr: target, Err: err}
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		// A server that speaks first: keep what the proxy's reader holds.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// probeConn feeds the probe's own TLS bytes to the parser on their way, so
// records and sizes are measured as on the wire: what was read comes from
// the server, what is written from the client (as tunnel does for a proxy).
type probeConn struct {
	net.Conn
	parser   *handshake.Parser
	up, down int64
}

func (c *probeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.down += int64(n)
		c.parser.Feed(handshake.FromServer, b[:n])
	}
	return n, err
}

func (c *probeConn) Write(b []byte) (int, error) {
	c.parser.Feed(handshake.FromClient, b)
	n, err := c.Conn.Write(b)
	c.up += int64(n)
	return n, err
}
