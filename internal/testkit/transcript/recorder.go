package transcript

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// closeGrace is how long Close lets open connections finish on their own:
// after a client exits, the server's last records (close_notify, an alert)
// are still on their way through the relay.
const closeGrace = 2 * time.Second

// dialTimeout bounds the connection to the upstream.
const dialTimeout = 5 * time.Second

// Recorder is a TCP relay on 127.0.0.1 that forwards every byte unchanged to
// one upstream address and records each connection as a Transcript.
type Recorder struct {
	ln       net.Listener
	upstream string

	acceptDone chan struct{}

	mu     sync.Mutex
	relays []*relay
	wg     sync.WaitGroup // relays
}

type relay struct {
	mu     sync.Mutex
	t      Transcript
	client net.Conn
	server net.Conn // nil until dialled
	done   chan struct{}
}

// NewRecorder listens on 127.0.0.1 at a free port and relays each accepted
// connection to upstream.
func NewRecorder(upstream string) (*Recorder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Recorder{ln: ln, upstream: upstream, acceptDone: make(chan struct{})}
	go r.accept()
	return r, nil
}

// Addr is the address clients should connect to.
func (r *Recorder) Addr() string { return r.ln.Addr().String() }

func (r *Recorder) accept() {
	defer close(r.acceptDone)
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		rl := &relay{client: c, done: make(chan struct{})}
		r.mu.Lock()
		r.relays = append(r.relays, rl)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			rl.run(r.upstream)
		}()
	}
}

func (rl *relay) run(upstream string) {
	defer close(rl.done)
	defer rl.client.Close()
	server, err := net.DialTimeout("tcp", upstream, dialTimeout)
	if err != nil {
		return
	}
	rl.mu.Lock()
	rl.server = server
	rl.mu.Unlock()
	defer server.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rl.pipe(rl.client, server, ClientToServer) }()
	go func() { defer wg.Done(); rl.pipe(server, rl.client, ServerToClient) }()
	wg.Wait()
}

// pipe copies src to dst, recording each read before forwarding it so that
// the transcript's order is causal: no answer can be recorded before the
// bytes it answers.
func (rl *relay) pipe(src, dst net.Conn, dir Direction) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			rl.mu.Lock()
			rl.t.Chunks = append(rl.t.Chunks, Chunk{Dir: dir, Data: append([]byte(nil), buf[:n]...)})
			rl.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				// The receiver is gone; nothing more can be delivered either way.
				src.Close()
				dst.Close()
				return
			}
		}
		if err != nil {
			// Pass a clean end of this direction on and let the other one
			// finish, as a TLS peer may still send close_notify after reading
			// EOF; a reset ends both.
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) && tc.CloseWrite() == nil {
				return
			}
			dst.Close()
			return
		}
	}
}

// Close stops accepting, gives open connections closeGrace to end by
// themselves, then cuts the rest and waits for the relay to stop.
func (r *Recorder) Close() error {
	err := r.ln.Close()
	// Once accept has returned, no relay can be added behind our back.
	<-r.acceptDone
	r.mu.Lock()
	relays := append([]*relay(nil), r.relays...)
	r.mu.Unlock()
	deadline := time.After(closeGrace)
	for _, rl := range relays {
		select {
		case <-rl.done:
		case <-deadline:
			rl.mu.Lock()
			rl.client.Close()
			if rl.server != nil {
				rl.server.Close()
			}
			rl.mu.Unlock()
		}
	}
	r.wg.Wait()
	return err
}

// Transcripts returns one transcript per accepted connection, in accept
// order, with empty metadata for the caller to fill. Call it after Close;
// before, it returns what has been recorded so far.
func (r *Recorder) Transcripts() []*Transcript {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Transcript, 0, len(r.relays))
	for _, rl := range r.relays {
		rl.mu.Lock()
		out = append(out, &Transcript{Meta: rl.t.Meta, Chunks: append([]Chunk(nil), rl.t.Chunks...)})
		rl.mu.Unlock()
	}
	return out
}
