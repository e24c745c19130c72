package keylog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
)

// Poll intervals: without file events the file is polled often enough for
// a secret to arrive well inside decrypt.wait; with events, a slow poll
// still catches what a watcher can miss (network file systems, a watch
// lost when the directory is replaced).
const (
	pollNoEvents   = 100 * time.Millisecond
	pollWithEvents = time.Second
	readChunk      = 64 << 10
	maxLine        = 512 // as handshake's key log line cap
)

// Follower reads a key log like tail -F: the file may not exist yet, may be
// appended to, truncated, or replaced by a new file, and every complete line
// goes to the Store. Secrets are never logged: only counts and file names.
type Follower struct {
	path  string
	store *Store
	log   *zap.Logger

	f       *os.File
	info    os.FileInfo
	offset  int64
	partial []byte
	skip    bool // dropping the rest of an overlong line
	missing bool // the file was absent at the last look (logged once)
	buf     []byte
}

// NewFollower returns a Follower of path into store; log may be nil.
func NewFollower(path string, store *Store, log *zap.Logger) *Follower {
	if log == nil {
		log = zap.NewNop()
	}
	return &Follower{path: path, store: store, log: log, buf: make([]byte, readChunk)}
}

// Run follows the file until ctx ends. It reads what the file already
// holds before it waits for more.
func (fl *Follower) Run(ctx context.Context) {
	defer fl.close()
	var events <-chan fsnotify.Event
	var errs <-chan error
	interval := pollNoEvents
	if w, err := fsnotify.NewWatcher(); err == nil {
		// Watch the directory: writers (and log rotation) replace files.
		if err := w.Add(filepath.Dir(fl.path)); err == nil {
			defer w.Close()
			events, errs, interval = w.Events, w.Errors, pollWithEvents
		} else {
			_ = w.Close()
			fl.log.Info("key log polled, not watched", zap.String("file", fl.path), zap.Error(err))
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	fl.Poll()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if filepath.Clean(ev.Name) == filepath.Clean(fl.path) {
				fl.Poll()
			}
		case err := <-errs:
			fl.log.Warn("key log watch error; polling continues", zap.String("file", fl.path), zap.Error(err))
		case <-t.C:
			fl.Poll()
		}
	}
}

// Poll reads whatever is new in the file now: Run calls it on every file
// event and tick; tests call it directly.
func (fl *Follower) Poll() {
	st, err := os.Stat(fl.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if fl.f != nil {
			fl.drain() // the last lines of a file that was removed
			fl.close()
		}
		if !fl.missing {
			fl.missing = true
			fl.log.Info("key log does not exist yet; waiting for it", zap.String("file", fl.path))
		}
		return
	case err != nil:
		fl.log.Warn("key log unreadable", zap.String("file", fl.path), zap.Error(err))
		return
	}
	if fl.f != nil && !os.SameFile(fl.info, st) {
		// Replaced: finish the old file, then start the new one from its top.
		fl.drain()
		fl.close()
		fl.log.Info("key log replaced; reading the new file", zap.String("file", fl.path))
	}
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if err != nil {
			fl.log.Warn("key log unreadable", zap.String("file", fl.path), zap.Error(err))
			return
		}
		fl.f, fl.info, fl.offset, fl.missing = f, st, 0, false
		fl.partial, fl.skip = fl.partial[:0], false
	}
	if st.Size() < fl.offset {
		// Truncated (a new session with the same file): read from the top.
		fl.log.Info("key log truncated; reading from the start", zap.String("file", fl.path))
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			fl.close()
			return
		}
		fl.offset = 0
		fl.partial, fl.skip = fl.partial[:0], false
	}
	fl.drain()
}

// drain reads the open file to its current end.
func (fl *Follower) drain() {
	for fl.f != nil {
		n, err := fl.f.Read(fl.buf)
		fl.offset += int64(n)
		fl.lines(fl.buf[:n])
		if err != nil || n == 0 {
			return
		}
	}
}

// lines hands complete lines to the store and keeps the unfinished tail:
// a writer may be halfway through a line.
func (fl *Follower) lines(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !fl.skip && len(fl.partial)+len(b) <= maxLine {
				fl.partial = append(fl.partial, b...)
			} else if !fl.skip {
				fl.skip = true
				fl.partial = fl.partial[:0]
			}
			return
		}
		line := b[:i]
		b = b[i+1:]
		if fl.skip || len(fl.partial)+len(line) > maxLine {
			fl.skip = false
			fl.partial = fl.partial[:0]
			fl.store.addBad()
			continue
		}
		if len(fl.partial) > 0 {
			line = append(fl.partial, line...)
		}
		fl.partial = fl.partial[:0]
		e, ok, err := handshake.ParseKeyLogLine(string(line))
		switch {
		case err != nil:
			fl.store.addBad()
			fl.log.Debug("key log line skipped", zap.String("file", fl.path), zap.String("reason", err.Error()))
		case ok:
			fl.store.Add(e)
		}
	}
}

func (fl *Follower) close() {
	if fl.f != nil {
		_ = fl.f.Close()
		fl.f = nil
	}
}
