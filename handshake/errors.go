package handshake

// What the parser reports when a stream is not what TLS allows: errors on
// the handshake they broke, and a stream that is not TLS at all.

import (
	"errors"
	"fmt"
)

// ErrNotTLS marks a stream that does not start with a TLS record.
var ErrNotTLS = errors.New("not TLS")

// ErrOversize marks a handshake message longer than Options.MaxMessage.
var ErrOversize = errors.New("handshake message too large")

func (p *Parser) addError(h *Handshake, err error) {
	if h != nil {
		h.addError(err)
		return
	}
	if len(p.obs.Errors) < maxErrors {
		p.obs.Errors = append(p.obs.Errors, err.Error())
	}
}

// streamError stops a direction that sent something no TLS stack would.
func (p *Parser) streamError(s *stream, err error) {
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

func (p *Parser) notTLS(s *stream, why error) {
	s.stopped = true
	s.release()
	if s.dir == FromClient {
		p.obs.NotTLS = why.Error()
		p.done = true
		return
	}
	h := p.latestOpen()
	if h == nil {
		p.addError(nil, fmt.Errorf("server: %w", why))
		return
	}
	h.addError(fmt.Errorf("server answered with something that is not TLS: %w", why))
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
func describeNotTLS(b []byte) error {
	if len(b) >= 3 && b[0]&0x80 != 0 && b[2] == 1 {
		return errors.New("SSLv2-compatible ClientHello (SSL 2.0 record format, not parsed)")
	}
	printable := true
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		return fmt.Errorf("%w: starts with %q", ErrNotTLS, b)
	}
	return fmt.Errorf("%w: starts with bytes %x", ErrNotTLS, b)
}
