//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"os"
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
}

func newRawSock(c *net.TCPConn) *rawSock {
	if c == nil {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawSock{c: c, rc: rc}
}

// maxRW is what net hands one read or write (internal/poll's maxRW).
const maxRW = 1 << 30

// Read is net.TCPConn's Read, its errors included.
func (s *rawSock) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > maxRW {
		b = b[:maxRW]
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			case 0:
				n = int(r)
			default:
				errno = e
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, s.opError("read", pollError(err))
	case errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write is net.TCPConn's Write: all of b, or an error.
func (s *rawSock) Write(b []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			p := b[n:min(len(b), n+maxRW)]
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			case 0:
				if r == 0 {
					errno = syscall.EIO // net says io.ErrUnexpectedEOF; a socket never does this
					return true
				}
				n += int(r)
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, s.opError("write", pollError(err))
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
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
type splicePipe struct{ r, w int }

// maxSplice is what one splice(2) is asked to move: net's own limit, a
// default pipe's worth at most.
const maxSplice = 1 << 20

func newSplicePipe() (*splicePipe, error) {
	var fds [2]int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_PIPE2, uintptr(unsafe.Pointer(&fds)), syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0); e != 0 {
		return nil, os.NewSyscallError("pipe2", e)
	}
	return &splicePipe{r: int(fds[0]), w: int(fds[1])}, nil
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
	var written int64
	for written < limit {
		var in int
		var errno syscall.Errno
		err := src.rc.Read(func(fd uintptr) bool {
			for {
				r, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, fd, 0, uintptr(p.w), 0, uintptr(min(limit-written, maxSplice)), spliceNonblock)
				switch e {
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					return false
				case 0:
					in = int(r)
				default:
					errno = e
				}
				return true
			}
		})
		switch {
		case err != nil:
			return written, dst.opError("readfrom", pollError(err))
		case errno != 0:
			return written, dst.opError("readfrom", os.NewSyscallError("splice", errno))
		case in == 0:
			return written, nil
		}
		err = dst.rc.Write(func(fd uintptr) bool {
			for in > 0 {
				r, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(p.r), 0, fd, 0, uintptr(in), spliceNonblock)
				switch e {
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					return false
				case 0:
					if r == 0 {
						errno = syscall.EIO // a pipe with bytes in it never reads empty
						return true
					}
					in -= int(r)
					written += int64(r)
				default:
					errno = e
					return true
				}
			}
			return true
		})
		switch {
		case err != nil:
			return written, dst.opError("readfrom", pollError(err))
		case errno != 0:
			return written, dst.opError("readfrom", os.NewSyscallError("splice", errno))
		}
	}
	return written, nil
}

// CloseWrite and CloseRead are net.TCPConn's, errors included.
func (s *rawSock) CloseWrite() error { return s.shutdown(syscall.SHUT_WR) }
func (s *rawSock) CloseRead() error  { return s.shutdown(syscall.SHUT_RD) }

func (s *rawSock) shutdown(how int) error {
	var errno syscall.Errno
	err := s.rc.Control(func(fd uintptr) {
		_, _, errno = syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, uintptr(how), 0)
	})
	switch {
	case err != nil:
		return s.opError("close", pollError(err))
	case errno != 0:
		return s.opError("close", os.NewSyscallError("shutdown", errno))
	}
	return nil
}
