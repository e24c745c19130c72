//go:build unix

package main

import (
	"os"
	"syscall"
)

// shutdownSignals end `serve` gracefully: Ctrl-C, and what service managers send.
var shutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
