//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// rawSock relays a TCP socket's bytes with raw system calls, through the
// runtime's poller like net's own Read and Write, on a socket that is
// non-blocking, so that no call can block.
//
// Why: every system call net makes goes through the runtime's
// entersyscall, and the first one after the process was idle wakes the
// runtime's monitor thread (sysmon), which then polls every 20 us until
// the process is idle again. A tunnel relays in bursts (one flight, one
// read of a bulk transfer) with idle waits between them, so sysmon woke
// for each: a fifth of certlens's CPU per tunnel, and its context switches
// taken from the TLS endpoints on a small machine. A raw call leaves
// sysmon asleep. Only calls that return at once may be raw: a raw call
// holds the P (certlens runs on one) for as long as it lasts.
type rawSock struct {
	c  *net.TCPConn
	rc syscall.RawConn
	// One read and one write at a time use these; a concurrent second
	// (net.Conn allows it) makes its own.
	rd, wr *rawOp
}

func newRawSock(c *net.TCPConn) *rawSock {
	if c == nil {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawSock{c: c, rc: rc, rd: newRawOp(false), wr: newRawOp(true)}
}

// rawOp is one read or write's state, its callback for the poller bound
// once: a closure made per call cost three allocations a read.
type rawOp struct {
	busy  atomic.Bool
	write bool
	b     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newRawOp(write bool) *rawOp {
	o := &rawOp{write: write}
	if write {
		o.fn = o.writeAll
	} else {
		o.fn = o.readOnce
	}
	return o
}

// take returns o for one call, or a fresh op if another call holds it.
func (o *rawOp) take() *rawOp {
	if o.busy.CompareAndSwap(false, true) {
		return o
	}
	n := newRawOp(o.write)
	n.busy.Store(true)
	return n
}

func (o *rawOp) done() {
	o.b = nil // the caller's buffer is not ours to keep
	o.busy.Store(false)
}

// maxRW is what net hands one read or write (internal/poll's maxRW).
const maxRW = 1 << 30

// Read is net.TCPConn's Read, its errors included.
func (s *rawSock) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	o := s.rd.take()
	defer o.done()
	o.b, o.n, o.errno = b[:min(len(b), maxRW)], 0, 0
	err := s.rc.Read(o.fn)
	if err == nil && o.errno == 0 && o.n == 0 {
		return 0, io.EOF
	}
	return o.n, s.callError("read", "read", err, o.errno)
}

func (o *rawOp) readOnce(fd uintptr) bool {
	r, e := nonblocking(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.b[0])), uintptr(len(o.b)), 0, 0, 0)
	if e == syscall.EAGAIN {
		return false
	}
	if e == 0 {
		o.n = int(r)
	}
	o.errno = e
	return true
}

// Write is net.TCPConn's Write: all of b, or an error.
func (s *rawSock) Write(b []byte) (int, error) {
	o := s.wr.take()
	defer o.done()
	o.b, o.n, o.errno = b, 0, 0
	err := s.rc.Write(o.fn)
	return o.n, s.callError("write", "write", err, o.errno)
}

func (o *rawOp) writeAll(fd uintptr) bool {
	for o.n < len(o.b) {
		p := o.b[o.n:min(len(o.b), o.n+maxRW)]
		r, e := nonblocking(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		if !progress(&o.errno, e, r) {
			return e != syscall.EAGAIN
		}
		o.n += int(r)
	}
	return true
}

// nonblocking makes a system call on a non-blocking descriptor, again if a
// signal interrupted it.
func nonblocking(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
		if e != syscall.EINTR {
			return r, e
		}
	}
}

// progress says whether a call that must move bytes moved some (r); if not,
// it records why in errno, unless the call would only have blocked
// (EAGAIN: the poller waits). None moved and no error is EIO: net says
// io.ErrUnexpectedEOF, and neither a socket nor a pipe with bytes in it
// does this.
func progress(errno *syscall.Errno, e syscall.Errno, r uintptr) bool {
	switch {
	case e == syscall.EAGAIN:
		return false
	case e != 0:
		*errno = e
		return false
	case r == 0:
		*errno = syscall.EIO
		return false
	}
	return true
}

// callError is a raw call's outcome as net reports it for this connection:
// the poller's own error (a deadline, a closed connection), or the call's
// errno under the system call's name.
func (s *rawSock) callError(op, call string, err error, errno syscall.Errno) error {
	switch {
	case err != nil:
		return s.opError(op, pollError(err))
	case errno != 0:
		return s.opError(op, os.NewSyscallError(call, errno))
	}
	return nil
}

// opError wraps err as net does for this connection.
func (s *rawSock) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}

// pollError is the poller's own error (a deadline, a closed connection)
// inside the one syscall.RawConn returns, which names the raw operation.
func pollError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// splicePipe is the pipe splice(2) moves bytes through between two sockets.
// One move runs at a time (a pipe serves one direction of one tunnel); its
// callbacks are bound once, as rawOp's are.
type splicePipe struct {
	r, w    int
	want    int // bytes to move from the socket into the pipe
	in      int // bytes in the pipe
	written int64
	errno   syscall.Errno
	fill    func(fd uintptr) bool
	drain   func(fd uintptr) bool
}

// maxSplice is what one splice(2) is asked to move: net's own limit, a
// default pipe's worth at most.
const maxSplice = 1 << 20

func newSplicePipe() (*splicePipe, error) {
	var fds [2]int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_PIPE2, uintptr(unsafe.Pointer(&fds)), syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0); e != 0 {
		return nil, os.NewSyscallError("pipe2", e)
	}
	p := &splicePipe{r: int(fds[0]), w: int(fds[1])}
	p.fill, p.drain = p.fillFrom, p.drainTo
	return p, nil
}

func (p *splicePipe) close() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.r), 0, 0)
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.w), 0, 0)
}

const spliceNonblock = 0x2 // SPLICE_F_NONBLOCK

// move copies up to limit bytes from src to dst in the kernel, until src's
// EOF (nil error) or an error; it is dst.ReadFrom(io.LimitReader(src,
// limit)) on two TCP connections, errors included.
func (p *splicePipe) move(dst, src *rawSock, limit int64) (int64, error) {
	p.written = 0
	for p.written < limit {
		p.want, p.in, p.errno = int(min(limit-p.written, maxSplice)), 0, 0
		err := src.rc.Read(p.fill)
		if err := dst.callError("readfrom", "splice", err, p.errno); err != nil {
			return p.written, err
		}
		if p.in == 0 {
			return p.written, nil
		}
		err = dst.rc.Write(p.drain)
		if err := dst.callError("readfrom", "splice", err, p.errno); err != nil {
			return p.written, err
		}
	}
	return p.written, nil
}

func (p *splicePipe) fillFrom(fd uintptr) bool {
	r, e := nonblocking(syscall.SYS_SPLICE, fd, 0, uintptr(p.w), 0, uintptr(p.want), spliceNonblock)
	if e == syscall.EAGAIN {
		return false
	}
	if e == 0 {
		p.in = int(r)
	}
	p.errno = e
	return true
}

func (p *splicePipe) drainTo(fd uintptr) bool {
	for p.in > 0 {
		r, e := nonblocking(syscall.SYS_SPLICE, uintptr(p.r), 0, fd, 0, uintptr(p.in), spliceNonblock)
		if !progress(&p.errno, e, r) {
			return e != syscall.EAGAIN
		}
		p.in -= int(r)
		p.written += int64(r)
	}
	return true
}

// CloseWrite and CloseRead are net.TCPConn's, errors included.
func (s *rawSock) CloseWrite() error { return s.shutdown(syscall.SHUT_WR) }
func (s *rawSock) CloseRead() error  { return s.shutdown(syscall.SHUT_RD) }

func (s *rawSock) shutdown(how int) error {
	var errno syscall.Errno
	err := s.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, uintptr(how), 0)
	})
	return s.callError("close", "shutdown", err, errno)
}
