// Package tail reads the lines of a file as they are written, like
// tail -F: the file may not exist yet, may be appended to, truncated, or
// replaced by a new file (log rotation). The key log follower and
// `certlens view -f` read their files with it.
package tail

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
)

// Lines splits a stream into lines: write the stream to it, each complete
// line goes to Line. A writer may be halfway through a line, so the
// unfinished tail is kept for the next Write.
type Lines struct {
	// Max is the longest line kept; a longer one is dropped whole and
	// counted by Long, so a file without newlines cannot grow memory.
	Max int
	// Line receives each line without its newline; the slice is only
	// valid during the call.
	Line func(line []byte)
	// Long is told of each line dropped for its length.
	Long func()

	partial []byte
	skip    bool // dropping the rest of an overlong line
}

// Write hands the complete lines of b to Line; it never fails.
func (l *Lines) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !l.skip && len(l.partial)+len(b) <= l.Max {
				l.partial = append(l.partial, b...)
			} else if !l.skip {
				l.skip = true
				l.partial = l.partial[:0]
			}
			return n, nil
		}
		line := b[:i]
		b = b[i+1:]
		if l.skip || len(l.partial)+len(line) > l.Max {
			l.skip = false
			l.partial = l.partial[:0]
			l.Long()
			continue
		}
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
		}
		l.partial = l.partial[:0]
		l.Line(line)
	}
	return n, nil
}

// Flush hands on the last line of a stream that does not end in a newline.
func (l *Lines) Flush() {
	switch {
	case l.skip:
		l.Long()
	case len(l.partial) > 0:
		l.Line(l.partial)
	}
	l.Reset()
}

// Reset drops the unfinished line: the file it came from was replaced or
// truncated.
func (l *Lines) Reset() {
	l.partial, l.skip = l.partial[:0], false
}

// Notice is a change of the followed file.
type Notice int

const (
	// Missing: the file does not exist (yet, or any more); told once
	// until it appears.
	Missing Notice = iota
	// Unreadable: the file cannot be read (the error says why); tried again.
	Unreadable
	// Replaced: the path names a new file; the old one was read to its
	// end, the new one is read from its start.
	Replaced
	// Truncated: the file shrank; read again from its start.
	Truncated
	// Polled: the directory cannot be watched (the error says why); the
	// file is polled only.
	Polled
	// WatchError: the watch reported an error; polling continues.
	WatchError
)

// Poll intervals: without file events the file is polled often enough to
// show a line at once; with events, a slow poll still catches what a
// watcher can miss (network file systems, a watch lost when the directory
// is replaced).
const (
	pollNoEvents   = 100 * time.Millisecond
	pollWithEvents = time.Second
	readChunk      = 64 << 10
)

// Follower follows one file into a Lines.
type Follower struct {
	path   string
	lines  *Lines
	notify func(Notice, error)

	f       *os.File
	info    os.FileInfo
	offset  int64
	missing bool // the file was absent at the last look (told once)
	buf     []byte
}

// New returns a Follower of path into lines; notify (which may be nil)
// hears what happened to the file.
func New(path string, lines *Lines, notify func(Notice, error)) *Follower {
	if notify == nil {
		notify = func(Notice, error) {}
	}
	return &Follower{path: path, lines: lines, notify: notify, buf: make([]byte, readChunk)}
}

// Run follows the file until ctx ends. It reads what the file already
// holds before it waits for more.
func (fl *Follower) Run(ctx context.Context) {
	defer fl.Close()
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
			fl.notify(Polled, err)
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
			fl.notify(WatchError, err)
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
			fl.Close()
		}
		if !fl.missing {
			fl.missing = true
			fl.notify(Missing, nil)
		}
		return
	case err != nil:
		fl.notify(Unreadable, err)
		return
	}
	if fl.f != nil && !os.SameFile(fl.info, st) {
		// Replaced: finish the old file, then start the new one from its top.
		fl.drain()
		fl.Close()
		fl.notify(Replaced, nil)
	}
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if err != nil {
			fl.notify(Unreadable, err)
			return
		}
		fl.f, fl.info, fl.offset, fl.missing = f, st, 0, false
		fl.lines.Reset()
	}
	if st.Size() < fl.offset {
		// Truncated (a new session with the same file): read from the top.
		fl.notify(Truncated, nil)
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			fl.Close()
			return
		}
		fl.offset = 0
		fl.lines.Reset()
	}
	fl.drain()
}

// drain reads the open file to its current end.
func (fl *Follower) drain() {
	for fl.f != nil {
		n, err := fl.f.Read(fl.buf)
		fl.offset += int64(n)
		_, _ = fl.lines.Write(fl.buf[:n])
		if err != nil || n == 0 {
			return
		}
	}
}

// Close closes the file a Follower driven by Poll holds open; Run closes
// it itself when it returns.
func (fl *Follower) Close() {
	if fl.f != nil {
		_ = fl.f.Close()
		fl.f = nil
	}
}
