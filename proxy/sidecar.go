package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"path"
	"strings"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
)

// SidecarOptions configure sidecar mode: a plain TCP listener in front of
// the server, no browser configuration needed.
type SidecarOptions struct {
	Upstream string
	Routes   []Route
	// ProxyProtocol is 0 (off), 1 or 2: the PROXY protocol version of the
	// header sent to the upstream so it sees the client's address.
	ProxyProtocol int
}

// Route sends connections whose SNI matches Pattern (path.Match syntax) to Upstream.
type Route struct{ Pattern, Upstream string }

// sniWait bounds how long a sidecar waits for a ClientHello before it picks
// the default upstream: a protocol where the server speaks first sends none.
const sniWait = 3 * time.Second

func (s *Server) serveSidecar(ln net.Listener) error {
	s.mu.Lock()
	s.sidecar = ln
	s.mu.Unlock()
	s.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("mode", string(s.opts.Mode)),
		zap.String("upstream", s.opts.Sidecar.Upstream), zap.Int("routes", len(s.opts.Sidecar.Routes)), s.pageField())
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			stopping := s.stopping
			s.mu.Unlock()
			if stopping || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.handleSidecar(c)
	}
}

func (s *Server) handleSidecar(client net.Conn) {
	// The client's flow is the one a sensor in front of the server sees;
	// the upstream leg is usually the same host's loopback or pod network.
	meta := event.Meta{ConnID: s.nextID(), Mode: s.opts.Mode, ClientAddr: client.RemoteAddr().String(), Target: s.opts.Sidecar.Upstream,
		CommunityID: communityid.FromAddrs(0, client.RemoteAddr(), client.LocalAddr())}
	t := s.newTunnel(meta, s.opts.Decrypt.Secrets)
	var pending []byte
	if len(s.opts.Sidecar.Routes) > 0 {
		pending = s.readClientHello(client, t)
		if ch := t.parser.ClientHello(); ch != nil {
			t.meta.Target = s.route(ch.ServerName)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.dyn.Load().DialTimeout)
	up, err := s.dial(ctx, "tcp", t.meta.Target)
	cancel()
	if err == nil && s.opts.Sidecar.ProxyProtocol > 0 {
		h := proxyproto.HeaderProxyFromAddrs(byte(s.opts.Sidecar.ProxyProtocol), client.RemoteAddr(), client.LocalAddr())
		if _, werr := h.WriteTo(up); werr != nil {
			_ = up.Close()
			err = werr
		}
	}
	if err != nil {
		_ = client.Close()
		t.mu.Lock()
		t.logHandshakes(t.parser.Close(), true)
		t.mu.Unlock()
		c := event.NewClosed(t.meta, t.parser.Observation())
		c.SetDuration(time.Since(start))
		c.Reason = "dial failed: " + err.Error()
		t.conclude(c)
		s.log.Warn("connection closed", zap.Inline(c))
		return
	}
	t.attach(up)
	s.track(t)
	if len(pending) > 0 {
		// Already fed to the parser while reading the ClientHello: relay only.
		n, err := up.Write(pending)
		t.moved(false, int64(n))
		if err != nil {
			t.setReason(closeServerWriteError, err)
			_ = client.Close()
			_ = t.Close()
			return
		}
	}
	relay(client, t)
}

// relay copies both ways until both directions are done, passing
// half-closes on, then closes both ends. The server->client copy runs in
// the caller's goroutine: one goroutine fewer per tunnel.
func relay(client net.Conn, t *tunnel) {
	up := make(chan struct{})
	go func() {
		_, err := io.Copy(t, client) // client -> server, through the parser
		if err != nil {
			// A failed write to the server already named itself; this
			// names a failed read from the client, before the close below
			// makes the other direction fail with "use of closed".
			t.setReason(closeClientError, err)
			_ = t.Conn.Close()
		} else {
			_ = t.CloseWrite()
		}
		close(up)
	}()
	_, err := io.Copy(client, t) // server -> client, through the parser
	if cw, ok := client.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
	} else {
		if err != nil {
			t.setReason(closeClientError, err)
		}
		_ = client.Close()
	}
	<-up
	_ = client.Close()
	_ = t.Close()
}

// readClientHello reads the client's first bytes until the parser has a
// ClientHello (or knows it will get none), feeding them to the parser, and
// returns them to be relayed once the upstream is chosen.
func (s *Server) readClientHello(client net.Conn, t *tunnel) []byte {
	_ = client.SetReadDeadline(time.Now().Add(sniWait))
	defer func() { _ = client.SetReadDeadline(time.Time{}) }()
	var pending []byte
	buf := make([]byte, 4096)
	for len(pending) < 64<<10 {
		n, err := client.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			t.touch()
			t.feed(handshake.FromClient, buf[:n])
			if t.parser.ClientHello() != nil || t.parser.NotTLS() != "" || t.parser.Done() {
				break
			}
		}
		if err != nil {
			break
		}
	}
	return pending
}

// route picks the upstream for an SNI: the first matching route, else the default.
func (s *Server) route(sni string) string {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	for _, r := range s.opts.Sidecar.Routes {
		if ok, _ := path.Match(strings.ToLower(r.Pattern), sni); ok && sni != "" {
			return r.Upstream
		}
	}
	return s.opts.Sidecar.Upstream
}
