package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/proxy"
)

// reloader applies the changes to the config's Live keys (config.Reload)
// while tunnels run, and names every changed Restart key in a warning.
type reloader struct {
	flags *pflag.FlagSet
	cfg   atomic.Pointer[config.Config] // what certlens runs with
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
	file := r.cfg.Load().ConfigFile
	if file == "" {
		return
	}
	r.stamp = fileStamp(file)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		// Watch the directory: editors replace files rather than write them.
		if err = w.Add(filepath.Dir(file)); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		// Out of inotify instances, or a file system without events: poll.
		r.log.Info("config file polled, not watched", zap.String("file", file), zap.Error(err))
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
	file := r.cfg.Load().ConfigFile
	var fileEvents <-chan fsnotify.Event
	var poll <-chan time.Time
	if r.watcher != nil {
		defer r.watcher.Close()
		fileEvents = r.watcher.Events
	} else if file != "" {
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
			if filepath.Clean(ev.Name) == filepath.Clean(file) && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				// One save is often several events: act once they settle.
				debounce = time.After(200 * time.Millisecond)
			}
		case <-poll:
			if st := fileStamp(file); st != r.stamp {
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
	reject := func(err error) {
		r.log.Warn("config reload rejected", zap.String("trigger", why), zap.String("error", err.Error()),
			zap.String("kept", "the running configuration"))
	}
	loaded, err := config.Load(r.flags)
	if err != nil {
		reject(err)
		return
	}
	running := r.cfg.Load()
	// The Live keys are judged with the Restart keys still running: a file
	// that drops access.users while the proxy listens on 0.0.0.0 is refused.
	next := config.Reloaded(running, loaded)
	if err := next.Validate(); err != nil {
		reject(err)
		return
	}
	expect, err := loadExpectCerts(next.ExpectCerts)
	if err != nil {
		reject(err)
		return
	}
	var restart []string
	for _, key := range config.Changed(running, loaded) {
		if class, _ := config.ReloadOf(key); class == config.Restart {
			restart = append(restart, key)
		}
	}
	applied := config.Changed(running, next)
	r.srv.Reload(reloadable(next, expect))
	_ = r.level.UnmarshalText([]byte(next.Log.Level))
	r.cfg.Store(next)
	for _, key := range restart {
		r.log.Warn("config reload: change needs a restart", zap.String("key", key),
			zap.String("kept", "the value certlens started with, until it restarts"))
	}
	r.log.Info("config reloaded", zap.String("trigger", why), zap.String("file", next.ConfigFile),
		zap.Strings("applied", applied), zap.Strings("needs_restart", restart),
		zap.String("allow_ports", next.AllowPorts.String()), zap.String("log_level", next.Log.Level))
}
