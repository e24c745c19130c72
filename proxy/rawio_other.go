//go:build !linux

package proxy

import (
	"io"
	"net"
)

// rawSock is Linux's raw-syscall relay (rawio_linux.go); elsewhere the
// tunnel uses net's own calls.
type rawSock struct{ c *net.TCPConn }

func newRawSock(*net.TCPConn) *rawSock { return nil }

func (s *rawSock) Read(b []byte) (int, error)  { return s.c.Read(b) }
func (s *rawSock) Write(b []byte) (int, error) { return s.c.Write(b) }

// splicePipe: without splice(2), ReadFrom copies in user space.
type splicePipe struct{}

func newSplicePipe() (*splicePipe, error) { return &splicePipe{}, nil }

func (p *splicePipe) close() {}

func (p *splicePipe) move(dst, src *rawSock, limit int64) (int64, error) {
	return dst.c.ReadFrom(&io.LimitedReader{R: src.c, N: limit})
}

func (s *rawSock) CloseWrite() error { return s.c.CloseWrite() }
func (s *rawSock) CloseRead() error  { return s.c.CloseRead() }
