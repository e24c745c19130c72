package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/rules"
)

// tunnel is the upstream side of a CONNECT tunnel (or a sidecar connection):
// it relays bytes untouched and feeds them to the handshake parser on the
// way, before they are passed on, so the parser sees them in causal order.
//
// It embeds net.Conn, not *net.TCPConn: the latter's ReadFrom/WriteTo would
// let io.Copy go around Read and Write, and so around the parser. Its own
// ReadFrom/WriteTo (splice.go) go around them deliberately, once the parser
// is done.
type tunnel struct {
	net.Conn
	tcp  *net.TCPConn
	raw  *rawSock // tcp's reads and writes without waking sysmon; nil off Linux
	srv  *Server
	meta event.Meta

	mu     sync.Mutex // serialises logging of this tunnel's events
	parser *handshake.Parser
	// secrets is the key store the parser decrypts with and a wait for a
	// secret watches: the followed key log, or in intercept mode
	// certlens's own (dialTLS).
	secrets *keylog.Store
	tap     atomic.Bool // false once the parser wants no more bytes

	start      time.Time
	idle       time.Duration // tunnel.idle_timeout when the tunnel opened
	readDL     time.Time     // the upstream read deadline armed; only the server->client copy touches it
	up, down   atomic.Int64
	lastActive atomic.Int64 // monotonic nanoseconds (since clockBase) of the last byte either way
	reason     atomic.Pointer[closeReason]
	closeOnce  sync.Once
	closed     chan struct{} // closed by Close: ends a wait for a key log secret
	waiting    bool          // a wait for a key log secret runs; t.mu
	waitSince  time.Time     // when the parser first held records for a secret; t.mu
	// sink, when set, takes the tunnel's handshakes instead of the default
	// logging: intercept mode completes them first (closing: the last call).
	sink func(hs []*handshake.Handshake, closing bool)
	// late is a TLS 1.3 handshake held for a reset after the request
	// (late.go); t.mu.
	late      *handshake.Handshake
	lateUp    int64
	lateTimer *time.Timer

	// verdict folds the handshake events written, for the connection's
	// own verdict in "connection closed". Its own lock: intercept writes
	// events from its upstream's goroutines, not under mu.
	verdictMu sync.Mutex
	verdict   rules.Connection
}

// fold adds a written handshake event to the connection's verdict.
func (t *tunnel) fold(e *event.Handshake) {
	t.verdictMu.Lock()
	e.Fold(&t.verdict)
	t.verdictMu.Unlock()
}

// conclude gives the "connection closed" event the connection's verdict.
func (t *tunnel) conclude(c *event.Closed) {
	t.verdictMu.Lock()
	c.Conclude(&t.verdict)
	t.verdictMu.Unlock()
}

// newTunnel starts a tunnel whose parser decrypts with secrets (nil:
// nothing).
func (s *Server) newTunnel(meta event.Meta, secrets *keylog.Store) *tunnel {
	popts := parserOptions(s.opts)
	if secrets != nil {
		popts.Secrets = secrets
	}
	t := &tunnel{
		srv:     s,
		meta:    meta,
		parser:  handshake.NewParser(popts),
		secrets: secrets,
		start:   time.Now(),
		idle:    s.dyn.Load().IdleTimeout,
		closed:  make(chan struct{}),
	}
	t.tap.Store(!s.opts.NoParse)
	t.touch()
	return t
}

// attach gives the tunnel its upstream connection.
func (t *tunnel) attach(c net.Conn) {
	t.Conn = c
	t.tcp, _ = c.(*net.TCPConn)
	t.raw = newRawSock(t.tcp)
}

// connRead and connWrite are the upstream socket's own Read and Write.
func (t *tunnel) connRead(b []byte) (int, error) {
	if t.raw != nil {
		return t.raw.Read(b)
	}
	return t.Conn.Read(b)
}

func (t *tunnel) connWrite(b []byte) (int, error) {
	if t.raw != nil {
		return t.raw.Write(b)
	}
	return t.Conn.Write(b)
}

func (t *tunnel) touch() { t.lastActive.Store(int64(time.Since(clockBase))) }

// clockBase anchors the tunnels' activity clock to the monotonic clock: a
// wall clock being slewed or stepped (seen here: 5 ms a second on a VM)
// must not bring an idle timeout forward or put it off.
var clockBase = time.Now()

// active is when the last byte went either way, with a monotonic reading.
func (t *tunnel) active() time.Time { return clockBase.Add(time.Duration(t.lastActive.Load())) }

// moved counts n bytes relayed (down: server->client) in the tunnel and the
// metrics, and notes the activity.
func (t *tunnel) moved(down bool, n int64) {
	t.touch()
	if down {
		t.down.Add(n)
		t.srv.metrics.bytesDown.Add(float64(n))
	} else {
		t.up.Add(n)
		t.srv.metrics.bytesUp.Add(float64(n))
	}
}

// setReason keeps the first reason the tunnel ended: later ones are consequences.
func (t *tunnel) setReason(kind closeKind, err error) {
	t.reason.CompareAndSwap(nil, &closeReason{kind: kind, err: err})
}

// Read carries server->client bytes. The upstream read deadline is the
// tunnel's idle timeout: it only fires when neither side sent anything for
// that long (a long upload keeps the download side's read alive). It is
// re-armed only when activity moved it by more than a quarter of the
// timeout: resetting a runtime timer on every read showed in profiles.
func (t *tunnel) Read(b []byte) (int, error) {
	idle := t.idle
	for {
		if idle > 0 {
			if want := t.active().Add(idle); t.readDL.IsZero() || want.Sub(t.readDL) > idle/4 {
				t.readDL = want
				_ = t.Conn.SetReadDeadline(want)
			}
		}
		n, err := t.connRead(b)
		if n > 0 {
			t.moved(true, int64(n))
			if t.tap.Load() {
				t.feed(handshake.FromServer, b[:n])
			}
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.readDL = time.Time{} // the next pass re-arms from the latest activity
			if time.Since(t.active()) < idle {
				if n > 0 {
					return n, nil
				}
				continue
			}
			t.setReason(closeIdle, nil)
		} else if err == io.EOF {
			t.setReason(closeServer, nil)
		} else if err != nil {
			t.setReason(closeServerError, err)
		}
		return n, err
	}
}

// Write carries client->server bytes.
func (t *tunnel) Write(b []byte) (int, error) {
	if t.tap.Load() {
		t.feed(handshake.FromClient, b)
	}
	n, err := t.connWrite(b)
	t.moved(false, int64(n))
	if err != nil {
		t.setReason(closeServerWriteError, err)
	}
	return n, err
}

// CloseWrite is called when the client finished sending: pass the half-close on.
func (t *tunnel) CloseWrite() error {
	t.setReason(closeClient, nil)
	if t.raw != nil {
		return t.raw.CloseWrite()
	}
	if t.tcp != nil {
		return t.tcp.CloseWrite()
	}
	return nil
}

// CloseRead is called when the server->client copy ended.
func (t *tunnel) CloseRead() error {
	if t.raw != nil {
		return t.raw.CloseRead()
	}
	if t.tcp != nil {
		return t.tcp.CloseRead()
	}
	return nil
}

// Close ends the tunnel and writes its last events: handshakes the
// connection died in the middle of, then "connection closed".
func (t *tunnel) Close() error {
	var err error
	if t.Conn != nil {
		err = t.Conn.Close()
	}
	t.closeOnce.Do(func() {
		t.setReason(closeUnknown, nil)
		// A shutdown whose grace ran out closes every tunnel in turn: no
		// more waiting for key log lines then.
		if r := t.reason.Load(); r == nil || r.kind != closeShutdown {
			t.lastChance()
		}
		close(t.closed)
		t.mu.Lock()
		t.releaseLate()
		// A secret logged after the last bytes came (the tunnel's own
		// key log, intercept mode) still decrypts what is held.
		t.parser.Retry()
		hs := t.parser.Close()
		t.logHandshakes(hs, true)
		t.mu.Unlock()
		t.srv.logClosed(t)
		t.srv.tunnelDone(t)
	})
	return err
}

func (t *tunnel) feed(from handshake.Direction, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	more := t.parser.Feed(from, b)
	t.logHandshakes(t.parser.Drain(), false)
	t.awaitSecret()
	if !more {
		t.tap.Store(false)
	}
}

// logHandshakes writes one event per handshake; t.mu held.
func (t *tunnel) logHandshakes(hs []*handshake.Handshake, closing bool) {
	// Measured when the parser decided, not when the event is written:
	// late.go and intercept's sink may hold it for seconds.
	for _, h := range hs {
		if h.Index == 0 {
			t.srv.metrics.hsDuration.Observe(time.Since(t.start).Seconds())
		}
	}
	if t.sink != nil {
		t.sink(hs, closing)
		return
	}
	for _, h := range hs {
		if !closing && t.late == nil && lateCandidate(h) {
			t.holdLate(h)
			continue
		}
		ev := rules.Evidence{}
		if closing {
			ev = t.closeEvidence(h)
		}
		t.srv.logHandshake(t, h, ev)
	}
}
