package ownclient

import (
	"io"
	"net"
	"strings"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/keylog"
)

// maxDrain bounds what Conn.Failed reads: the rest of a server flight
// whose CertificateRequest is over 64 KiB.
const maxDrain = 512 << 10

// ServerDrainer is a connection whose Read outlasts deadlines (proxy's
// tunnel, until its idle timeout): DrainServer reads what the server sent,
// up to limit bytes or for d, through the parser.
type ServerDrainer interface {
	DrainServer(limit int, d time.Duration)
}

// drainOversize reads what the server already sent when crypto/tls gave up
// on a handshake message over its 64 KiB limit (it stops after the
// message's 4-byte header). Such a message is a CertificateRequest naming
// hundreds of CAs, the very failure certlens diagnoses: read through the
// tee, the rest reaches the parser, which shows the whole list.
func drainOversize(c net.Conn, err error) {
	// crypto/tls's own wording (conn.go, readHandshake); it has no error value.
	if err == nil || !strings.Contains(err.Error(), "handshake message of length") {
		return
	}
	if d, ok := c.(ServerDrainer); ok {
		d.DrainServer(maxDrain, time.Second)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, maxDrain))
}

// Conn is the connection under certlens's own TLS clients, on top of the
// one that feeds the parser. It sends a clear alert from crypto/tls only
// with the next write or at close: when crypto/tls gives up on an
// oversize CertificateRequest, its alert would otherwise reach the tee,
// and end the handshake in the parser, before Failed has read the rest of
// the request the server sent first.
type Conn struct {
	net.Conn
	held []byte
}

func (c *Conn) Write(b []byte) (int, error) {
	if len(b) > 0 && b[0] == byte(handshake.ContentAlert) && c.held == nil {
		c.held = append([]byte(nil), b...)
		return len(b), nil
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// Failed is called when crypto/tls's handshake failed with err: it reads
// the rest of an oversize message the server sent, then sends the alert
// crypto/tls answered it with.
func (c *Conn) Failed(err error) {
	drainOversize(c.Conn, err)
	_ = c.flush()
}

// flush sends a held alert.
func (c *Conn) flush() error {
	if c.held == nil {
		return nil
	}
	b := c.held
	c.held = nil
	_, err := c.Conn.Write(b)
	return err
}

func (c *Conn) Close() error {
	_ = c.flush()
	return c.Conn.Close()
}

// KeyLog is the KeyLogWriter of certlens's own TLS clients: their secrets
// go to the parser's key store, so that it decrypts TLS 1.3 and
// renegotiation as it does a browser's (records and bytes are the wire's,
// not crypto/tls's account of them), and to Next, the user's key log, if any.
type KeyLog struct {
	Store *keylog.Store
	Next  io.Writer
}

func (w KeyLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if e, ok, err := handshake.ParseKeyLogLine(line); ok && err == nil {
			w.Store.Add(e)
		}
	}
	if w.Next != nil {
		return w.Next.Write(p)
	}
	return len(p), nil
}
