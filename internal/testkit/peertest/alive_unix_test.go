//go:build unix

package peertest

import "syscall"

// processAlive reports whether pid names a live process (signal 0).
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }
