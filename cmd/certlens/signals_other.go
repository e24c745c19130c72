//go:build !unix

package main

import "os"

// shutdownSignals: on Windows only Ctrl-C (os.Interrupt) is delivered.
var shutdownSignals = []os.Signal{os.Interrupt}
