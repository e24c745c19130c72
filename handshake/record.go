package handshake

// The record layer: each direction's bytes are cut into records (a header,
// then its body), checked, and routed by content type; protected records
// are counted, held for the key log or decrypted. The header is judged
// here as every reader of TLS streams must judge it alike: analyze's framer
// falls back to raw bytes exactly where the parser would stop.

import (
	"fmt"
	"strconv"
)

// Record sizes.
const (
	recordHeaderLen = 5
	// maxCiphertext is the largest record body any TLS version allows
	// (RFC 5246 6.2.3: 2^14 + 2048).
	maxCiphertext = 1<<14 + 2048
	// RecordHeaderLen is the length of a record header: type, version,
	// body length.
	RecordHeaderLen = recordHeaderLen
	// MaxRecord is the largest record body any TLS version allows.
	MaxRecord = maxCiphertext
)

// ValidRecordHeader reports whether h starts with a record header the
// parser reads on: a known content type, a TLS (or SSL 3.0) version and a
// body length TLS allows.
func ValidRecordHeader(h []byte) bool {
	if len(h) < RecordHeaderLen {
		return false
	}
	typ, length := ContentType(h[0]), int(h[3])<<8|int(h[4])
	return typ >= ContentChangeCipherSpec && typ <= ContentHeartbeat && h[1] == 3 && h[2] <= 4 && length <= maxCiphertext
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
		p.streamError(s, fmt.Errorf("%s stream: invalid record header %x at byte %d", s.dir, s.hdr, s.offset-recordHeaderLen))
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
		p.addError(p.current(s), fmt.Errorf("%s alert record of %d bytes", s.dir, len(body)))
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
