package proxy

import (
	"errors"
	"syscall"
)

// closeKind is why a tunnel ended, by the side that ended it: the
// "connection closed" event's reason, and what late.go weighs as evidence.
type closeKind uint8

const (
	closeUnknown          closeKind = iota // closed, for no reason noted first
	closeClient                            // the client finished sending
	closeServer                            // the server finished sending
	closeIdle                              // tunnel.idle_timeout passed without a byte
	closeShutdown                          // certlens stopped and its grace ran out
	closeBrowser                           // intercept: the browser's connection ended
	closeClientError                       // reading from or writing to the client failed
	closeServerError                       // reading from the server failed
	closeServerWriteError                  // writing to the server failed
	closeHandshakeFailed                   // intercept: certlens's own TLS client failed
)

// closeWords are the kinds as the event says them, before the error.
var closeWords = [...]string{
	closeUnknown:          "closed",
	closeClient:           "client closed",
	closeServer:           "server closed",
	closeIdle:             "idle timeout",
	closeShutdown:         "shutdown",
	closeBrowser:          "browser closed",
	closeClientError:      "client error",
	closeServerError:      "server error",
	closeServerWriteError: "server write error",
	closeHandshakeFailed:  "TLS handshake failed",
}

// closeReason is why a tunnel ended: a kind, and the error for the kinds
// that have one.
type closeReason struct {
	kind closeKind
	err  error
}

// String is the reason as the "connection closed" event writes it.
func (r closeReason) String() string {
	if r.err == nil {
		return closeWords[r.kind]
	}
	return closeWords[r.kind] + ": " + r.err.Error()
}

// serverReset reports a server that reset the connection, read or written.
func (r closeReason) serverReset() bool {
	return (r.kind == closeServerError || r.kind == closeServerWriteError) && errors.Is(r.err, syscall.ECONNRESET)
}
