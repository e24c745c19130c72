package proxy

// halfCloser is a connection that can close one direction: *net.TCPConn,
// and the front door's guardedConn around one.
type halfCloser interface {
	CloseWrite() error
	CloseRead() error
}
