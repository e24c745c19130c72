//go:build unix

package peertest

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the process group Start created (its id is the
// child's pid), never any other process.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// lowerPriority makes process pid a background job (nice 10), and with it
// what it forks from then on, so that it slows the tests beside it little.
func lowerPriority(pid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, 10) }

// runAs makes cmd run as the system user name when the test runs as root.
func runAs(tb testing.TB, cmd *exec.Cmd, name string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := userIDs(tb, name)
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// userIDs returns the system user name's uid and gid.
func userIDs(tb testing.TB, name string) (uid, gid int) {
	tb.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		tb.Fatalf("peertest: user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// GiveTo makes path (a file or a directory, recursively) the system user
// name's when the test runs as root, so that a server run WithUser can
// read and write it.
func GiveTo(tb testing.TB, path, name string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := userIDs(tb, name)
	err := filepath.WalkDir(path, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		tb.Fatalf("peertest: give %s to %s: %v", path, name, err)
	}
}

// UserDir returns a new directory, removed when the test ends, that the
// system user name owns and can reach: the test's own temp dir lies under
// a directory only its creator may enter.
func UserDir(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "certlens-"+name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	GiveTo(tb, dir, name)
	return dir
}
