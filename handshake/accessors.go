package handshake

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
