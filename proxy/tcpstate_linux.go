//go:build linux

package proxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// socketClosed reports whether the kernel moved c to TCP_CLOSE, as it does
// when the peer reset the connection.
func socketClosed(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err == nil && info.State == unix.BPF_TCP_CLOSE
	})
	return closed
}
