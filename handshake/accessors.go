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

// Started returns how many handshakes the parser has seen begin, the one in
// progress included: a client tapping its own connection (certlens probe)
// learns which handshake its TLS stack is in, renegotiations included.
func (p *Parser) Started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}
