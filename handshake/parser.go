package handshake

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

const (
	recordHeaderLen = 5
	// maxCiphertext is the largest record body any TLS version allows
	// (RFC 5246 6.2.3: 2^14 + 2048).
	maxCiphertext = 1<<14 + 2048
	// DefaultMaxMessage bounds one reassembled handshake message. The largest
	// legitimate CertificateRequest is ~64 KiB; long chains stay well below.
	DefaultMaxMessage = 256 << 10
	// maxOpen bounds the handshakes open at once. A real connection has one
	// (two at most, around a renegotiation); only a peer that keeps starting
	// handshakes without finishing any reaches the limit.
	maxOpen = 4
	// maxKeptMessage is the largest reassembly buffer a stream keeps for
	// the next message that spans records.
	maxKeptMessage = 4 << 10
)

// ErrNotTLS marks a stream that does not start with a TLS record.
var ErrNotTLS = errors.New("not TLS")

// ErrOversize marks a handshake message longer than Options.MaxMessage.
var ErrOversize = errors.New("handshake message too large")

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
		opts.MaxMessage = DefaultMaxMessage
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
				why = fmt.Sprintf("%v: the stream ended after %d bytes (%x), before a whole record header", ErrNotTLS, s.hdrN, s.hdr[:s.hdrN])
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

func (s *stream) release() {
	s.body = nil
	s.dropMsg()
}

// msgPool recycles the buffers of messages that span records, up to
// maxPooledMessage: a server with a long issuer list sends a 60 KB
// CertificateRequest on every handshake, and allocating (and zeroing, and
// collecting) one per handshake cost more than reading it.
var msgPool = sync.Pool{New: func() any { b := make([]byte, 0, maxPooledMessage); return &b }}

// maxPooledMessage holds the largest certificate_authorities vector (64
// KiB) with the rest of its CertificateRequest.
const maxPooledMessage = 4 + 72<<10

// growMsg makes room for a whole message of n bytes, header included.
func (s *stream) growMsg(n int) {
	if cap(s.msg) >= n {
		return
	}
	old := s.msg
	if n <= maxPooledMessage {
		buf := msgPool.Get().(*[]byte)
		s.msg = append((*buf)[:0], old...)
		if s.msgBuf != nil {
			*s.msgBuf = (*s.msgBuf)[:0]
			msgPool.Put(s.msgBuf)
		}
		s.msgBuf = buf
		return
	}
	s.msg = append(make([]byte, 0, n), old...)
	s.dropPooled()
}

// dropMsg lets go of the message buffer, back to the pool if it came from it.
func (s *stream) dropMsg() {
	s.msg = nil
	s.dropPooled()
}

func (s *stream) dropPooled() {
	if s.msgBuf != nil {
		*s.msgBuf = (*s.msgBuf)[:0]
		msgPool.Put(s.msgBuf)
		s.msgBuf = nil
	}
}

func (p *Parser) feed(s *stream, b []byte) {
	// Stop at the record that made the parser done, not at the end of the
	// chunk: what is counted (records, alerts) must not depend on how the
	// caller's reads happened to cut the stream.
	for len(b) > 0 && !s.stopped && !p.done {
		if s.hdrN < recordHeaderLen {
			n := copy(s.hdr[s.hdrN:], b)
			s.hdrN += n
			s.offset += int64(n)
			b = b[n:]
			if s.hdrN < recordHeaderLen {
				return
			}
			if !p.header(s) {
				return
			}
			if s.need == 0 {
				p.record(s, nil)
			}
			continue
		}
		n := min(s.need, len(b))
		switch {
		case !s.keep:
			// Only the header matters: skip the body without touching it.
		case len(s.body) == 0 && n == s.need:
			// The whole body is in this chunk: parse it in place.
			s.need = 0
			s.offset += int64(n)
			p.record(s, b[:n])
			b = b[n:]
			continue
		default:
			if cap(s.body)-len(s.body) < n {
				// Grow to the record's length at once: append's own growth
				// would overshoot maxCiphertext, the bound this buffer keeps
				// (an 18 KiB record fed in small pieces ended at 21 KiB).
				s.body = append(make([]byte, 0, s.recLen), s.body...)
			}
			s.body = append(s.body, b[:n]...)
		}
		s.need -= n
		s.offset += int64(n)
		b = b[n:]
		if s.need == 0 {
			p.record(s, s.body)
		}
	}
}

// header validates the 5-byte record header just read. It reports false when
// the direction is stopped.
func (p *Parser) header(s *stream) bool {
	typ := ContentType(s.hdr[0])
	length := int(s.hdr[3])<<8 | int(s.hdr[4])
	valid := ValidRecordHeader(s.hdr[:])
	if !s.started {
		s.started = true
		if s.dir == FromClient && typ != ContentHandshake {
			valid = false
		}
		if !valid {
			p.notTLS(s, describeNotTLS(s.hdr[:]))
			return false
		}
	}
	if !valid {
		p.streamError(s, fmt.Sprintf("%s stream: invalid record header %x at byte %d", s.dir, s.hdr, s.offset-recordHeaderLen))
		return false
	}
	s.typ, s.recLen, s.need = typ, length, length
	s.records++
	s.body = s.body[:0]
	// Bodies are read only while they are in clear; a protected record's
	// length and type are all that can be known.
	s.keep = !s.protected || (typ == ContentAlert && length == 2) || typ == ContentChangeCipherSpec ||
		p.dec.wants(p, s, typ)
	// No buffer yet: a record that comes whole in one chunk, as most do,
	// is parsed in place; feed allocates one for a record cut across chunks.
	return true
}

// record handles one complete record; it resets the header state.
func (p *Parser) record(s *stream, body []byte) {
	s.hdrN = 0
	p.route(s, s.typ, uint16(s.hdr[1])<<8|uint16(s.hdr[2]), s.recLen, s.keep, body)
	if len(s.body) > 0 {
		s.body = s.body[:0]
	}
	// Done is decided per record, so that feed stops right after the record
	// that ended the parser's interest whatever the chunk sizes.
	p.updateDone()
}

// route sends one record to decryption, or reads it as clear or protected.
func (p *Parser) route(s *stream, typ ContentType, version uint16, length int, keep bool, body []byte) {
	switch {
	case p.dec != nil && p.intercept(s, typ, version, length, keep, body):
	case keep && (!s.protected || typ == ContentChangeCipherSpec || (typ == ContentAlert && length == 2)):
		p.clearRecord(s, typ, body)
	default:
		p.protectedRecord(s, typ, length)
	}
}

// clearRecord handles a record whose body was kept.
func (p *Parser) clearRecord(s *stream, typ ContentType, body []byte) {
	switch typ {
	case ContentHandshake:
		p.handshakeData(s, body)
	case ContentChangeCipherSpec:
		p.changeCipherSpec(s)
	case ContentAlert:
		p.alerts(s, body)
	case ContentApplicationData:
		// Clear application data: TLS 1.3 0-RTT before the ServerHello, or a
		// peer that skipped the handshake. It ends any open handshake's
		// clear phase either way.
		p.applicationData(s)
	}
}

func (p *Parser) changeCipherSpec(s *stream) {
	if p.tls13 {
		return // RFC 8446 D.4 middlebox-compatibility CCS: meaningless.
	}
	h := p.current(s)
	if h != nil && s.dir == FromServer && h.ServerCertificate == nil && !h.ServerHelloDone && h.ServerHello != nil {
		h.Abbreviated = true
	}
	if h != nil {
		h.addMessage(s.dir, "change_cipher_spec")
		if s.protected {
			p.note12(h, s.dir, ContentChangeCipherSpec, 1)
		}
	}
	s.protected = true
	s.awaitFinished = true
}

func (p *Parser) alerts(s *stream, body []byte) {
	if len(body) == 0 || len(body)%2 != 0 {
		p.addError(p.current(s), fmt.Sprintf("%s alert record of %d bytes", s.dir, len(body)))
		return
	}
	for i := 0; i+1 < len(body); i += 2 {
		p.alert(s, Alert{From: s.dir, Level: AlertLevel(body[i]), Description: AlertDescription(body[i+1])})
	}
}

func (p *Parser) alert(s *stream, a Alert) {
	h := p.current(s)
	if h == nil {
		h = p.latestOpen()
	}
	if h == nil {
		if len(p.obs.Alerts) < maxAlerts {
			p.obs.Alerts = append(p.obs.Alerts, a)
		}
		return
	}
	h.addAlert(a)
	if a.Encrypted {
		h.addMessage(s.dir, "alert(encrypted)")
	} else {
		h.addMessage(s.dir, "alert("+a.Description.String()+")")
	}
	if a.Fatal() {
		p.finish(h, EndAlert)
	}
}

func (p *Parser) applicationData(s *stream) {
	// The first application data ends the initial handshake: in TLS 1.2 only
	// False Start gets here before both Finished. A renegotiation may be
	// interleaved with application data (RFC 5246 7.4.1.1) and goes on.
	if h := p.current(s); h != nil && h.Phase == PhaseInitial && !p.tls13 {
		p.finish(h, EndApplicationData)
		s.inHandshake = false
	}
}

// protectedRecord reads what a protected record's header says.
func (p *Parser) protectedRecord(s *stream, typ ContentType, length int) {
	if p.tls13 {
		p.protected13(s, typ, length)
		return
	}
	switch typ {
	case ContentHandshake:
		if s.awaitFinished && s.npn {
			s.npn = false
			if !p.finishedRecord12(length) {
				// NPN's NextProtocol; the Finished follows in the next record.
				if h := p.current(s); h != nil {
					h.addMessage(s.dir, "next_protocol(encrypted)")
				}
				return
			}
		}
		if s.awaitFinished {
			s.awaitFinished = false
			// This side's Finished ends its part even when the handshake
			// was already reported: a client's False Start data ended the
			// initial one before the server's Finished, and the server's
			// HelloRequest that follows must start a renegotiation.
			s.inHandshake = false
			if h := p.current(s); h != nil {
				h.addMessage(s.dir, "finished(encrypted)")
				if h.Phase != PhaseInitial {
					p.addRecord(h, s.dir, length)
					p.note12(h, s.dir, ContentHandshake, length)
				}
				if s.dir == FromClient {
					h.ClientFinished = true
				} else {
					h.ServerFinished = true
				}
				if h.ClientFinished && h.ServerFinished {
					p.finish(h, EndFinished)
				}
			}
			return
		}
		if !s.inHandshake {
			// A handshake record after this side finished: renegotiation
			// (or the server's HelloRequest that starts it).
			first := p.started
			h := p.begin(s, PhaseRenegotiation)
			if h != nil && p.started > first && s.dir == FromServer && p.layout12.fits(length, helloRequestLen) {
				// RFC 5246 7.4.1.1: outside a handshake a server may send
				// only a HelloRequest. Its size confirms it, where the
				// suite's layout is known: a tee that reordered a client's
				// ClientHello behind the server's answer shows a ServerHello.
				h.HelloRequest = true
			}
		}
		if h := p.current(s); h != nil {
			h.addMessage(s.dir, "encrypted("+strconv.Itoa(length)+")")
			p.addRecord(h, s.dir, length)
			p.note12(h, s.dir, ContentHandshake, length)
		}
	case ContentChangeCipherSpec:
		s.awaitFinished = true
		if h := p.current(s); h != nil {
			h.addMessage(s.dir, "change_cipher_spec")
			p.note12(h, s.dir, ContentChangeCipherSpec, length)
		}
	case ContentAlert:
		h := p.current(s)
		if h == nil {
			h = p.latestOpen()
		}
		p.note12(h, s.dir, ContentAlert, length)
		p.alert(s, Alert{From: s.dir, Encrypted: true})
	case ContentApplicationData:
		p.applicationData(s)
	}
}

// protected13 follows a TLS 1.3 handshake seen from outside: every protected
// record is application_data on the wire, so only lengths and order are known.
func (p *Parser) protected13(s *stream, typ ContentType, length int) {
	h := p.latestOpen()
	if h == nil {
		if p.pha != nil && typ == ContentApplicationData {
			r, over := p.pha.record(s.dir, length)
			if over {
				p.pha = nil
			}
			if r != nil {
				p.postHandshakeInferred(r)
			}
		}
		return
	}
	if typ == ContentAlert {
		p.alert(s, Alert{From: s.dir, Encrypted: true})
		return
	}
	if typ != ContentApplicationData {
		h.addMessage(s.dir, typ.String()+"("+strconv.Itoa(length)+")")
		return
	}
	h.addMessage(s.dir, "encrypted("+strconv.Itoa(length)+")")
	p.addRecord(h, s.dir, length)
	// The server speaking again after the client's first protected flight
	// means it has processed that flight: the handshake is over (or failed
	// with an encrypted alert, indistinguishable here).
	if s.dir == FromServer && len(h.ClientRecords) > 0 {
		p.finish(h, EndFinished)
	} else if s.dir == FromClient && len(h.ClientRecords) >= maxRecords {
		p.finish(h, EndFinished)
	}
}

// note12 keeps a TLS 1.2 renegotiation's protected record for
// inferRenegotiation.
func (p *Parser) note12(h *Handshake, from Direction, typ ContentType, length int) {
	if h != nil && h.Phase == PhaseRenegotiation && !p.tls13 && len(h.recs12) < maxRec12 {
		h.recs12 = append(h.recs12, rec12{from, typ, length})
	}
}

func (p *Parser) addRecord(h *Handshake, from Direction, length int) {
	if from == FromClient {
		if len(h.ClientRecords) < maxRecords {
			h.ClientRecords = append(h.ClientRecords, length)
		}
	} else if len(h.ServerRecords) < maxRecords {
		h.ServerRecords = append(h.ServerRecords, length)
	}
}

// handshakeData reassembles handshake messages from one record's body.
func (p *Parser) handshakeData(s *stream, data []byte) {
	for len(data) > 0 {
		if s.msgSkip > 0 {
			n := min(s.msgSkip, len(data))
			s.msgSkip -= n
			data = data[n:]
			continue
		}
		if len(s.msg) == 0 {
			s.msgStart = s.records
			if len(data) >= 4 {
				length := int(data[1])<<16 | int(data[2])<<8 | int(data[3])
				if length > p.opts.MaxMessage {
					p.oversize(s, MessageType(data[0]), length)
					data = data[4:]
					continue
				}
				if len(data) >= 4+length {
					// The common case: a whole message in one record, parsed in place.
					s.msgEnd = s.offset - int64(len(data)-4-length)
					p.message(s, MessageType(data[0]), data[4:4+length], 1)
					data = data[4+length:]
					continue
				}
				s.growMsg(4 + length)
			}
		}
		if len(s.msg) < 4 {
			n := min(4-len(s.msg), len(data))
			s.msg = append(s.msg, data[:n]...)
			data = data[n:]
			if len(s.msg) < 4 {
				return
			}
			length := int(s.msg[1])<<16 | int(s.msg[2])<<8 | int(s.msg[3])
			if length > p.opts.MaxMessage {
				p.oversize(s, MessageType(s.msg[0]), length)
				s.msg = s.msg[:0]
				continue
			}
		}
		length := int(s.msg[1])<<16 | int(s.msg[2])<<8 | int(s.msg[3])
		// The whole message at once (its length is checked against
		// MaxMessage): append's doubling copied a 60 KB issuer list four
		// times over and left up to twice its size allocated.
		s.growMsg(4 + length)
		n := min(4+length-len(s.msg), len(data))
		s.msg = append(s.msg, data[:n]...)
		data = data[n:]
		if len(s.msg) == 4+length {
			s.msgEnd = s.offset - int64(len(data))
			p.message(s, MessageType(s.msg[0]), s.msg[4:], s.records-s.msgStart+1)
			s.msg = s.msg[:0]
			if cap(s.msg) > maxKeptMessage {
				// Messages spanning records are rare after the first
				// flights: an idle tunnel keeps no 60 KB buffer.
				s.dropMsg()
			}
		}
	}
}

func (p *Parser) oversize(s *stream, typ MessageType, length int) {
	s.msgSkip = length
	h := p.current(s)
	if h == nil && typ == TypeClientHello {
		h = p.begin(s, PhaseInitial)
	}
	p.addError(h, fmt.Errorf("%s %s of %d bytes exceeds the %d-byte limit: %w",
		s.dir, typ, length, p.opts.MaxMessage, ErrOversize).Error())
	if h != nil {
		h.addMessage(s.dir, typ.String()+"(oversize)")
	}
}

// message dispatches one complete clear handshake message.
func (p *Parser) message(s *stream, typ MessageType, body []byte, records int) {
	var h *Handshake
	switch {
	case typ == TypeClientHello && s.dir == FromClient:
		if cur := p.current(s); cur != nil && cur.hrrPending {
			cur.hrrPending = false
			h = cur
		} else {
			h = p.begin(s, phaseFor(s))
		}
	case typ == TypeHelloRequest && s.dir == FromServer && !s.inHandshake:
		// Only ever read decrypted: it starts a renegotiation.
		h = p.begin(s, PhaseRenegotiation)
	case typ == TypeCertificateRequest && s.dir == FromServer && !s.inHandshake && p.tls13 && p.decrypting:
		// TLS 1.3 post-handshake authentication (RFC 8446 4.6.2), read
		// with the traffic secrets: the client answers with Certificate,
		// CertificateVerify and Finished, and the server with no Finished.
		h = p.postHandshake(s)
	case typ == TypeServerHello && s.dir == FromServer:
		if cur := p.current(s); cur != nil && cur.ServerHello != nil && cur.ServerHello.HelloRetry {
			h = cur
		} else if cur != nil && cur.HelloRequest && cur.ServerHello == nil && s.inHandshake {
			h = cur
		} else {
			h = p.begin(s, phaseFor(s))
		}
	default:
		h = p.current(s)
	}
	if h == nil {
		if typ == TypeFinished {
			// As without keys (protectedRecord): the side is out of the
			// handshake that False Start data already reported.
			s.inHandshake = false
		}
		// Bytes of a handshake already reported (the server's alert ended
		// it first) are late, not wrong.
		if s.hs < 0 {
			p.addError(nil, fmt.Sprintf("%s %s outside any handshake", s.dir, typ))
		}
		return
	}
	if p.decrypting && (h.Version == VersionTLS13 || h.Phase != PhaseInitial) {
		// A TLS 1.2 initial handshake's decrypted Finished adds nothing:
		// what it shows was in clear.
		h.decrypted = true
	}
	h.addMessage(s.dir, typ.String())
	if err := p.decode(h, s, typ, body, records); err != nil {
		p.addError(h, err.Error())
	}
}

func phaseFor(s *stream) Phase {
	if s.count == 0 {
		return PhaseInitial
	}
	return PhaseRenegotiation
}

func (p *Parser) decode(h *Handshake, s *stream, typ MessageType, body []byte, records int) error {
	tls13 := h.Version == VersionTLS13
	switch {
	case typ == TypeClientHello && s.dir == FromClient:
		m, err := ParseClientHello(body)
		if err != nil {
			return err
		}
		if h.ClientHello == nil {
			h.ClientHello = m
		}
		p.dec.clientHello(h, m)
	case typ == TypeServerHello && s.dir == FromServer:
		m, err := ParseServerHello(body)
		if err != nil {
			return err
		}
		h.ServerHello = m
		if m.HelloRetry {
			h.hrrPending = true
			// The client's middlebox-compatibility CCS may come next, before
			// its second ClientHello: it must not look like TLS 1.2's.
			p.tls13 = m.Version == VersionTLS13
			return nil
		}
		h.Version = m.Version
		p.version = m.Version
		if m.Version == VersionTLS12 {
			p.layout12 = newLayout12(m.CipherSuite, slices.Contains(m.Extensions, extEncryptThenMAC))
			p.status12 = slices.Contains(m.Extensions, extStatusRequest)
			p.streams[FromClient].npn = slices.Contains(m.Extensions, extNextProtoNeg)
		}
		p.dec.serverHello(h, m)
		if m.ALPN != "" || h.Phase == PhaseInitial {
			// A decrypted renegotiation's ServerHello repeats no ALPN: the
			// connection's stays in force.
			h.ALPN, p.alpn = m.ALPN, m.ALPN
		}
		if m.Version == VersionTLS13 {
			// Everything after this ServerHello is protected, both ways.
			p.tls13 = true
			s.protected = true
			p.streams[FromClient].protected = true
		}
	case typ == TypeCertificate:
		m, err := ParseCertificate(body, tls13)
		if err != nil {
			return err
		}
		if s.dir == FromClient {
			h.ClientCertificate = m
			h.ClientCertEnd = s.msgEnd
		} else {
			h.ServerCertificate = m
		}
	case typ == TypeCertificateRequest && s.dir == FromServer:
		m, err := ParseCertificateRequest(body, tls13, h.Version == 0 || h.Version >= VersionTLS12)
		if m != nil {
			m.Records = records
			h.CertRequest = m
			h.CertRequestEnd = s.msgEnd
		}
		return err
	case typ == TypeServerHelloDone && s.dir == FromServer:
		h.ServerHelloDone = true
	case typ == TypeCertificateVerify && s.dir == FromClient:
		h.ClientCertificateVerify = true
	case typ == TypeHelloRequest && s.dir == FromServer:
		h.HelloRequest = true
	case typ == TypeFinished:
		if s.dir == FromClient {
			h.ClientFinished = true
		} else {
			h.ServerFinished = true
		}
		s.inHandshake = false
		if h.Phase == PhaseInitial {
			p.dec.finished(p, s, h)
		}
		// Decrypted TLS 1.3 waits for the server's next record, which
		// may be an alert refusing the client's certificate.
		if h.ClientFinished && h.ServerFinished && !(tls13 && h.decrypted) {
			p.finish(h, EndFinished)
		}
	}
	return nil
}

// begin starts this direction's next handshake, pairing it with the other
// direction's handshake of the same number.
func (p *Parser) begin(s *stream, phase Phase) *Handshake {
	idx := s.count
	s.count++
	s.hs = idx
	s.inHandshake = true
	s.awaitFinished = false
	if h := p.byIndex(idx); h != nil {
		return h
	}
	if idx < p.started {
		return nil // already reported: late bytes of a handshake whose outcome was known
	}
	if len(p.open) >= maxOpen {
		// A peer repeating hellos (or restarting encrypted handshakes the
		// other side never finishes) must not grow p.open without bound:
		// the oldest open handshake is handed out as unparsed instead.
		old := p.open[0]
		old.addError(fmt.Sprintf("handshake %d started before this one ended (%d open)", idx, len(p.open)))
		old.Unparsed = true
		p.finish(old, EndError)
	}
	h := &Handshake{Index: idx, Phase: phase, Messages: []string{}}
	// A renegotiation the client opens, with no HelloRequest before it
	// (RFC 5246 7.4.1.2: a client may renegotiate at any time). A stream
	// joined in the middle may have missed the server's HelloRequest.
	h.ClientInitiated = phase == PhaseRenegotiation && s.dir == FromClient && !(p.joined && idx == 1)
	if phase != PhaseInitial {
		// A renegotiation's ServerHello is encrypted: what it renegotiates
		// runs on the connection as it was (RFC 9113 forbids it over h2).
		h.Version, h.ALPN = p.version, p.alpn
	}
	p.started = idx + 1
	p.open = append(p.open, h)
	return h
}

func (p *Parser) byIndex(idx int) *Handshake {
	for _, h := range p.open {
		if h.Index == idx {
			return h
		}
	}
	return nil
}

// current is the open handshake this direction is in, if any.
func (p *Parser) current(s *stream) *Handshake {
	if s.hs < 0 {
		return nil
	}
	return p.byIndex(s.hs)
}

func (p *Parser) latestOpen() *Handshake {
	if len(p.open) == 0 {
		return nil
	}
	return p.open[len(p.open)-1]
}

// finish records that h's outcome is known and queues it for Drain.
func (p *Parser) finish(h *Handshake, end End) {
	if h.complete {
		return
	}
	h.complete = true
	h.End = end
	if h.Phase == PhasePostHandshake && p.dec != nil {
		// One post-handshake exchange is what there is to see.
		p.dec.phaOpen, p.dec.phaLeft = false, 0
	}
	if h.Visibility == "" {
		h.Visibility = visibility(h, end)
	}
	p.infer(h)
	p.watchPHA(h)
	for i, o := range p.open {
		if o == h {
			p.open = append(p.open[:i], p.open[i+1:]...)
			break
		}
	}
	p.ready = append(p.ready, h)
	p.emitted++
}

// flightsDone13: a TLS 1.3 handshake seen without keys whose server flight
// ended with its Finished and whose client sent a flight that fits one
// (its Finished among it): complete, though the server never spoke again
// before the connection ended (a reset after the request).
func (p *Parser) flightsDone13(h *Handshake) bool {
	if h.decrypted || h.Version != VersionTLS13 || h.ServerHello == nil || len(h.ClientRecords) == 0 || h.Phase != PhaseInitial {
		return false
	}
	return h.inference13().ClientFlight > 0
}

// inference13 is InferTLS13 of h's records so far, computed once for them:
// Close asks flightsDone13 and then infer about the same records.
func (h *Handshake) inference13() Inference {
	n := [2]int{len(h.ServerRecords), len(h.ClientRecords)}
	if h.inf13 == nil || h.inf13Records != n {
		inf := InferTLS13(h.ServerHello.CipherSuite, h.ServerRecords, h.ClientRecords)
		h.inf13, h.inf13Records = &inf, n
	}
	return *h.inf13
}

// infer reads what an encrypted TLS 1.3 handshake did from its record
// sizes. It runs only where nothing was read: inference never overrides
// clear or decrypted facts. A handshake the client walked away from stays
// partial, but what its server's flight shows (a certificate request that
// made a browser go and pick one) is kept.
func (p *Parser) infer(h *Handshake) {
	encrypted := h.Visibility == VisibilityEncrypted || (h.Visibility == VisibilityPartial && h.End == EndEOF && !h.Unparsed && !h.decrypted)
	if !encrypted {
		return
	}
	var inf Inference
	switch {
	case h.Version == VersionTLS13 && h.Phase == PhaseInitial && h.ServerHello != nil:
		inf = h.inference13()
	case h.Version == VersionTLS12 && h.Phase == PhaseRenegotiation && p.layout12.known():
		r := inferRenegotiation(p.layout12, p.status12, h.recs12)
		if h.End == EndFinished && !r.sameLayout {
			// The renegotiated suite's records are not sized like the old
			// one's: a later renegotiation is not read.
			p.layout12 = layout12{}
		}
		inf = r.Inference
	default:
		return
	}
	if inf.Known() {
		h.Inferred = &inf
		if h.Visibility == VisibilityEncrypted {
			h.Visibility = VisibilityInferred
		}
	}
}

// watchPHA starts the watch for a post-handshake authentication after a
// TLS 1.3 handshake read without keys, when the client offered one and
// its flight was read (the records after it are its request). HTTP/2
// forbids post-handshake authentication (RFC 8740).
func (p *Parser) watchPHA(h *Handshake) {
	if h.Phase != PhaseInitial || h.Version != VersionTLS13 || h.decrypted || h.End != EndFinished || h.ServerHello == nil ||
		h.ClientHello == nil || !h.ClientHello.PostHandshakeAuth || p.alpn == "h2" || p.opts.StopAfterHandshake ||
		h.Inferred == nil || h.Inferred.ClientFlight == 0 || h.Inferred.Resumed {
		return
	}
	p.pha = newPHAWatch(h, 4+hashLen(h.ServerHello.CipherSuite)+aeadOverhead)
}

// postHandshakeInferred reports a post-handshake authentication read from
// record sizes: a handshake of its own, as a decrypted one is.
func (p *Parser) postHandshakeInferred(r *phaResult) {
	h := &Handshake{Index: p.started, Phase: PhasePostHandshake, Visibility: VisibilityInferred, Version: VersionTLS13, ALPN: p.alpn,
		ClientHello: r.ch, ServerRecords: r.server, ClientRecords: r.client, Messages: []string{}, Inferred: &r.inf,
		// The server sends no Finished of its own (RFC 8446 4.6.2); the
		// client's last record was its Finished.
		ServerFinished: true, ClientFinished: true}
	p.started++
	for i := range p.streams {
		p.streams[i].count = p.started
	}
	for _, n := range r.server {
		h.addMessage(FromServer, "encrypted("+strconv.Itoa(n)+")")
	}
	for _, n := range r.client {
		h.addMessage(FromClient, "encrypted("+strconv.Itoa(n)+")")
	}
	end := EndFinished
	if r.response == 0 {
		h.Visibility, end = VisibilityPartial, EndEOF
	} else {
		h.addMessage(FromServer, "encrypted("+strconv.Itoa(r.response)+")")
	}
	p.pha = nil
	p.finish(h, end)
}

func visibility(h *Handshake, end End) Visibility {
	switch {
	case h.Unparsed || end == EndEOF || end == EndServerNotTLS:
		return VisibilityPartial
	case h.decrypted:
		return VisibilityDecrypted
	case h.Version == VersionTLS13 || h.Phase == PhaseRenegotiation:
		return VisibilityEncrypted
	case h.ClientHello == nil && h.ServerHello == nil:
		return VisibilityPartial
	}
	return VisibilityClear
}

func (p *Parser) addError(h *Handshake, err string) {
	if h != nil {
		h.addError(err)
		return
	}
	if len(p.obs.Errors) < maxErrors {
		p.obs.Errors = append(p.obs.Errors, err)
	}
}

// streamError stops a direction that sent something no TLS stack would.
func (p *Parser) streamError(s *stream, err string) {
	s.stopped = true
	s.release()
	h := p.current(s)
	if h == nil {
		h = p.latestOpen()
	}
	if h == nil {
		p.addError(nil, err)
		return
	}
	h.addError(err)
	h.Unparsed = true
	p.finish(h, EndError)
}

func (p *Parser) notTLS(s *stream, why string) {
	s.stopped = true
	s.release()
	if s.dir == FromClient {
		p.obs.NotTLS = why
		p.done = true
		return
	}
	h := p.latestOpen()
	if h == nil {
		p.addError(nil, "server: "+why)
		return
	}
	h.addError("server answered with something that is not TLS: " + why)
	p.finish(h, EndServerNotTLS)
}

// plausibleFirstByte reports whether a stream may start with b: a TLS
// record's content type (a client always starts with a handshake), or an
// SSLv2-compatible hello's length byte, which header() then names.
func plausibleFirstByte(from Direction, b byte) bool {
	if b&0x80 != 0 {
		return true
	}
	if from == FromClient {
		return ContentType(b) == ContentHandshake
	}
	return ContentType(b) >= ContentChangeCipherSpec && ContentType(b) <= ContentHeartbeat
}

// describeNotTLS names what a non-TLS stream looks like from its first bytes.
func describeNotTLS(b []byte) string {
	if len(b) >= 3 && b[0]&0x80 != 0 && b[2] == 1 {
		return "SSLv2-compatible ClientHello (SSL 2.0 record format, not parsed)"
	}
	printable := true
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		return fmt.Sprintf("%v: starts with %q", ErrNotTLS, b)
	}
	return fmt.Sprintf("%v: starts with bytes %x", ErrNotTLS, b)
}
