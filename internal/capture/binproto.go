package capture

// The binary protocols' upgrades to TLS: LDAP's StartTLS extended request,
// PostgreSQL's SSLRequest, MySQL's SSL capability after the greeting.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// PostgreSQL's untyped first messages, by their code.
const (
	pgSSLRequest    = 80877103
	pgGSSENCRequest = 80877104
	pgCancel        = 80877102
	pgStartup       = 196608 // protocol 3.0
)

// berHeader reads a BER tag and definite length: the header's size and
// the element's content length.
func berHeader(b []byte) (hdr, n int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	if b[1] < 0x80 {
		return 2, int(b[1]), true
	}
	k := int(b[1] & 0x7f)
	if k == 0 || k > 3 || len(b) < 2+k {
		return 0, 0, false
	}
	for _, x := range b[2 : 2+k] {
		n = n<<8 | int(x)
	}
	return 2 + k, n, true
}

// ldapStartTLS is the StartTLS extended operation's name (RFC 4511).
var ldapStartTLS = []byte("1.3.6.1.4.1.1466.20037")

// ldap reads one LDAPMessage.
func (p *prologue) ldap(b []byte, fromClient bool) int {
	hdr, n, ok := berHeader(b)
	if !ok || b[0] != 0x30 {
		if len(b) >= 6 {
			p.declined = fmt.Sprintf("not an LDAP message (%x)", b[:min(len(b), 8)])
		}
		return 0
	}
	if hdr+n > maxProlog {
		p.declined = "an LDAP message larger than certlens reads before TLS"
		return 0
	}
	if len(b) < hdr+n {
		return 0
	}
	msg := b[hdr : hdr+n]
	switch {
	case fromClient && bytes.Contains(msg, ldapStartTLS):
		p.asked, p.refused = true, ""
	case !fromClient && p.asked && p.refused == "":
		// messageID INTEGER, then the ExtendedResponse [APPLICATION 24]
		// whose first element is the resultCode ENUMERATED.
		if h, l, ok := berHeader(msg); ok && msg[0] == 0x02 && len(msg) >= h+l {
			op := msg[h+l:]
			if h2, _, ok := berHeader(op); ok && op[0] == 0x78 && len(op) >= h2+3 && op[h2] == 0x0a && op[h2+1] == 1 && op[h2+2] != 0 {
				p.refused = "resultCode " + strconv.Itoa(int(op[h2+2]))
			}
		}
	}
	return hdr + n
}

// postgres reads one PostgreSQL message.
func (p *prologue) postgres(b []byte, fromClient bool) int {
	if !fromClient {
		if len(p.pgOwed) > 0 && b[0] != 'E' {
			// The one-byte answer to an SSLRequest or a GSSENCRequest.
			owed := p.pgOwed[0]
			p.pgOwed = p.pgOwed[1:]
			switch {
			case owed == 's' && b[0] == 'N':
				p.refused = "N (no SSL)"
			case owed == 'g' && b[0] == 'G':
				p.declined = "the session is encrypted with GSSAPI, not TLS"
			}
			return 1
		}
		return pgTyped(b)
	}
	if p.pgStartup {
		return pgTyped(b)
	}
	if len(b) < 8 {
		return 0
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < 8 || n > 10000 {
		p.declined = fmt.Sprintf("a first message of %d bytes, not PostgreSQL's", n)
		return 0
	}
	if len(b) < n {
		return 0
	}
	switch binary.BigEndian.Uint32(b[4:8]) {
	case pgSSLRequest:
		p.asked, p.refused = true, ""
		p.pgOwed = append(p.pgOwed, 's')
	case pgGSSENCRequest:
		p.pgOwed = append(p.pgOwed, 'g')
	case pgCancel:
		p.declined = "a cancel request, in plaintext"
	default:
		p.pgStartup = true
		if p.refused == "" {
			p.declined = "the client started the session without an SSLRequest: the connection stayed in plaintext"
		} else {
			p.declined = "the server answered the SSLRequest with N (no SSL): the session went on in plaintext"
		}
	}
	return n
}

// pgTyped is the length of a typed PostgreSQL message (type byte, Int32
// length counting itself), 0 until whole.
func pgTyped(b []byte) int {
	if len(b) < 5 {
		return 0
	}
	n := 1 + int(binary.BigEndian.Uint32(b[1:5]))
	if n < 5 || len(b) < n {
		return 0
	}
	return n
}

// mysqlClientSSL is the CLIENT_SSL capability flag.
const mysqlClientSSL = 0x0800

// mysql reads one MySQL packet: 3-byte length, sequence number, payload.
func (p *prologue) mysql(b []byte, fromClient bool) int {
	if len(b) < 4 {
		return 0
	}
	n := 4 + (int(b[0]) | int(b[1])<<8 | int(b[2])<<16)
	if n > maxProlog {
		p.declined = "a packet larger than certlens reads before TLS"
		return 0
	}
	if len(b) < n {
		return 0
	}
	payload := b[4:n]
	switch {
	case !fromClient && len(payload) > 0 && payload[0] == 0xff:
		msg := ""
		if len(payload) > 3 {
			msg = strings.TrimPrefix(string(payload[3:]), "#")
		}
		p.declined = fmt.Sprintf("the server refused the connection: %q", msg)
	case !fromClient && p.msgs[1]+p.msgs[0] == 0 && len(payload) > 0 && payload[0] == 10:
		// The greeting: version string, connection id, 8 bytes of the
		// scramble, a filler, the low capability flags.
		if i := bytes.IndexByte(payload, 0); i > 0 && len(payload) >= i+1+4+8+1+2 {
			capLow := binary.LittleEndian.Uint16(payload[i+1+4+8+1:])
			if capLow&mysqlClientSSL == 0 {
				p.refused = "the server does not offer SSL"
			}
		}
	case fromClient && !p.asked && len(payload) >= 4:
		if binary.LittleEndian.Uint16(payload)&mysqlClientSSL != 0 {
			p.asked = true
		} else {
			p.declined = "the client logged in without asking for TLS: the connection stayed in plaintext"
		}
	}
	return n
}
