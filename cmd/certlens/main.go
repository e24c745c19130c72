// Command certlens is a diagnostic proxy for TLS client-certificate
// authentication: it shows what a server asked for, what the client sent,
// and whether IIS will answer 403.7.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/certlens/certlens/config"
)

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "certlens:", err)
	// A command that knows its status says so (analyze: 1 for problems
	// found, 2 for unreadable input).
	var coded exitError
	if errors.As(err, &coded) {
		os.Exit(coded.code)
	}
	var cfgErr *config.Error
	var usage usageError
	if errors.As(err, &cfgErr) || errors.As(err, &usage) {
		os.Exit(2)
	}
	os.Exit(1)
}
