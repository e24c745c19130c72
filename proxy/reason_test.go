package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
)

// TestCloseReasons: each kind reads as the event has always written it,
// and a reset is found from the error, not the words.
func TestCloseReasons(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	refused := errors.New("write: broken pipe")
	for _, tc := range []struct {
		r     closeReason
		text  string
		reset bool
	}{
		{closeReason{kind: closeUnknown}, "closed", false},
		{closeReason{kind: closeClient}, "client closed", false},
		{closeReason{kind: closeServer}, "server closed", false},
		{closeReason{kind: closeIdle}, "idle timeout", false},
		{closeReason{kind: closeShutdown}, "shutdown", false},
		{closeReason{kind: closeBrowser}, "browser closed", false},
		{closeReason{closeServerError, reset}, "server error: read tcp: read: connection reset by peer", true},
		{closeReason{closeServerWriteError, reset}, "server write error: read tcp: read: connection reset by peer", true},
		{closeReason{closeServerWriteError, refused}, "server write error: write: broken pipe", false},
		{closeReason{closeClientError, reset}, "client error: read tcp: read: connection reset by peer", false},
		{closeReason{closeHandshakeFailed, refused}, "TLS handshake failed: write: broken pipe", false},
	} {
		if got := tc.r.String(); got != tc.text {
			t.Errorf("%q, want %q", got, tc.text)
		}
		if got := tc.r.serverReset(); got != tc.reset {
			t.Errorf("%s: server reset %v, want %v", tc.text, got, tc.reset)
		}
	}
}
