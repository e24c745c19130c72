package handshake

// Reassembly: a handshake message may span records (a 60 KB issuer list
// takes four or more) and a record may carry several messages; each
// direction collects a message's bytes until it is whole, bounded by
// Options.MaxMessage.

import (
	"fmt"
	"sync"
)

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
		s.dropPooled()
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
				length := msgLength(data)
				if length > p.opts.MaxMessage {
					p.oversize(s, messageType(data[0]), length)
					data = data[4:]
					continue
				}
				if len(data) >= 4+length {
					// The common case: a whole message in one record, parsed in place.
					s.msgEnd = s.offset - int64(len(data)-4-length)
					p.message(s, messageType(data[0]), data[4:4+length], 1)
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
			length := msgLength(s.msg)
			if length > p.opts.MaxMessage {
				p.oversize(s, messageType(s.msg[0]), length)
				s.msg = s.msg[:0]
				continue
			}
		}
		length := msgLength(s.msg)
		// The whole message at once (its length is checked against
		// MaxMessage): append's doubling copied a 60 KB issuer list four
		// times over and left up to twice its size allocated.
		s.growMsg(4 + length)
		n := min(4+length-len(s.msg), len(data))
		s.msg = append(s.msg, data[:n]...)
		data = data[n:]
		if len(s.msg) == 4+length {
			s.msgEnd = s.offset - int64(len(data))
			p.message(s, messageType(s.msg[0]), s.msg[4:], s.records-s.msgStart+1)
			s.msg = s.msg[:0]
			if cap(s.msg) > maxKeptMessage {
				// Messages spanning records are rare after the first
				// flights: an idle tunnel keeps no 60 KB buffer.
				s.dropMsg()
			}
		}
	}
}

// msgLength is the body length a 4-byte handshake message header gives.
func msgLength(hdr []byte) int { return int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3]) }

func (p *Parser) oversize(s *stream, typ messageType, length int) {
	s.msgSkip = length
	h := p.current(s)
	if h == nil && typ == typeClientHello {
		h = p.begin(s, PhaseInitial)
	}
	p.addError(h, fmt.Errorf("%s %s of %d bytes exceeds the %d-byte limit: %w",
		s.dir, typ, length, p.opts.MaxMessage, ErrOversize))
	if h != nil {
		h.addMessage(s.dir, typ.String()+"(oversize)")
	}
}
