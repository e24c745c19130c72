package handshake

// The state machine: each whole message is decoded, then decides which
// handshake it belongs to (initial, renegotiation, post-handshake), starts
// or finishes one, and records what the rules read.

import (
	"fmt"
	"slices"
)

// message dispatches one complete clear handshake message.
func (p *Parser) message(s *stream, typ messageType, body []byte, records int) {
	var h *Handshake
	switch {
	case typ == typeClientHello && s.dir == FromClient:
		if cur := p.current(s); cur != nil && cur.hrrPending {
			cur.hrrPending = false
			h = cur
		} else {
			h = p.begin(s, phaseFor(s))
		}
	case typ == typeHelloRequest && s.dir == FromServer && !s.inHandshake:
		// Only ever read decrypted: it starts a renegotiation.
		h = p.begin(s, PhaseRenegotiation)
	case typ == typeCertificateRequest && s.dir == FromServer && !s.inHandshake && p.tls13 && p.decrypting:
		// TLS 1.3 post-handshake authentication (RFC 8446 4.6.2), read
		// with the traffic secrets: the client answers with Certificate,
		// CertificateVerify and Finished, and the server with no Finished.
		h = p.postHandshake(s)
	case typ == typeServerHello && s.dir == FromServer:
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
		if typ == typeFinished {
			// As without keys (protectedRecord): the side is out of the
			// handshake that False Start data already reported.
			s.inHandshake = false
		}
		// Bytes of a handshake already reported (the server's alert ended
		// it first) are late, not wrong.
		if s.hs < 0 {
			p.addError(nil, fmt.Errorf("%s %s outside any handshake", s.dir, typ))
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
		p.addError(h, err)
	}
}

func phaseFor(s *stream) Phase {
	if s.count == 0 {
		return PhaseInitial
	}
	return PhaseRenegotiation
}

func (p *Parser) decode(h *Handshake, s *stream, typ messageType, body []byte, records int) error {
	tls13 := h.Version == VersionTLS13
	switch {
	case typ == typeClientHello && s.dir == FromClient:
		m, err := parseClientHello(body)
		if err != nil {
			return err
		}
		if h.ClientHello == nil {
			h.ClientHello = m
		}
		p.dec.clientHello(h, m)
	case typ == typeServerHello && s.dir == FromServer:
		m, err := parseServerHello(body)
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
	case typ == typeCertificate:
		m, err := parseCertificate(body, tls13)
		if err != nil {
			return err
		}
		if s.dir == FromClient {
			h.ClientCertificate = m
			h.ClientCertEnd = s.msgEnd
		} else {
			h.ServerCertificate = m
		}
	case typ == typeCertificateRequest && s.dir == FromServer:
		m, err := ParseCertificateRequest(body, tls13, h.Version == 0 || h.Version >= VersionTLS12)
		if m != nil {
			m.Records = records
			h.CertRequest = m
			h.CertRequestEnd = s.msgEnd
		}
		return err
	case typ == typeServerHelloDone && s.dir == FromServer:
		h.ServerHelloDone = true
	case typ == typeCertificateVerify && s.dir == FromClient:
		h.ClientCertificateVerify = true
	case typ == typeHelloRequest && s.dir == FromServer:
		h.HelloRequest = true
	case typ == typeFinished:
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
		old.addError(fmt.Errorf("handshake %d started before this one ended (%d open)", idx, len(p.open)))
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
