package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/logging"
	"github.com/certlens/certlens/proxy"
	"github.com/certlens/certlens/rules"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the diagnostic proxy and log one event per TLS handshake",
		Long: `Run certlens as an HTTP forward proxy (observe mode, the default).

Set the browser's proxy to the listen address (Windows: Settings > Network >
Proxy > Manual, 127.0.0.1:8080; Chromium: --proxy-server=127.0.0.1:8080;
curl: -x http://127.0.0.1:8080). HTTPS goes through CONNECT tunnels that
certlens relays byte for byte while it reads the TLS handshake, and for each
handshake it writes a "handshake" event with the server's certificate request,
the client certificate sent and a verdict; each tunnel ends with a
"connection closed" event.

Settings come, in rising precedence, from defaults, a config file
(--config, ./certlens.yaml or $XDG_CONFIG_HOME/certlens/certlens.yaml; see
certlens.example.yaml), CERTLENS_* environment variables, and flags.`,
		Example: `  certlens serve
  certlens serve --log-format console
  certlens serve --log-file handshakes.jsonl --allow-ports 443,8443,10000-20000
  tail -f handshakes.jsonl | jq 'select(.msg=="handshake" and .verdict!="ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg)
		},
	}
	config.AddServeFlags(cmd.Flags())
	return cmd
}

func serve(ctx context.Context, cfg *config.Config) error {
	if cfg.Mode != config.ModeObserve {
		return &config.Error{Key: "mode", Problem: fmt.Sprintf("%s mode is not available in this version yet; use observe", cfg.Mode)}
	}
	expect, err := loadExpectCerts(cfg.ExpectCerts)
	if err != nil {
		return err
	}
	log, closeLog, err := logging.New(logging.Options{Format: cfg.Log.Format, Level: cfg.Log.Level, File: cfg.Log.File})
	if err != nil {
		return err
	}
	defer closeLog()
	if cfg.ConfigFile != "" {
		log.Info("config read", zap.String("file", cfg.ConfigFile))
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set another address with --listen)", cfg.Listen, err)
	}
	srv := proxy.New(proxy.Options{
		Mode:               cfg.Mode,
		AllowPort:          cfg.AllowPorts.Contains,
		AllowPortsText:     cfg.AllowPorts.String(),
		IdleTimeout:        cfg.Tunnel.IdleTimeout,
		DialTimeout:        cfg.Tunnel.DialTimeout,
		WatchRenegotiation: cfg.Tunnel.WatchRenegotiation,
		Rules: rules.Options{
			IssuerListWarnBytes:  cfg.Rules.IssuerListWarnBytes,
			IssuerListErrorBytes: cfg.Rules.IssuerListErrorBytes,
			ExpectCerts:          expect,
			ClientCertHosts:      cfg.Rules.ClientCertHosts,
		},
	}, log)

	ctx, stop := signal.NotifyContext(ctx, shutdownSignals...)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down", zap.Duration("grace", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
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

// loadExpectCerts reads the --expect-cert files. A file certlens cannot use
// is a configuration error, reported before anything starts.
func loadExpectCerts(paths []string) ([]rules.ExpectedCert, error) {
	var out []rules.ExpectedCert
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, &config.Error{Key: "expect_certs", Problem: err.Error()}
		}
		chain, err := rules.ParseCertFile(data)
		if err != nil {
			return nil, &config.Error{Key: "expect_certs", Problem: fmt.Sprintf("%s: %v", p, err)}
		}
		out = append(out, rules.ExpectedCert{Name: filepath.Base(p), Chain: chain})
	}
	return out, nil
}
