package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// spliceChunk bounds one kernel-to-kernel copy, so that the byte counters,
// the metrics and the idle clock advance while a long transfer runs.
const spliceChunk = 4 << 20

// copyBufSize is the first buffer of the copies that pass through the
// parser: most handshake flights fit, and every tunnel allocates two.
// A read that fills it makes it four times larger, up to bulkBufSize.
const (
	copyBufSize = 8 << 10
	bulkBufSize = 256 << 10
)

// largeBufs recycle the larger copy buffers (32 KiB, 128 KiB, 256 KiB). A
// server that sends a 60 KB issuer list grows a tunnel's buffer to 128 KiB
// and back on every handshake: allocating, zeroing and collecting those
// cost the proxy more than copying the flight. Only a transfer in progress
// holds one; what the pools keep after a burst goes within two garbage
// collections, and an idle tunnel still holds only its small buffer.
var largeBufs = func() map[int]*sync.Pool {
	m := map[int]*sync.Pool{}
	for size := copyBufSize * 4; ; size = min(4*size, bulkBufSize) {
		m[size] = &sync.Pool{New: func() any { b := make([]byte, size); return &b }}
		if size == bulkBufSize {
			return m
		}
	}
}()

// copyBuf is a relay's buffer: its small one, or a large one from largeBufs.
type copyBuf struct {
	small []byte
	large *[]byte
}

func (c *copyBuf) bytes() []byte {
	if c.large != nil {
		return *c.large
	}
	return c.small
}

// resize makes the buffer size bytes long (copyBufSize or a largeBufs size).
func (c *copyBuf) resize(size int) {
	c.release()
	if size > copyBufSize {
		c.large = largeBufs[size].Get().(*[]byte)
	}
}

// release gives a large buffer back; the small one stays.
func (c *copyBuf) release() {
	if c.large != nil {
		largeBufs[len(*c.large)].Put(c.large)
		c.large = nil
	}
}

// tcpUnwrapper is a client connection wrapper that can hand over the
// *net.TCPConn under it, once nothing needs to see the bytes any more.
type tcpUnwrapper interface{ rawTCP() *net.TCPConn }

func rawTCP(c any) *net.TCPConn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case tcpUnwrapper:
		return c.rawTCP()
	}
	return nil
}

func (c *guardedConn) rawTCP() *net.TCPConn { return rawTCP(c.Conn) }

// ReadFrom carries client->server bytes for io.Copy(t, client): through
// Write, and so the parser, while it wants them; then, once it is done,
// between the two raw sockets, which on Linux is splice(2).
func (t *tunnel) ReadFrom(src io.Reader) (int64, error) {
	return t.relay(struct{ io.Writer }{t}, src, false)
}

// WriteTo carries server->client bytes for io.Copy(client, t), like ReadFrom.
func (t *tunnel) WriteTo(dst io.Writer) (int64, error) {
	return t.relay(dst, struct{ io.Reader }{t}, true)
}

// relay copies src to dst, one side of which is the tunnel's Read or Write
// (hidden in a struct, so io.Copy cannot come back here).
func (t *tunnel) relay(dst io.Writer, src io.Reader, down bool) (int64, error) {
	// The small buffer is not pooled: an idle tunnel holds it, and a pool
	// would keep a burst's worth (2,000 tunnels: 120 MB) for two GCs after
	// they close. The large ones are (largeBufs).
	buf := copyBuf{small: make([]byte, copyBufSize)}
	defer buf.release()
	var total int64
	for t.tap.Load() {
		b := buf.bytes()
		n, err := src.Read(b)
		if n > 0 {
			w, werr := dst.Write(b[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		// A large flight, or a bulk transfer the parser must still see
		// (TLS 1.2 with renegotiation watched), moves in larger copies;
		// once it quiets down the large buffer goes, so an idle tunnel
		// holds only a small one.
		switch {
		case n == len(b) && len(b) < bulkBufSize:
			buf.resize(min(4*len(b), bulkBufSize))
		case n < copyBufSize/2 && len(b) > copyBufSize:
			buf.resize(copyBufSize)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	out, in := t.tcp, rawTCP(src)
	if down {
		out, in = rawTCP(dst), t.tcp
	}
	if out == nil || in == nil {
		// A client that is not plain TCP (TLS to the proxy): copy in user
		// space, the parser no longer fed.
		n, err := io.CopyBuffer(dst, src, buf.bytes())
		return total + n, err
	}
	// A spliced tunnel may last for hours and needs no buffer at all.
	buf.release()
	buf.small = nil
	n, err := t.splice(out, in, down)
	return total + n, err
}

// splice copies src to dst in the kernel until EOF or an error, counting
// what moved. The idle timeout is kept by a read deadline on src, re-armed
// at most every quarter of the timeout: a copy that moved bytes is activity;
// one that moved none for the whole timeout, either way, ends the tunnel.
// The close reason names the side that failed, as Read and Write do.
func (t *tunnel) splice(dst, src *net.TCPConn, down bool) (int64, error) {
	t.srv.metrics.spliced.Inc()
	idle := t.idle
	var total int64
	defer func() { _ = src.SetReadDeadline(time.Time{}) }()
	// Off Linux, or if no pipe can be had, net's ReadFrom (which on Linux
	// splices too, through its own calls).
	var pipe *splicePipe
	rdst, rsrc := newRawSock(dst), newRawSock(src)
	if rdst != nil && rsrc != nil {
		if p, err := newSplicePipe(); err == nil {
			pipe = p
			defer pipe.close()
		}
	}
	for {
		if idle > 0 {
			deadline := time.Now().Add(idle / 4)
			if end := t.active().Add(idle); end.Before(deadline) {
				deadline = end
			}
			_ = src.SetReadDeadline(deadline)
		}
		var n int64
		var err error
		if pipe != nil {
			n, err = pipe.move(rdst, rsrc, spliceChunk)
		} else {
			n, err = dst.ReadFrom(&io.LimitedReader{R: src, N: spliceChunk})
		}
		if n > 0 {
			total += n
			t.moved(down, n)
		}
		switch {
		case err == nil && n == spliceChunk:
			continue
		case err == nil:
			// EOF from src: the half-close is passed on by the caller.
			if down {
				t.setReason(closeServer, nil)
			}
			return total, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			if n > 0 || idle <= 0 || time.Since(t.active()) < idle {
				continue
			}
			t.setReason(closeIdle, nil)
			return total, err
		}
		// splice(2) does not say whether reading src or writing dst
		// failed; the side the kernel already closed (a reset) is the one.
		failedDst := socketClosed(dst) && !socketClosed(src)
		switch {
		case down && failedDst, !down && !failedDst:
			t.setReason(closeClientError, err)
		case down:
			t.setReason(closeServerError, err)
		default:
			t.setReason(closeServerWriteError, err)
		}
		return total, err
	}
}
