package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// Access says who may use the proxy (observe and intercept modes).
type Access struct {
	// Users maps a proxy user's name to the bcrypt hash of the password;
	// when set, every request needs Proxy-Authorization: Basic.
	Users map[string]string
	// AllowClients are the networks clients may connect from; empty allows all.
	AllowClients []netip.Prefix
}

// Limits bound what clients can make the proxy hold.
type Limits struct {
	// MaxConns caps client connections at once; more are answered 503. 0: no cap.
	MaxConns          int
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
}

// guardListener admits client connections: from allowed networks, and no
// more than MaxConns at once. Refusals are answered and logged here, before
// net/http sees the connection.
type guardListener struct {
	net.Listener
	s      *Server
	http   bool // answer refusals with an HTTP response (not in sidecar mode)
	active atomic.Int64
}

func (s *Server) guard(ln net.Listener, httpAnswers bool) *guardListener {
	return &guardListener{Listener: ln, s: s, http: httpAnswers}
}

func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if reason, status := l.admit(c); reason != "" {
			go l.refuse(c, status, reason)
			continue
		}
		tcp, _ := c.(*net.TCPConn)
		return &guardedConn{Conn: c, raw: newRawSock(tcp), l: l, start: time.Now()}, nil
	}
}

// admit returns why c may not come in (and the HTTP status that says so),
// or "". A connection admitted counts against MaxConns until it closes.
func (l *guardListener) admit(c net.Conn) (reason string, status int) {
	if !l.s.clientAllowed(c.RemoteAddr().String()) {
		l.s.metrics.refused.WithLabelValues("client_not_allowed").Inc()
		return fmt.Sprintf("client %s is not in access.allow_clients", c.RemoteAddr()), http.StatusForbidden
	}
	n := l.active.Add(1)
	if max := l.s.opts.Limits.MaxConns; max > 0 && n > int64(max) {
		l.active.Add(-1)
		l.s.metrics.refused.WithLabelValues("max_conns").Inc()
		return fmt.Sprintf("%d client connections open, limits.max_conns is %d", n-1, max), http.StatusServiceUnavailable
	}
	return "", 0
}

// clientAllowed says whether access.allow_clients lets addr (IP:port) in.
func (s *Server) clientAllowed(addr string) bool {
	allow := s.dyn.Load().Access.AllowClients
	if len(allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(addr)
	for _, p := range allow {
		if err == nil && p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

func (l *guardListener) refuse(c net.Conn, status int, reason string) {
	defer c.Close()
	l.s.log.Warn("connection refused", zap.String("client_addr", c.RemoteAddr().String()), zap.Int("status", status), zap.String("reason", reason))
	if !l.http {
		return
	}
	body := "certlens: " + reason + "\n"
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// guardedConn is an admitted client connection. It counts what it read so
// that a connection net/http drops before any request (a malformed or
// oversized header, a header that never ended) can be explained.
type guardedConn struct {
	net.Conn
	raw   *rawSock // Conn's reads and writes without waking sysmon; nil off Linux
	l     *guardListener
	start time.Time
	read  atomic.Int64
	// served: net/http handed a request on it to the handler.
	served atomic.Bool
	once   sync.Once
}

func (c *guardedConn) Read(b []byte) (int, error) {
	var n int
	var err error
	if c.raw != nil {
		n, err = c.raw.Read(b)
	} else {
		n, err = c.Conn.Read(b)
	}
	c.read.Add(int64(n))
	return n, err
}

func (c *guardedConn) Write(b []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Write(b)
	}
	return c.Conn.Write(b)
}

// CloseWrite and CloseRead pass half-closes on (goproxy relays them).
func (c *guardedConn) CloseWrite() error {
	if c.raw != nil {
		return c.raw.CloseWrite()
	}
	if h, ok := c.Conn.(halfCloser); ok {
		return h.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *guardedConn) CloseRead() error {
	if c.raw != nil {
		return c.raw.CloseRead()
	}
	if h, ok := c.Conn.(halfCloser); ok {
		return h.CloseRead()
	}
	return errors.ErrUnsupported
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.l.active.Add(-1) })
	return c.Conn.Close()
}

type connKey struct{}

// connContext lets the handler mark its connection as served (StateActive
// comes as soon as a byte is read, before net/http rejects a bad request).
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func markServed(r *http.Request) {
	if g, ok := r.Context().Value(connKey{}).(*guardedConn); ok {
		g.served.Store(true)
	}
}

// connState explains a connection net/http closed without ever serving a
// request on it: those are answered (400, 431) or dropped by net/http
// itself, and would otherwise leave no trace.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	g, ok := c.(*guardedConn)
	if !ok {
		return
	}
	switch state {
	case http.StateClosed:
		if g.served.Load() || g.read.Load() == 0 {
			return
		}
		var reason string
		switch read, age := g.read.Load(), time.Since(g.start); {
		case read > int64(s.opts.Limits.MaxHeaderBytes):
			reason = fmt.Sprintf("request header over limits.max_header_bytes (%d bytes); answered 431", s.opts.Limits.MaxHeaderBytes)
		case age >= s.opts.Limits.ReadHeaderTimeout:
			reason = fmt.Sprintf("no complete request header within limits.read_header_timeout (%s): a slow or stalled client", s.opts.Limits.ReadHeaderTimeout)
		default:
			reason = "malformed request (not HTTP, or a bad request line or header); answered 400"
		}
		s.metrics.refused.WithLabelValues("bad_request").Inc()
		s.log.Warn("request refused", zap.String("client_addr", c.RemoteAddr().String()), zap.Int64("bytes", g.read.Load()), zap.String("reason", reason))
	}
}

// authorize checks Proxy-Authorization against access.users: it says why
// the request may not pass, or "".
func (s *Server) authorize(r *http.Request) string {
	return s.checkBasic(r, "Proxy-Authorization")
}

// checkBasic checks the Basic credentials in header against access.users.
func (s *Server) checkBasic(r *http.Request, header string) string {
	users := s.dyn.Load().Access.Users
	if len(users) == 0 {
		return ""
	}
	scheme, creds, _ := strings.Cut(r.Header.Get(header), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "no " + header + ": Basic header"
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(creds))
	if err != nil {
		return header + " is not base64"
	}
	name, pass, ok := strings.Cut(string(raw), ":")
	hash, known := users[name]
	if !ok || !known {
		return fmt.Sprintf("unknown user %q", name)
	}
	if !s.auth.check(name, pass, hash) {
		return fmt.Sprintf("wrong password for user %q", name)
	}
	return ""
}

// authCache remembers credentials that verified: bcrypt is meant to be
// slow, and a browser sends the header with every request. Only a digest
// of what was presented is kept, never the password.
type authCache struct {
	mu sync.Mutex
	ok map[[32]byte]bool
}

const maxAuthCache = 1024

func (a *authCache) check(name, pass, hash string) bool {
	key := sha256.Sum256([]byte(name + "\x00" + pass + "\x00" + hash))
	a.mu.Lock()
	hit := a.ok[key]
	a.mu.Unlock()
	if hit {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if a.ok == nil || len(a.ok) >= maxAuthCache {
		a.ok = map[[32]byte]bool{}
	}
	a.ok[key] = true
	a.mu.Unlock()
	return true
}

// hostRefused says why the proxy will not reach host (access.deny_hosts,
// access.allow_hosts), or "".
func hostRefused(dyn *Reloadable, host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range dyn.DenyHosts {
		if ok, _ := path.Match(p, host); ok {
			return fmt.Sprintf("host %s matches access.deny_hosts %q", host, p)
		}
	}
	if len(dyn.AllowHosts) == 0 {
		return ""
	}
	for _, p := range dyn.AllowHosts {
		if ok, _ := path.Match(p, host); ok {
			return ""
		}
	}
	return fmt.Sprintf("host %s is not in access.allow_hosts", host)
}
