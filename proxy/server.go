package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/rules"
)

// Options configure a Server; cmd/certlens fills them from config.Config.
type Options struct {
	Mode event.Mode // observe (the default), intercept or sidecar
	// AllowPort says whether CONNECT may reach a port; nil allows none.
	AllowPort func(port int) bool
	// AllowPortsText is shown in refusals ("443,4443,8443").
	AllowPortsText string
	// AllowHTTPPort says whether a plain-HTTP request may reach a port;
	// nil allows none.
	AllowHTTPPort      func(port int) bool
	AllowHTTPPortsText string
	IdleTimeout        time.Duration
	DialTimeout        time.Duration
	WatchRenegotiation bool
	// NoParse relays tunnels without looking at them (tunnel.parse false):
	// no handshake events, only "connection closed"; for measuring what
	// parsing costs.
	NoParse bool
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin server.
	Pprof bool
	// Page, when set, is the live page, served at the admin server's root
	// behind pageGuard; PageURL is where to open it, for the listening event.
	Page    http.Handler
	PageURL string
	// Collectors are further series for /metrics (the OTLP exporter's drop
	// counter).
	Collectors []prometheus.Collector
	Rules      rules.Options
	Sidecar    SidecarOptions
	Access     Access
	Limits     Limits
	// AllowHosts and DenyHosts: see Reloadable.
	AllowHosts, DenyHosts []string
	// PACHosts: see Reloadable.
	PACHosts  []string
	Decrypt   DecryptOptions
	Intercept InterceptOptions
	// Dial replaces the upstream dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Reloadable is what a config reload may change while tunnels run; each
// connection, tunnel or handshake reads it when it starts.
type Reloadable struct {
	AllowPort          func(port int) bool
	AllowPortsText     string
	AllowHTTPPort      func(port int) bool
	AllowHTTPPortsText string
	Rules              rules.Options
	// AllowHosts and DenyHosts are lower-case host patterns (access.*).
	AllowHosts, DenyHosts []string
	// Access: users and client networks (access.users, access.allow_clients).
	Access Access
	// IdleTimeout and DialTimeout are those of tunnels opened from now on.
	IdleTimeout, DialTimeout time.Duration
	// PACHosts are the host patterns /proxy.pac sends through certlens,
	// with Rules.ClientCertHosts (pac_hosts).
	PACHosts []string
}

// Server is the forward proxy.
type Server struct {
	opts  Options
	log   *zap.Logger
	gp    *goproxy.ProxyHttpServer
	http  *http.Server
	idPfx string
	seq   atomic.Uint64

	metrics   *metrics
	auth      authCache
	releasing atomic.Bool   // a releaseWhenIdle is pending
	opened    atomic.Uint64 // tunnels opened so far
	release   func()        // debug.FreeOSMemory; tests count the calls
	quiet     time.Duration // how long without tunnels before release
	dyn       atomic.Pointer[Reloadable]
	serving   atomic.Bool
	own       ownListeners                // where certlens itself listens: never a target
	proxyAddr atomic.Pointer[net.TCPAddr] // the proxy listener's, for /proxy.pac
	sidecar   net.Listener
	intercept *interceptor // intercept mode's own state; nil in the others

	mu       sync.Mutex
	tunnels  map[*tunnel]struct{}
	drained  chan struct{} // closed when tunnels empties during shutdown
	stopping bool
}

// New builds a Server; Serve starts it.
func New(opts Options, log *zap.Logger) *Server {
	if opts.Mode == "" {
		opts.Mode = event.ModeObserve
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Limits.ReadHeaderTimeout <= 0 {
		opts.Limits.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.Limits.MaxHeaderBytes <= 0 {
		opts.Limits.MaxHeaderBytes = 64 << 10
	}
	if opts.Mode == event.ModeIntercept {
		// certlens's own upstream connections are where IIS renegotiates.
		opts.WatchRenegotiation = true
	}
	s := &Server{opts: opts, log: log, tunnels: map[*tunnel]struct{}{}, metrics: newMetrics(),
		release: debug.FreeOSMemory, quiet: time.Second}
	s.Reload(Reloadable{AllowPort: opts.AllowPort, AllowPortsText: opts.AllowPortsText,
		AllowHTTPPort: opts.AllowHTTPPort, AllowHTTPPortsText: opts.AllowHTTPPortsText, Rules: opts.Rules,
		AllowHosts: opts.AllowHosts, DenyHosts: opts.DenyHosts, Access: opts.Access,
		IdleTimeout: opts.IdleTimeout, DialTimeout: opts.DialTimeout, PACHosts: opts.PACHosts})
	s.metrics.reg.MustRegister(opts.Collectors...)
	var b [3]byte
	_, _ = rand.Read(b[:])
	s.idPfx = hex.EncodeToString(b[:])

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{log.Named("goproxy")}
	// Plain-HTTP requests are forwarded directly, never through whatever
	// proxy the environment names: certlens must not chain by surprise.
	gp.Tr = &http.Transport{Proxy: nil, DialContext: s.dial, ResponseHeaderTimeout: time.Minute, IdleConnTimeout: 90 * time.Second}
	// CONNECT in observe mode never reaches goproxy (connect); in
	// intercept mode goproxy terminates TLS and the upstream side is
	// certlens's own transport. Never a proxy named by the environment.
	gp.ConnectDial = nil
	gp.NonproxyHandler = http.HandlerFunc(s.nonProxy)
	gp.OnResponse().DoFunc(s.refuseOwn)
	gp.OnResponse().DoFunc(s.logHTTP)
	s.gp = gp
	if opts.Mode == event.ModeIntercept {
		s.setupIntercept()
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: opts.Limits.ReadHeaderTimeout,
		MaxHeaderBytes:    opts.Limits.MaxHeaderBytes,
		ConnState:         s.connState,
		ConnContext:       connContext,
		ErrorLog:          zap.NewStdLog(log.Named("http").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))),
	}
	return s
}

// ExpectedCerts are the certificates the rules expect clients to send,
// as of the last reload.
func (s *Server) ExpectedCerts() []rules.ExpectedCert {
	return s.dyn.Load().Rules.ExpectCerts
}

// Reload swaps in what a config reload may change; tunnels already open
// keep relaying, their next events use the new rules.
func (s *Server) Reload(r Reloadable) {
	if r.DialTimeout <= 0 {
		r.DialTimeout = s.opts.DialTimeout
	}
	s.dyn.Store(&r)
}

// Serve accepts clients on ln until Shutdown: proxy clients, or in sidecar
// mode the server's clients themselves.
func (s *Server) Serve(ln net.Listener) error {
	s.own.add(ln.Addr())
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.proxyAddr.Store(a)
	}
	s.serving.Store(true)
	defer s.serving.Store(false)
	if s.opts.Mode == event.ModeSidecar {
		return s.serveSidecar(s.guard(ln, false))
	}
	s.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("mode", string(s.opts.Mode)),
		zap.String("allow_ports", s.opts.AllowPortsText), zap.Bool("auth", len(s.opts.Access.Users) > 0),
		zap.Int("allow_clients", len(s.opts.Access.AllowClients)), zap.Int("max_conns", s.opts.Limits.MaxConns),
		zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)), s.pageField())
	err := s.http.Serve(s.guard(ln, true))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for open tunnels until ctx is done, then
// closes what is left. Every tunnel still writes its events.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.mu.Lock()
	if s.sidecar != nil {
		_ = s.sidecar.Close()
	}
	s.stopping = true
	n := len(s.tunnels)
	if n > 0 && s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	if n > 0 {
		s.log.Info("waiting for open tunnels", zap.Int("tunnels", n))
		select {
		case <-drained:
		case <-ctx.Done():
			s.mu.Lock()
			left := slices.Collect(maps.Keys(s.tunnels))
			s.mu.Unlock()
			for _, t := range left {
				t.setReason(closeShutdown, nil)
				_ = t.Close()
			}
		}
	}
	if s.intercept != nil {
		s.intercept.closeBrowsers()
	}
	return err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	markServed(r)
	if why := s.authorize(r); why != "" {
		s.metrics.refused.WithLabelValues("auth").Inc()
		s.log.Warn("request refused", zap.String("client_addr", r.RemoteAddr), zap.String("target", r.Host),
			zap.Int("status", http.StatusProxyAuthRequired), zap.String("reason", "proxy authentication: "+why))
		w.Header().Set("Proxy-Authenticate", `Basic realm="certlens"`)
		http.Error(w, "certlens: proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	// The credentials are for certlens, never for the server.
	r.Header.Del("Proxy-Authorization")
	host := r.URL.Hostname()
	if r.Method == http.MethodConnect {
		host, _, _ = net.SplitHostPort(r.Host)
	}
	if why := hostRefused(s.dyn.Load(), host); host != "" && why != "" {
		s.refuse(w, r, "host", why, "")
		return
	}
	if r.Method != http.MethodConnect && r.URL.IsAbs() {
		if why := s.httpPortRefused(r.URL); why != "" {
			s.refuse(w, r, "port", why, "; add it with --allow-http-ports")
			return
		}
	}
	if r.Method == http.MethodConnect {
		host, portText, err := net.SplitHostPort(r.Host)
		port, perr := strconv.Atoi(portText)
		if err != nil || perr != nil || host == "" {
			s.log.Warn("connect refused", zap.String("client_addr", r.RemoteAddr), zap.String("target", r.Host),
				zap.String("reason", "CONNECT target is not host:port"))
			s.metrics.refused.WithLabelValues("bad_target").Inc()
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("certlens: CONNECT target %q is not host:port", r.Host), http.StatusBadRequest)
			return
		}
		if dyn := s.dyn.Load(); dyn.AllowPort == nil || !dyn.AllowPort(port) {
			s.refuse(w, r, "port", fmt.Sprintf("port %d is not in allow_ports (%s)", port, dyn.AllowPortsText), "; add it with --allow-ports")
			return
		}
		if s.opts.Mode != event.ModeIntercept {
			s.connect(w, r)
			return
		}
		w, r = s.interceptConnect(w, r)
	}
	s.gp.ServeHTTP(w, r)
}

// connect serves an observe-mode CONNECT without goproxy, which has
// nothing to add to a tunnel and costs per tunnel: three goroutines of
// its own, formatting, logging checks. Here the handler's goroutine,
// whose stack has already grown, carries one direction, and a dial
// failure is an ordinary 502 that says why.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "certlens: this connection cannot carry a tunnel", http.StatusInternalServerError)
		return
	}
	meta := event.Meta{ConnID: s.nextID(), Mode: s.opts.Mode, ClientAddr: r.RemoteAddr, Target: r.Host}
	t, err := s.openTunnel(r.Context(), meta, "tcp", r.Host, s.opts.Decrypt.Secrets)
	if errors.Is(err, errOwnListener) {
		s.refuse(w, r, "self", err.Error(), "")
		return
	}
	if err != nil {
		w.Header().Set("Connection", "close")
		http.Error(w, "certlens: cannot reach "+r.Host+": "+err.Error(), http.StatusBadGateway)
		return
	}
	client, rw, err := hj.Hijack()
	if err != nil {
		t.setReason(closeClientError, err)
		_ = t.Close()
		return
	}
	established := "HTTP/1.1 200 Connection established\r\n\r\n"
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		established = "HTTP/1.0 200 Connection established\r\n\r\n"
	}
	if _, err := io.WriteString(client, established); err != nil {
		t.setReason(closeClientError, err)
		_ = client.Close()
		_ = t.Close()
		return
	}
	// A client may send its ClientHello with the CONNECT, without waiting
	// for the answer: net/http has read it already.
	if n := rw.Reader.Buffered(); n > 0 {
		early, _ := rw.Reader.Peek(n)
		if _, err := t.Write(early); err != nil {
			_ = client.Close()
			_ = t.Close()
			return
		}
	}
	relay(client, t)
}

func (s *Server) nonProxy(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "certlens is an HTTP proxy: set this address as your browser's proxy (or curl -x), do not open it directly.", http.StatusBadRequest)
}

func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.opts.Dial != nil {
		return s.opts.Dial(ctx, network, addr)
	}
	// No TCP keep-alive: the tunnel's idle timeout ends dead connections
	// (see serve's listener). The check runs on each address the name
	// resolved to, just before connecting, so a name that resolves to
	// certlens itself (or is re-pointed there) cannot loop it or reach the
	// admin server through the proxy.
	d := net.Dialer{Timeout: s.dyn.Load().DialTimeout, KeepAlive: -1, Control: s.own.control}
	return d.DialContext(ctx, network, addr)
}

func (s *Server) nextID() string {
	return s.idPfx + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}

// openTunnel dials the server and wraps the connection in a tracked
// tunnel; a failed dial is the connection's "connection closed" event.
func (s *Server) openTunnel(ctx context.Context, meta event.Meta, network, addr string, secrets *keylog.Store) (*tunnel, error) {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return nil, errors.New("certlens is shutting down")
	}
	start := time.Now()
	c, err := s.dial(ctx, network, addr)
	if err != nil {
		c := event.NewClosed(meta, handshake.Observation{})
		c.SetDuration(time.Since(start))
		c.Reason = "dial failed: " + err.Error()
		s.log.Warn("connection closed", zap.Inline(c))
		return nil, err
	}
	// Observe and intercept: the browser's leg is a CONNECT on the
	// proxy's port, usually loopback; the TLS a sensor sees is this one.
	meta.CommunityID = communityid.FromAddrs(0, c.LocalAddr(), c.RemoteAddr())
	t := s.newTunnel(meta, secrets)
	t.attach(c)
	s.track(t)
	return t, nil
}

func (s *Server) track(t *tunnel) {
	s.opened.Add(1)
	s.mu.Lock()
	s.tunnels[t] = struct{}{}
	s.mu.Unlock()
	s.metrics.active.Inc()
	s.metrics.connections.Inc()
}

func (s *Server) tunnelDone(t *tunnel) {
	s.metrics.active.Dec()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tunnels, t)
	if len(s.tunnels) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	if len(s.tunnels) == 0 {
		s.releaseWhenIdle()
	}
}

// releaseWhenIdle gives freed memory back to the OS after a whole second
// without tunnels: Go's scavenger returns it slowly, and a proxy left
// running between diagnoses should not keep a burst's peak. A second in
// which tunnels came and went is not idle: a browser opening one every
// few hundred milliseconds would otherwise cost a forced GC a second.
func (s *Server) releaseWhenIdle() {
	if !s.releasing.CompareAndSwap(false, true) {
		return
	}
	opened := s.opened.Load()
	time.AfterFunc(s.quiet, func() {
		s.releasing.Store(false)
		s.mu.Lock()
		idle := len(s.tunnels) == 0
		s.mu.Unlock()
		switch {
		case !idle:
			// The last of them to close arms it again.
		case s.opened.Load() != opened:
			s.releaseWhenIdle()
		default:
			s.release()
		}
	})
}

func (s *Server) logHandshake(t *tunnel, h *handshake.Handshake, ev rules.Evidence) {
	ev.KeylogSet = s.opts.Decrypt.Secrets != nil
	s.emitHandshake(t, h, event.Diagnose(t.meta, h, ev, s.dyn.Load().Rules))
}

// emitHandshake counts and writes one handshake event at its verdict's level.
func (s *Server) emitHandshake(t *tunnel, h *handshake.Handshake, e *event.Handshake) {
	t.fold(e)
	issuerBytes := 0
	if h.CertRequest != nil {
		issuerBytes = h.CertRequest.IssuerBytes
	}
	s.metrics.observe(e, issuerBytes, h.CertRequest != nil, h.Unparsed || len(h.Errors) > 0)
	switch e.Level() {
	case "error":
		s.log.Error("handshake", zap.Inline(e))
	case "warn":
		s.log.Warn("handshake", zap.Inline(e))
	default:
		s.log.Info("handshake", zap.Inline(e))
	}
}

func (s *Server) logClosed(t *tunnel) {
	obs := t.parser.Observation()
	if len(obs.Errors) > 0 {
		s.metrics.parseErrors.Inc()
	}
	reason := closeWords[closeUnknown]
	if r := t.reason.Load(); r != nil {
		reason = r.String()
	}
	c := event.NewClosed(t.meta, obs)
	c.BytesUp, c.BytesDown, c.Reason = t.up.Load(), t.down.Load(), reason
	c.SetDuration(time.Since(t.start))
	t.conclude(c)
	s.log.Info("connection closed", zap.Inline(c))
}

// logHTTP notes a plain-HTTP request briefly: method, host, path, status.
// Never headers, cookies or bodies.
func (s *Server) logHTTP(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	if ctx.Req == nil || ctx.Req.Method == http.MethodConnect {
		return resp
	}
	fields := []zap.Field{zap.String("client_addr", ctx.Req.RemoteAddr), zap.String("method", ctx.Req.Method),
		zap.String("host", ctx.Req.URL.Host), zap.String("path", ctx.Req.URL.Path)}
	if ic, ok := ctx.UserData.(*icConn); ok {
		fields = append(fields, zap.String("conn_id", ic.meta.ConnID))
		if o := ic.last.Load(); o != nil && o.Substatus != "" && resp != nil {
			fields = append(fields, zap.String("http_substatus", o.Substatus))
		}
	}
	if resp != nil {
		fields = append(fields, zap.Int("status", resp.StatusCode))
	} else if ctx.Error != nil {
		err := ctx.Error
		// A *url.Error repeats the URL, query string (and its tokens) included.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		fields = append(fields, zap.String("error", err.Error()))
	}
	s.log.Info("http", fields...)
	return resp
}
