//go:build unix

package main

import (
	"os"
	"syscall"
)

// shutdownSignals end `serve` gracefully: Ctrl-C, and what service managers send.
var shutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// reloadSignals make `serve` reload its config file.
var reloadSignals = []os.Signal{syscall.SIGHUP}
