package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// goproxy copies between the hijacked client connection and the tunnel
// and, when the client's side fails (a reset), only closes the tunnel
// without saying why. clientWatch hands the tunnel that goproxy dials for
// a CONNECT to the client connection it hijacks for the same request, so
// the "connection closed" event can name the client's error.
type clientWatch struct{ t atomic.Pointer[tunnel] }

type clientWatchKey struct{}

// watchClient returns r and w wired so that the tunnel dialled for r learns
// about errors on the client connection hijacked through w.
func watchClient(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	h, ok := w.(http.Hijacker)
	if !ok {
		return w, r
	}
	cw := &clientWatch{}
	return hijackWatcher{w, h, cw}, r.WithContext(context.WithValue(r.Context(), clientWatchKey{}, cw))
}

// watchedTunnel tells r's clientWatch, if any, which tunnel it feeds.
func watchedTunnel(r *http.Request, t *tunnel) {
	if cw, ok := r.Context().Value(clientWatchKey{}).(*clientWatch); ok {
		cw.t.Store(t)
	}
}

type hijackWatcher struct {
	http.ResponseWriter
	h  http.Hijacker
	cw *clientWatch
}

func (w hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.h.Hijack()
	if err != nil {
		return c, rw, err
	}
	tcp, ok := c.(halfCloser)
	if !ok {
		return c, rw, err
	}
	return &watchedClient{Conn: c, tcp: tcp, cw: w.cw}, rw, nil
}

// watchedClient is the hijacked client connection. Like tunnel, it embeds
// net.Conn and not *net.TCPConn, whose WriteTo would let io.Copy read
// around Read; it keeps CloseWrite and CloseRead, which goproxy needs to
// pass half-closes on.
type watchedClient struct {
	net.Conn
	tcp halfCloser
	cw  *clientWatch
}

// halfCloser is a connection that can close one direction: *net.TCPConn,
// and the front door's guardedConn around one.
type halfCloser interface {
	CloseWrite() error
	CloseRead() error
}

func (c *watchedClient) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

func (c *watchedClient) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

// note records a client failure as the tunnel's reason, unless the tunnel
// already ended for another reason (a close of our own included).
func (c *watchedClient) note(err error) {
	if err == nil || err == io.EOF || errors.Is(err, net.ErrClosed) {
		return
	}
	if t := c.cw.t.Load(); t != nil {
		t.setReason("client error: " + err.Error())
	}
}

func (c *watchedClient) CloseWrite() error { return c.tcp.CloseWrite() }
func (c *watchedClient) CloseRead() error  { return c.tcp.CloseRead() }
