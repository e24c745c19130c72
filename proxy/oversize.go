package proxy

import (
	"github.com/certlens/certlens/handshake"
	"io"
	"net"
	"strings"
	"time"
)

// maxDrain bounds what drainOversize reads: the rest of a server flight
// whose CertificateRequest is over 64 KiB.
const maxDrain = 512 << 10

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
	if t, ok := c.(*tunnel); ok {
		// A tunnel's Read outlasts deadlines until its idle timeout.
		t.drainServer(maxDrain, time.Second)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, maxDrain))
}

// drainServer reads what the server sent, up to limit bytes or for d, and
// tees it as Read would.
func (t *tunnel) drainServer(limit int, d time.Duration) {
	_ = t.Conn.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 32<<10)
	for limit > 0 {
		n, err := t.Conn.Read(b[:min(len(b), limit)])
		if n > 0 {
			t.moved(true, int64(n))
			t.feed(handshake.FromServer, b[:n])
			limit -= n
		}
		if err != nil {
			return
		}
	}
}

// alertLast is the connection under certlens's own TLS clients (probe,
// intercept's upstream side). It sends a clear alert from crypto/tls only
// with the next write or at close: when crypto/tls gives up on an
// oversize CertificateRequest, its alert would otherwise reach the tee,
// and end the handshake in the parser, before drainOversize has read the
// rest of the request the server sent first.
type alertLast struct {
	net.Conn
	held []byte
}

func (c *alertLast) Write(b []byte) (int, error) {
	if len(b) > 0 && b[0] == byte(handshake.ContentAlert) && c.held == nil {
		c.held = append([]byte(nil), b...)
		return len(b), nil
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// flush sends a held alert.
func (c *alertLast) flush() error {
	if c.held == nil {
		return nil
	}
	b := c.held
	c.held = nil
	_, err := c.Conn.Write(b)
	return err
}

func (c *alertLast) Close() error {
	_ = c.flush()
	return c.Conn.Close()
}
