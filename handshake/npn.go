package handshake

// Next Protocol Negotiation (draft-agl-tls-nextprotoneg-04), which old
// Chrome and OpenSSL clients still offer: when the server's ServerHello
// accepts it, the client sends a NextProtocol message after its
// ChangeCipherSpec, encrypted, before its Finished. Read as a second
// Finished, it would start a renegotiation that never happened.

const (
	extNextProtoNeg = 13172
	// finishedLen12 is a TLS 1.2 Finished: header and 12 bytes of verify_data.
	finishedLen12 = 4 + 12
	// NextProtocol is its header, the protocol and padding with their
	// length bytes, padded to a multiple of 32: 4 + 32k bytes, k from 1
	// to 9 for a protocol name of up to 255 bytes.
	nextProtoUnit = 32
	nextProtoMaxK = 9
)

// finishedRecord12 reports whether a client's protected handshake record
// after ChangeCipherSpec holds its Finished (alone, or after a NextProtocol
// packed into the same record, as BoringSSL packs a flight), as opposed to
// a NextProtocol message on its own. Where the suite's record layout is not
// known, a record holds one message, as OpenSSL writes them.
func (p *Parser) finishedRecord12(length int) bool {
	l := p.layout12
	if !l.known() {
		return false
	}
	if l.fits(length, finishedLen12) {
		return true
	}
	for k := 1; k <= nextProtoMaxK; k++ {
		if l.fits(length, 4+k*nextProtoUnit+finishedLen12) {
			return true
		}
	}
	return false
}
