//go:build !unix

package main

import "os"

// shutdownSignals: on Windows only Ctrl-C (os.Interrupt) is delivered.
var shutdownSignals = []os.Signal{os.Interrupt}

// reloadSignals: Windows has no SIGHUP; the config file watch reloads instead.
var reloadSignals []os.Signal
