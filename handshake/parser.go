package handshake

import (
	"fmt"
	"sync"
)

const (
	// defaultMaxMessage bounds one reassembled handshake message. The largest
	// legitimate CertificateRequest is ~64 KiB; long chains stay well below.
	defaultMaxMessage = 256 << 10
	// maxOpen bounds the handshakes open at once. A real connection has one
	// (two at most, around a renegotiation); only a peer that keeps starting
	// handshakes without finishing any reaches the limit.
	maxOpen = 4
	// maxKeptMessage is the largest reassembly buffer a stream keeps for
	// the next message that spans records.
	maxKeptMessage = 4 << 10
)

// Options tune a Parser. The zero value is the default.
type Options struct {
	// MaxMessage caps one handshake message; larger ones are reported and skipped.
	MaxMessage int
	// StopAfterHandshake makes Done true after a TLS 1.2 initial handshake
	// instead of scanning record headers for renegotiation.
	StopAfterHandshake bool
	// Secrets, when set, decrypts protected handshake records with the
	// client's key log (decryptor.go, ciphers.go); nil reads only clear ones.
	Secrets SecretSource
}

// Parser turns the two byte streams of one TLS connection into Handshakes.
// It is fed chunks of any size from either direction, in the order they were
// read; it never blocks, never fails the caller, and holds a bounded amount of
// memory whatever the peers send. It is safe for use by two goroutines, one
// per direction.
type Parser struct {
	mu      sync.Mutex
	opts    Options
	streams [2]stream
	version Version // negotiated by the latest ServerHello
	alpn    string  // ALPN protocol in force on the connection
	tls13   bool
	// layout12 is how the TLS 1.2 suite in force sizes records (unknown
	// once a renegotiation may have changed it), status12 that the
	// ServerHello answered status_request: what inferRenegotiation reads.
	layout12 layout12
	status12 bool
	// joined: a stream was joined in the middle (Midstream).
	joined bool
	// pha watches a TLS 1.3 connection seen without keys after its
	// handshake for a post-handshake authentication; nil when not.
	pha     *phaWatch
	open    []*Handshake // started, outcome not yet known
	ready   []*Handshake // outcome known, not yet drained
	emitted int          // handshakes drained or ready
	started int          // handshakes created
	done    bool
	obs     Observation
	dec     *decryptor // nil without Options.Secrets
	// decrypting: the records being parsed were decrypted.
	decrypting bool
}

// stream is the record layer and message reassembly for one direction.
type stream struct {
	dir    Direction
	hdr    [recordHeaderLen]byte
	hdrN   int
	typ    ContentType
	need   int    // body bytes of the current record still to come
	recLen int    // current record's body length
	keep   bool   // whether the current record's body is needed
	body   []byte // current record's body, when it spans chunks
	offset int64  // bytes fed so far, for error positions

	msg      []byte  // a handshake message spanning records, header included
	msgBuf   *[]byte // msg's buffer when it came from msgPool
	msgSkip  int     // bytes left of an oversize message being dropped
	msgStart int     // record number where the pending message began
	msgEnd   int64   // stream offset just past the message being decoded
	records  int     // records read

	started   bool // the first record header was read
	stopped   bool // nothing more is parsed in this direction
	protected bool // records are encrypted from here on
	// awaitFinished: a ChangeCipherSpec was seen; the next handshake record is Finished.
	awaitFinished bool
	// npn: the server accepted NPN, so the client's first protected
	// handshake record may be its NextProtocol, not yet its Finished (npn.go).
	npn bool
	// hs is the index of the handshake this direction is in, -1 before any.
	hs int
	// inHandshake: this direction is inside handshake hs (false once its Finished passed).
	inHandshake bool
	count       int // handshakes this direction started
}

// NewParser returns a Parser for one connection.
func NewParser(opts Options) *Parser {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = defaultMaxMessage
	}
	p := &Parser{opts: opts}
	if opts.Secrets != nil {
		p.dec = &decryptor{src: opts.Secrets}
	}
	p.streams[FromClient] = stream{dir: FromClient, hs: -1}
	p.streams[FromServer] = stream{dir: FromServer, hs: -1}
	return p
}

// Feed gives the parser the next bytes one side sent. The parser does not
// keep b. It reports whether the parser still wants bytes: false means the
// caller may stop feeding (Done).
func (p *Parser) Feed(from Direction, b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from == FromClient {
		p.obs.ClientBytes += int64(len(b))
	} else {
		p.obs.ServerBytes += int64(len(b))
	}
	if p.done {
		return false
	}
	p.feed(&p.streams[from], b)
	if p.dec != nil && len(p.dec.held) > 0 {
		p.retry()
	}
	p.updateDone()
	return !p.done
}

// Done reports that the parser needs no more bytes: after a TLS 1.3
// handshake (whose later records it cannot read), after a TLS 1.2 one with
// StopAfterHandshake, or when the stream is not TLS.
func (p *Parser) Done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Drain returns the handshakes whose outcome became known since the last
// call, in order. They are never modified afterwards.
func (p *Parser) Drain() []*Handshake {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.ready
	p.ready = nil
	return out
}

// Close ends both streams: handshakes still open end as partial (the
// connection died mid-handshake) and are returned with any not yet drained.
func (p *Parser) Close() []*Handshake {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dec != nil && len(p.dec.held) > 0 {
		p.giveUp()
	}
	// A connection that closed after the client spoke but before the server
	// answered still had a handshake: report it, don't lose it.
	// finish removes h from p.open: ranging over p.open here skipped every
	// other handshake when several were open, and those were never reported.
	for i := range p.streams {
		// A stream shorter than one record header ("ping") is judged on
		// what there is; deciding earlier would depend on how reads cut it.
		if s := &p.streams[i]; !s.started && !s.stopped && s.hdrN > 0 {
			s.started = true
			why := describeNotTLS(s.hdr[:s.hdrN])
			if plausibleFirstByte(s.dir, s.hdr[0]) {
				why = fmt.Errorf("%w: the stream ended after %d bytes (%x), before a whole record header", ErrNotTLS, s.hdrN, s.hdr[:s.hdrN])
			}
			p.notTLS(s, why)
		}
	}
	for len(p.open) > 0 {
		h := p.open[0]
		if h.decrypted && h.ClientFinished && h.ServerFinished || p.flightsDone13(h) {
			// A decrypted TLS 1.3 handshake waits for the server's next
			// record to see an alert; a connection that ends first ended
			// after a complete handshake.
			p.finish(h, EndFinished)
			continue
		}
		h.Visibility = VisibilityPartial
		p.finish(h, EndEOF)
	}
	if p.pha != nil {
		if r := p.pha.end(); r != nil {
			p.postHandshakeInferred(r)
		}
		p.pha = nil
	}
	p.done = true
	for i := range p.streams {
		p.streams[i].release()
	}
	out := p.ready
	p.ready = nil
	return out
}

// Observation returns a snapshot of the connection-level facts.
func (p *Parser) Observation() Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.obs
	o.Version = p.version
	o.Handshakes = p.emitted
	o.ClientRecord = p.streams[FromClient].records
	o.ServerRecord = p.streams[FromServer].records
	o.Alerts = append([]Alert(nil), o.Alerts...)
	o.Errors = append([]string(nil), o.Errors...)
	return o
}

func (p *Parser) updateDone() {
	c, s := &p.streams[FromClient], &p.streams[FromServer]
	switch {
	case c.stopped:
		// Nothing the client sends can be read any more, so nothing the
		// server answers can be placed.
		p.done = true
	case len(p.open) == 0 && p.emitted > 0 && (p.tls13 || p.opts.StopAfterHandshake) && !p.dec.holding() && !p.dec.watchingPHA(p) && p.pha == nil:
		// TLS 1.3 hides everything after its handshake; with the header scan
		// off, TLS 1.2 has nothing more to show either.
		p.done = true
	}
	if p.done {
		c.release()
		s.release()
	}
}

// ClientHello returns the most recent ClientHello read in clear, or nil. A
// sidecar reads it before it picks the upstream by SNI.
func (p *Parser) ClientHello() *ClientHello {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.open) - 1; i >= 0; i-- {
		if p.open[i].ClientHello != nil {
			return p.open[i].ClientHello
		}
	}
	for i := len(p.ready) - 1; i >= 0; i-- {
		if p.ready[i].ClientHello != nil {
			return p.ready[i].ClientHello
		}
	}
	return nil
}

// NotTLS reports why the client's stream is not TLS, "" while it may be.
func (p *Parser) NotTLS() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.obs.NotTLS
}

// Midstream tells the parser that the stream from one side is joined in the
// middle of an established connection (a capture that starts late): its
// next byte is the start of a protected record, and one handshake is
// assumed done, so a handshake record that follows is a renegotiation,
// seen encrypted. It must be called before that side's first Feed; later
// it does nothing.
func (p *Parser) Midstream(from Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.streams[from]
	if s.started || s.hdrN > 0 || s.stopped {
		return
	}
	s.started, s.protected = true, true
	s.count = max(s.count, 1)
	p.joined = true
	s.inHandshake = false
}

// Started returns how many handshakes the parser has seen begin, the one in
// progress included: a client tapping its own connection (certlens probe)
// learns which handshake its TLS stack is in, renegotiations included.
func (p *Parser) Started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}
