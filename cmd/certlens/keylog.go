package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/proxy"
)

// followKeylog starts following decrypt.keylog_file until ctx ends. The
// file need not exist yet: browsers create it on their first connection.
func followKeylog(ctx context.Context, cfg *config.Config, log *zap.Logger) proxy.DecryptOptions {
	if cfg.Decrypt.KeylogFile == "" {
		return proxy.DecryptOptions{}
	}
	store := keylog.NewStore(cfg.Decrypt.MaxSecrets)
	log.Info("decrypting handshakes with a key log", zap.String("file", cfg.Decrypt.KeylogFile),
		zap.Int("max_secrets", cfg.Decrypt.MaxSecrets), zap.Int64("wait_ms", cfg.Decrypt.Wait.Milliseconds()))
	go keylog.NewFollower(cfg.Decrypt.KeylogFile, store, log).Run(ctx)
	return proxy.DecryptOptions{Secrets: store, Wait: cfg.Decrypt.Wait}
}

// readKeylog reads a whole key log for analyze: a capture is over, so is
// its key log.
func readKeylog(path string) (handshake.KeyLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--decrypt-keylog: %w", err)
	}
	defer f.Close()
	kl, _, err := handshake.ReadKeyLog(f)
	if err != nil {
		return nil, fmt.Errorf("--decrypt-keylog %s: %w", path, err)
	}
	if len(kl) == 0 {
		return nil, fmt.Errorf("--decrypt-keylog %s: no TLS secrets in it (is it the file SSLKEYLOGFILE named?)", path)
	}
	return kl, nil
}
