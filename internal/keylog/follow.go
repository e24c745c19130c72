package keylog

import (
	"context"

	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/tail"
)

// maxLine is as handshake's key log line cap.
const maxLine = 512

// Follower reads a key log like tail -F: the file may not exist yet, may be
// appended to, truncated, or replaced by a new file, and every complete line
// goes to the Store. Secrets are never logged: only counts and file names.
type Follower struct {
	t *tail.Follower
}

// NewFollower returns a Follower of path into store; log may be nil.
func NewFollower(path string, store *Store, log *zap.Logger) *Follower {
	if log == nil {
		log = zap.NewNop()
	}
	file := zap.String("file", path)
	lines := &tail.Lines{Max: maxLine, Long: store.addBad, Line: func(line []byte) {
		e, ok, err := handshake.ParseKeyLogLine(string(line))
		switch {
		case err != nil:
			store.addBad()
			log.Debug("key log line skipped", file, zap.String("reason", err.Error()))
		case ok:
			store.Add(e)
		}
	}}
	notify := func(n tail.Notice, err error) {
		switch n {
		case tail.Missing:
			log.Info("key log does not exist yet; waiting for it", file)
		case tail.Unreadable:
			log.Warn("key log unreadable", file, zap.Error(err))
		case tail.Replaced:
			log.Info("key log replaced; reading the new file", file)
		case tail.Truncated:
			log.Info("key log truncated; reading from the start", file)
		case tail.Polled:
			log.Info("key log polled, not watched", file, zap.Error(err))
		case tail.WatchError:
			log.Warn("key log watch error; polling continues", file, zap.Error(err))
		}
	}
	return &Follower{t: tail.New(path, lines, notify)}
}

// Run follows the file until ctx ends. It reads what the file already
// holds before it waits for more.
func (fl *Follower) Run(ctx context.Context) { fl.t.Run(ctx) }

// Poll reads whatever is new in the file now: Run calls it on every file
// event and tick; tests call it directly.
func (fl *Follower) Poll() { fl.t.Poll() }

func (fl *Follower) close() { fl.t.Close() }
