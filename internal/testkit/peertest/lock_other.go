//go:build !unix

package peertest

import "testing"

// lockFile does nothing where there is no flock: the only user, the
// Chromium policy directory, is a Linux path.
func lockFile(testing.TB, string) (unlock func()) { return func() {} }
