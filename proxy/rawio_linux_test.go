//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// reset makes c's peer see a connection reset.
func reset(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if err := c.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	time.Sleep(20 * time.Millisecond)
}

// errText is an error's text with c's addresses named, so that the same
// failure on two connections reads the same.
func errText(err error, c net.Conn) string {
	if err == nil {
		return "<nil>"
	}
	return strings.NewReplacer(c.LocalAddr().String(), "LOCAL", c.RemoteAddr().String(), "REMOTE").Replace(err.Error())
}

// The raw calls fail as net's own do, word for word: the tunnel's close
// reasons quote them, and net/http tells an aborted background read by
// its Timeout.
func TestRawSockErrorsAreNets(t *testing.T) {
	cases := []struct {
		name string
		// fail brings c into the failing state; op then fails on it.
		fail func(t *testing.T, c, peer *net.TCPConn)
		op   func(r io.ReadWriter) error
	}{
		{"read at the peer's close is EOF", func(t *testing.T, c, peer *net.TCPConn) { peer.Close() },
			func(r io.ReadWriter) error { _, err := r.Read(make([]byte, 10)); return err }},
		{"read past the deadline", func(t *testing.T, c, peer *net.TCPConn) { _ = c.SetReadDeadline(time.Now().Add(-time.Second)) },
			func(r io.ReadWriter) error { _, err := r.Read(make([]byte, 10)); return err }},
		{"read on a closed connection", func(t *testing.T, c, peer *net.TCPConn) { c.Close() },
			func(r io.ReadWriter) error { _, err := r.Read(make([]byte, 10)); return err }},
		{"read after the peer's reset", func(t *testing.T, c, peer *net.TCPConn) { reset(t, peer) },
			func(r io.ReadWriter) error { _, err := r.Read(make([]byte, 10)); return err }},
		{"write after the peer's reset", func(t *testing.T, c, peer *net.TCPConn) { reset(t, peer) },
			func(r io.ReadWriter) error {
				var err error
				for i := 0; i < 3 && err == nil; i++ {
					_, err = r.Write(make([]byte, 1000))
					time.Sleep(10 * time.Millisecond)
				}
				return err
			}},
		{"write past the deadline", func(t *testing.T, c, peer *net.TCPConn) { _ = c.SetWriteDeadline(time.Now().Add(-time.Second)) },
			func(r io.ReadWriter) error { _, err := r.Write([]byte("x")); return err }},
		{"write on a closed connection", func(t *testing.T, c, peer *net.TCPConn) { c.Close() },
			func(r io.ReadWriter) error { _, err := r.Write([]byte("x")); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, p1 := tcpPair(t)
			c2, p2 := tcpPair(t)
			raw := newRawSock(c2)
			tc.fail(t, c1, p1)
			tc.fail(t, c2, p2)
			want, got := tc.op(c1), tc.op(raw)
			if got == nil || errText(got, c2) != errText(want, c1) {
				t.Fatalf("raw: %v; net: %v", got, want)
			}
			// late.go asks the close reason's error for ECONNRESET.
			for _, target := range []error{os.ErrDeadlineExceeded, net.ErrClosed, syscall.ECONNRESET, syscall.EPIPE} {
				if errors.Is(got, target) != errors.Is(want, target) {
					t.Fatalf("raw %v and net %v differ on %v", got, want, target)
				}
			}
			var ne, we net.Error
			if errors.As(got, &ne) != errors.As(want, &we) || ne != nil && ne.Timeout() != we.Timeout() {
				t.Fatalf("raw %v and net %v differ as net.Error", got, want)
			}
		})
	}
}

// Bytes go through untouched and whole, both ways, in and out of the
// splice pipe.
func TestRawSockRelays(t *testing.T) {
	c, s := tcpPair(t)
	rc, rs := newRawSock(c), newRawSock(s)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: more than a socket buffer
	go func() { _, _ = rc.Write(msg) }()
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 32<<10)
	for len(got) < len(msg) {
		n, err := rs.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("read differs from what was written")
	}

	// c -> s spliced on to d -> e.
	d, e := tcpPair(t)
	p, err := newSplicePipe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	go func() { _, _ = rc.Write(msg); _ = c.CloseWrite() }()
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(e); done <- b }()
	n, err := p.move(newRawSock(d), rs, 100<<10)
	if err != nil || n != 100<<10 {
		t.Fatalf("move with a limit: %d, %v", n, err)
	}
	m, err := p.move(newRawSock(d), rs, 1<<30)
	if err != nil || n+m != int64(len(msg)) {
		t.Fatalf("move to EOF: %d, %v", n+m, err)
	}
	_ = d.CloseWrite()
	if b := <-done; !bytes.Equal(b, msg) {
		t.Fatalf("spliced %d bytes, not what was written", len(b))
	}
}

// A failed splice names its side as net's ReadFrom does, and its error is
// the same errno (late.go asks it for ECONNRESET).
func TestRawSpliceErrorsAreNets(t *testing.T) {
	errs := make([]error, 2)
	texts := make([]string, 2)
	for i := range texts {
		src, srcPeer := tcpPair(t)
		dst, dstPeer := tcpPair(t)
		_, _ = srcPeer.Write(bytes.Repeat([]byte("x"), 256<<10))
		reset(t, dstPeer)
		var err error
		if i == 0 {
			_, err = dst.ReadFrom(&io.LimitedReader{R: src, N: 1 << 30})
		} else {
			p, perr := newSplicePipe()
			if perr != nil {
				t.Fatal(perr)
			}
			_, err = p.move(newRawSock(dst), newRawSock(src), 1<<30)
			p.close()
		}
		errs[i], texts[i] = err, errText(err, dst)
	}
	if texts[0] == "<nil>" || texts[1] != texts[0] {
		t.Fatalf("raw splice: %s; net: %s", texts[1], texts[0])
	}
	for _, target := range []error{syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(errs[1], target) != errors.Is(errs[0], target) {
			t.Fatalf("raw splice %v and net %v differ on %v", errs[1], errs[0], target)
		}
	}
}

// A raw read, write or splice allocates nothing: the tunnel makes one per
// burst, and a closure per call was three allocations each.
func TestRawSockAllocatesNothing(t *testing.T) {
	c, s := tcpPair(t)
	rc, rs := newRawSock(c), newRawSock(s)
	msg, buf := []byte("ping"), make([]byte, 64)
	if a := testing.AllocsPerRun(200, func() {
		if _, err := rc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := rs.Read(buf); err != nil || n != len(msg) {
			t.Fatalf("read %d, %v", n, err)
		}
	}); a != 0 {
		t.Fatalf("a raw write and read allocate %v times", a)
	}

	d, e := tcpPair(t)
	rd := newRawSock(d)
	p, err := newSplicePipe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if a := testing.AllocsPerRun(200, func() {
		if _, err := rc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := p.move(rd, rs, int64(len(msg))); err != nil || n != int64(len(msg)) {
			t.Fatalf("move %d, %v", n, err)
		}
		if n, err := e.Read(buf); err != nil || n != len(msg) {
			t.Fatalf("read %d, %v", n, err)
		}
	}); a != 0 {
		t.Fatalf("a splice allocates %v times", a)
	}
}

// Two writes at once (net.Conn allows it) each write all of theirs: the
// second does not share the first's state.
func TestRawSockConcurrentWrites(t *testing.T) {
	c, s := tcpPair(t)
	rc := newRawSock(c)
	a, b := bytes.Repeat([]byte("a"), 512<<10), bytes.Repeat([]byte("b"), 512<<10)
	errs := make(chan error, 2)
	for _, m := range [][]byte{a, b} {
		go func() {
			n, err := rc.Write(m)
			if err == nil && n != len(m) {
				err = io.ErrShortWrite
			}
			errs <- err
		}()
	}
	got := make(chan []byte)
	go func() { all, _ := io.ReadAll(s); got <- all }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_ = c.CloseWrite()
	all := <-got
	if len(all) != len(a)+len(b) || bytes.Count(all, []byte("a")) != len(a) {
		t.Fatalf("read %d bytes, %d of them a", len(all), bytes.Count(all, []byte("a")))
	}
}
