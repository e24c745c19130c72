package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/logging"
	"github.com/certlens/certlens/internal/report/page"
	"github.com/certlens/certlens/proxy"
	"github.com/certlens/certlens/rules"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the diagnostic proxy and log one event per TLS handshake",
		Long: `Run certlens as an HTTP forward proxy (observe mode, the default), or as a
sidecar in front of one server (--mode sidecar --upstream HOST:PORT).

Observe: set the browser's proxy to the listen address (Windows: Settings >
Network > Proxy > Manual, 127.0.0.1:8080; Chromium: --proxy-server=127.0.0.1:8080;
curl: -x http://127.0.0.1:8080). HTTPS goes through CONNECT tunnels that
certlens relays byte for byte while it reads the TLS handshake, and for each
handshake it writes a "handshake" event with the server's certificate request,
the client certificate sent and a verdict; each tunnel ends with a
"connection closed" event.

Intercept: like observe, but certlens terminates the browser's TLS with a
certificate from its own CA ("certlens ca init"; the browser must trust it)
and connects to the server itself, so it sees TLS 1.3 and renegotiation
certificate requests and the HTTP status (403.7 ...). Each browser connection
gets its own upstream connection; intercept.client_certs names certificates
to present; the browser is asked for a certificate with the issuer list the
server sent, and its choice is in the events.

Sidecar: clients connect to the listen address as if it were the server;
certlens relays each connection to --upstream (or a sidecar.routes upstream
chosen by SNI), with the same events. Nothing to configure in any browser.

The admin server (--admin-listen, default 127.0.0.1:9090) serves /healthz,
/readyz, Prometheus /metrics and, at /, the live page (--ui=false turns it
off): the latest handshakes as they happen, each with the issuer list the
server asked with beside the client's chain, findings and verdict.

Settings come, in rising precedence, from defaults, a config file
(--config, ./certlens.yaml or $XDG_CONFIG_HOME/certlens/certlens.yaml; see
certlens.example.yaml), CERTLENS_* environment variables, and flags. When
the file changes (or on SIGHUP) certlens reloads it: these keys take their
new values, for the connections that follow:
` + wrapList(config.LiveKeys(), "  ", 78) + `
a change to any other key is named in a "config reload: change needs a
restart" warning; a bad file is rejected and the running config kept.`,
		Example: `  certlens serve
  certlens serve --log-format console
  certlens serve --log-file handshakes.jsonl --allow-ports 443,8443,10000-20000
  certlens serve --mode intercept --keylog /tmp/certlens-keys.log
  certlens serve --mode sidecar --listen 0.0.0.0:8443 --upstream web:443
  certlens serve --decrypt-keylog ~/sslkeys.log   # the file SSLKEYLOGFILE names
  tail -f handshakes.jsonl | jq 'select(.msg=="handshake" and .verdict!="ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cmd.Flags(), cfg)
		},
	}
	config.AddServeFlags(cmd.Flags())
	return cmd
}

func serve(ctx context.Context, flags *pflag.FlagSet, cfg *config.Config) error {
	// Catch signals before anything listens: a Ctrl-C that arrives as soon
	// as the port accepts must still stop certlens gracefully.
	ctx, stop := signal.NotifyContext(ctx, shutdownSignals...)
	defer stop()
	// Observe and sidecar modes only relay and parse: one P spares the
	// scheduler's thread wake-ups between the two copies of every tunnel
	// (certlens-bench: 11% less CPU per tunnelled handshake, the same
	// throughput). Intercept mode does TLS twice per connection and keeps
	// every core. A GOMAXPROCS in the environment wins.
	if cfg.Mode != config.ModeIntercept && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	expect, err := loadExpectCerts(cfg.ExpectCerts)
	if err != nil {
		return err
	}
	level := zap.NewAtomicLevel()
	exp, err := newExporter(cfg)
	if err != nil {
		return err
	}
	// The page's events come from the log itself: what the page shows is
	// what the log has, at the log's level.
	var hub *logging.Hub
	var cores []zapcore.Core
	if cfg.AdminUI && cfg.AdminListen != "" {
		hub = logging.NewHub(logging.DefaultHubSize, logging.DefaultHubBytes)
	}
	if exp != nil {
		cores = append(cores, exp.Core())
	}
	log, closeLog, err := logging.New(logging.Options{Format: cfg.Log.Format, Level: cfg.Log.Level, File: cfg.Log.File, Atomic: &level, Hub: hub, Cores: cores})
	if err != nil {
		// config checked the format, the level and log.file's directory:
		// what is left is a file certlens may not open.
		return &config.Error{Key: "log.file", Problem: strings.TrimPrefix(err.Error(), "log.file: ") + "; give a file certlens may write, or none"}
	}
	defer closeLog()
	if exp != nil {
		exp.SetLogger(log)
		defer func() {
			// What the collector has not taken by now is dropped (and
			// reported); shutdown does not wait longer for it.
			sctx, cancel := context.WithTimeout(context.Background(), cfg.OTLP.Timeout)
			defer cancel()
			_ = exp.Shutdown(sctx)
		}()
		log.Info("otlp export", zap.String("endpoint", cfg.OTLP.Endpoint), zap.String("protocol", cfg.OTLP.Protocol))
	}
	for _, w := range cfg.Warnings {
		log.Warn("config warning", zap.String("warning", w))
	}
	if cfg.ConfigFile != "" {
		log.Info("config read", zap.String("file", cfg.ConfigFile))
	}

	// No TCP keep-alive on client connections: tunnel.idle_timeout (always
	// set) ends dead ones, and the probes' four setsockopt calls per
	// connection showed in the proxy's profile.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		return &config.Error{Key: "listen", Problem: fmt.Sprintf("cannot listen on %s: %s; set another address with --listen", cfg.Listen, listenProblem(err))}
	}
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			_ = ln.Close()
			return &config.Error{Key: "admin_listen", Problem: fmt.Sprintf("cannot listen on %s: %s; set another address with --admin-listen, or turn the admin server off with --admin-listen=", cfg.AdminListen, listenProblem(err))}
		}
	}
	opts := proxyOptions(cfg, expect)
	opts.Pprof = cfg.AdminPprof
	// The page asks the server for the expected certificates, which a
	// reload may change; the server is made below.
	var srv *proxy.Server
	if hub != nil {
		opts.Page = page.Handler(hub, func() []page.Expected { return page.NewExpected(srv.ExpectedCerts()) })
		opts.PageURL = pageURL(adminLn.Addr())
	}
	opts.Decrypt = followKeylog(ctx, cfg, log)
	if cfg.Mode == config.ModeIntercept {
		iopts, closeKeylog, ierr := interceptOptions(cfg, log)
		if ierr != nil {
			_ = ln.Close()
			if adminLn != nil {
				_ = adminLn.Close()
			}
			return ierr
		}
		defer closeKeylog.Close()
		opts.Intercept = iopts
	}
	if exp != nil {
		opts.Collectors = append(opts.Collectors, exp.DroppedCounter())
	}
	srv = proxy.New(opts, log)
	if exp != nil {
		if err := exp.ExportMetrics(srv.Gatherer()); err != nil {
			return &config.Error{Key: "otlp.endpoint", Problem: err.Error()}
		}
	}

	if adminLn != nil {
		log.Info("admin server listening", zap.String("addr", adminLn.Addr().String()), zapPage(opts.PageURL))
		go func() {
			if err := srv.ServeAdmin(ctx, adminLn); err != nil {
				log.Error("admin server stopped", zap.Error(err))
			}
		}()
	}
	r := &reloader{flags: flags, srv: srv, log: log, level: level}
	r.cfg.Store(cfg)
	r.watch()
	go r.run(ctx)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop()
	grace := r.cfg.Load().ShutdownTimeout // a reload may have changed it
	log.Info("shutting down", zap.Int64("grace_ms", grace.Milliseconds()))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	log.Info("stopped", zap.Time("at", time.Now()))
	return nil
}

func proxyOptions(cfg *config.Config, expect []rules.ExpectedCert) proxy.Options {
	dyn := reloadable(cfg, expect)
	routes := make([]proxy.Route, len(cfg.Sidecar.Routes))
	for i, r := range cfg.Sidecar.Routes {
		routes[i] = proxy.Route{Pattern: r.Pattern, Upstream: r.Upstream}
	}
	side := proxy.SidecarOptions{Upstream: cfg.Upstream, Routes: routes}
	if cfg.Sidecar.ProxyProtocol {
		side.ProxyProtocol = cfg.Sidecar.ProxyProtocolVersion
	}
	return proxy.Options{
		Mode:               event.Mode(cfg.Mode),
		AllowPort:          dyn.AllowPort,
		AllowPortsText:     dyn.AllowPortsText,
		AllowHTTPPort:      dyn.AllowHTTPPort,
		AllowHTTPPortsText: dyn.AllowHTTPPortsText,
		IdleTimeout:        cfg.Tunnel.IdleTimeout,
		DialTimeout:        cfg.Tunnel.DialTimeout,
		WatchRenegotiation: cfg.Tunnel.WatchRenegotiation,
		NoParse:            !cfg.Tunnel.Parse,
		Rules:              dyn.Rules,
		Sidecar:            side,
		Access:             dyn.Access,
		Limits: proxy.Limits{MaxConns: cfg.Limits.MaxConns, ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			MaxHeaderBytes: cfg.Limits.MaxHeaderBytes},
		AllowHosts: dyn.AllowHosts,
		DenyHosts:  dyn.DenyHosts,
		PACHosts:   dyn.PACHosts,
	}
}

// pageURL is where a browser on this machine opens the page: an address
// that listens on every interface is reached on loopback.
func pageURL(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		ip = netip.MustParseAddr("127.0.0.1")
		if ap.Addr().Is6() && !ap.Addr().Is4In6() {
			ip = netip.IPv6Loopback()
		}
	}
	return "http://" + netip.AddrPortFrom(ip, ap.Port()).String() + "/"
}

func zapPage(url string) zap.Field {
	if url == "" {
		return zap.Skip()
	}
	return zap.String("page", url)
}

// wrapList joins items with commas into lines of at most width
// characters, each starting with indent.
func wrapList(items []string, indent string, width int) string {
	var b strings.Builder
	line := indent
	for i, item := range items {
		if i < len(items)-1 {
			item += ","
		}
		if line != indent && len(line)+1+len(item) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += item
	}
	b.WriteString(line)
	return b.String()
}

// listenProblem is what the system said ("bind: address already in use")
// without the address, which the message already gives.
func listenProblem(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// reloadable is the part of the config a reload may change.
func reloadable(cfg *config.Config, expect []rules.ExpectedCert) proxy.Reloadable {
	users := make(map[string]string, len(cfg.Access.Users))
	for _, u := range cfg.Access.Users {
		users[u.Name] = u.Hash
	}
	return proxy.Reloadable{
		AllowPort:          cfg.AllowPorts.Contains,
		AllowPortsText:     cfg.AllowPorts.String(),
		AllowHTTPPort:      cfg.AllowHTTPPorts.Contains,
		AllowHTTPPortsText: cfg.AllowHTTPPorts.String(),
		Rules:              rulesOptions(cfg, expect),
		AllowHosts:         cfg.Access.AllowHosts,
		DenyHosts:          cfg.Access.DenyHosts,
		Access:             proxy.Access{Users: users, AllowClients: cfg.Access.AllowClients},
		IdleTimeout:        cfg.Tunnel.IdleTimeout,
		DialTimeout:        cfg.Tunnel.DialTimeout,
		PACHosts:           cfg.PACHosts,
	}
}
