//go:build !unix

package peertest

import "os"

// processAlive reports whether pid names a live process; where signal 0
// does not exist, whether it can be found (Windows opens a handle).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
