//go:build unix

package peertest

import "syscall"

// alive says whether a process with this pid still exists (signal 0 probes without signalling).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
