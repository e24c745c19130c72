package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/proxy"
)

// reloader applies config changes that are safe while tunnels run: rules
// thresholds, expect-certs, client_cert_hosts, allow_ports and the log
// level. Everything else needs a restart, and says so.
type reloader struct {
	flags *pflag.FlagSet
	cfg   *config.Config
	srv   *proxy.Server
	log   *zap.Logger
	level zap.AtomicLevel

	sig     chan os.Signal
	watcher *fsnotify.Watcher
	stamp   string // the config file's size and time, when polled
}

// watch starts listening for reloadSignals (SIGHUP) and config file
// changes before serve accepts anything, so no change is missed; run then
// acts on them.
func (r *reloader) watch() {
	r.sig = make(chan os.Signal, 1)
	if len(reloadSignals) > 0 {
		signal.Notify(r.sig, reloadSignals...)
	}
	if r.cfg.ConfigFile == "" {
		return
	}
	r.stamp = fileStamp(r.cfg.ConfigFile)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		// Watch the directory: editors replace files rather than write them.
		if err = w.Add(filepath.Dir(r.cfg.ConfigFile)); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		// Out of inotify instances, or a file system without events: poll.
		r.log.Info("config file polled, not watched", zap.String("file", r.cfg.ConfigFile), zap.Error(err))
		return
	}
	r.watcher = w
}

// fileStamp is what polling compares: a changed size or time is a change.
func fileStamp(name string) string {
	fi, err := os.Stat(name)
	if err != nil {
		return "missing"
	}
	return fi.ModTime().String() + "/" + strconv.FormatInt(fi.Size(), 10)
}

func (r *reloader) run(ctx context.Context) {
	defer signal.Stop(r.sig)
	var fileEvents <-chan fsnotify.Event
	var poll <-chan time.Time
	if r.watcher != nil {
		defer r.watcher.Close()
		fileEvents = r.watcher.Events
	} else if r.cfg.ConfigFile != "" {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		poll = t.C
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.sig:
			r.reload("signal")
		case ev := <-fileEvents:
			if filepath.Clean(ev.Name) == filepath.Clean(r.cfg.ConfigFile) && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				// One save is often several events: act once they settle.
				debounce = time.After(200 * time.Millisecond)
			}
		case <-poll:
			if st := fileStamp(r.cfg.ConfigFile); st != r.stamp {
				r.stamp = st
				debounce = time.After(200 * time.Millisecond)
			}
		case <-debounce:
			debounce = nil
			r.reload("file changed")
		}
	}
}

func (r *reloader) reload(why string) {
	cfg, err := config.Load(r.flags)
	if err != nil {
		r.log.Warn("config reload rejected", zap.String("trigger", why), zap.String("error", err.Error()),
			zap.String("kept", "the running configuration"))
		return
	}
	expect, err := loadExpectCerts(cfg.ExpectCerts)
	if err != nil {
		r.log.Warn("config reload rejected", zap.String("trigger", why), zap.String("error", err.Error()),
			zap.String("kept", "the running configuration"))
		return
	}
	for key, changed := range map[string]bool{
		"listen": cfg.Listen != r.cfg.Listen, "mode": cfg.Mode != r.cfg.Mode, "upstream": cfg.Upstream != r.cfg.Upstream,
		"admin_listen": cfg.AdminListen != r.cfg.AdminListen, "log.format": cfg.Log.Format != r.cfg.Log.Format,
		"log.file": cfg.Log.File != r.cfg.Log.File, "admin_pprof": cfg.AdminPprof != r.cfg.AdminPprof,
		"tunnel.parse": cfg.Tunnel.Parse != r.cfg.Tunnel.Parse,
	} {
		if changed {
			r.log.Warn("config reload: change needs a restart", zap.String("key", key))
		}
	}
	r.srv.Reload(reloadable(cfg, expect))
	_ = r.level.UnmarshalText([]byte(cfg.Log.Level))
	r.log.Info("config reloaded", zap.String("trigger", why), zap.String("file", cfg.ConfigFile),
		zap.String("allow_ports", cfg.AllowPorts.String()), zap.String("log_level", cfg.Log.Level))
}
