package handshake

// Visibility: what the parser could read of a handshake (clear, decrypted,
// inferred from record sizes, encrypted, partial), and the inference that
// fills in what encryption hid.

import (
	"strconv"
)

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
