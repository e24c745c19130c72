//go:build unix

package peertest

import (
	"os"
	"syscall"
	"testing"
)

// lockFile takes an exclusive lock on path, shared by every test process on
// the machine, waiting for it as long as it takes; unlock releases it.
func lockFile(tb testing.TB, path string) (unlock func()) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		tb.Fatalf("peertest: lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		tb.Fatalf("peertest: lock %s: %v", path, err)
	}
	// Closing the file releases the lock, also if the process dies.
	return func() { f.Close() }
}
