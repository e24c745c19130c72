package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"
)

// errOwnListener is a dial refused because its address is one of
// certlens's own listeners: the proxy would relay to itself (a loop) or to
// its admin server (metrics, pprof), which is meant for this host only.
var errOwnListener = errors.New("certlens does not relay to its own listeners")

// ownListeners are the addresses certlens listens on.
type ownListeners struct {
	mu    sync.RWMutex
	addrs []netip.AddrPort
}

func (o *ownListeners) add(a net.Addr) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return
	}
	ap := tcp.AddrPort()
	o.mu.Lock()
	o.addrs = append(o.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	o.mu.Unlock()
}

// control is the dialer's Control hook: it sees every address a name
// resolved to, just before the connect, which no check of the name can.
func (o *ownListeners) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	if o.holds(ap) {
		return fmt.Errorf("%w: %s is where certlens listens", errOwnListener, address)
	}
	return nil
}

// holds reports whether a connection to ap would reach one of the
// listeners: the same port, and the listener's own address or, for a
// listener on every interface, any address of this host.
func (o *ownListeners) holds(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, l := range o.addrs {
		if l.Port() != ap.Port() {
			continue
		}
		if l.Addr() == ip || l.Addr().IsUnspecified() && isLocal(ip) {
			return true
		}
	}
	return false
}

// isLocal reports whether ip is an address of this host.
func isLocal(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		// Unknown interfaces: refuse rather than risk reaching a
		// listener meant for this host.
		return true
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if local, ok := netip.AddrFromSlice(n.IP); ok && local.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// httpPortRefused says why a plain-HTTP request may not go to u's port
// (allow_http_ports), or "".
func (s *Server) httpPortRefused(u *url.URL) string {
	port := 80
	if u.Port() != "" {
		p, err := strconv.Atoi(u.Port())
		if err != nil {
			return fmt.Sprintf("port %q is not a number", u.Port())
		}
		port = p
	} else if u.Scheme == "https" {
		port = 443
	}
	dyn := s.dyn.Load()
	if dyn.AllowHTTPPort == nil || !dyn.AllowHTTPPort(port) {
		return fmt.Sprintf("port %d is not in allow_http_ports (%s)", port, dyn.AllowHTTPPortsText)
	}
	return ""
}

// refuse answers 403 with the reason, logs the refusal and counts it.
// The connection closes after: a client that does not read the status of
// a refused CONNECT would otherwise send TLS into HTTP.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, kind, reason, hint string) {
	s.metrics.refused.WithLabelValues(kind).Inc()
	msg := "connect refused"
	what := "CONNECT refused: "
	if r.Method != http.MethodConnect {
		msg, what = "request refused", "request refused: "
	}
	s.log.Warn(msg, zap.String("client_addr", r.RemoteAddr), zap.String("target", targetOf(r)), zap.String("reason", reason))
	w.Header().Set("Connection", "close")
	http.Error(w, "certlens: "+what+reason+hint, http.StatusForbidden)
}

// targetOf is where a request was going: host:port for CONNECT, the
// URL's host otherwise (never its path or query, which may hold tokens).
func targetOf(r *http.Request) string {
	if r.Method == http.MethodConnect || r.URL == nil || r.URL.Host == "" {
		return r.Host
	}
	return r.URL.Host
}

// refuseOwn turns a plain-HTTP request whose dial reached one of certlens's
// own listeners into a 403 with an event, as CONNECT gets.
func (s *Server) refuseOwn(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	if resp != nil || ctx.Req == nil || !errors.Is(ctx.Error, errOwnListener) {
		return resp
	}
	reason := ctx.Error.Error()
	var oe *net.OpError
	if errors.As(ctx.Error, &oe) && oe.Err != nil {
		reason = oe.Err.Error()
	}
	s.metrics.refused.WithLabelValues("self").Inc()
	s.log.Warn("request refused", zap.String("client_addr", ctx.Req.RemoteAddr), zap.String("target", targetOf(ctx.Req)),
		zap.String("reason", reason))
	out := goproxy.NewResponse(ctx.Req, goproxy.ContentTypeText, http.StatusForbidden, "certlens: request refused: "+reason+"\n")
	out.Header.Set("Connection", "close")
	return out
}
