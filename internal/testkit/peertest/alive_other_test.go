//go:build !unix

package peertest

import "os"

// alive says whether a process with this pid still exists; on Windows
// FindProcess opens a handle, which it can only do to a live process.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
