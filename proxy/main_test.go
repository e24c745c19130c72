package proxy

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test's tunnels, servers and peers must be gone when the package's
// tests end: a goroutine left behind is a tunnel that would never log its
// "connection closed".
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
