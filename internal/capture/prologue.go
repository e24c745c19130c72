package capture

import (
	"bytes"
	"fmt"
	"strings"
)

// Plaintext before TLS. Many protocols start in clear and upgrade the
// connection in the middle: STARTTLS (SMTP, IMAP, POP3's STLS, FTP's AUTH
// TLS, XMPP, LDAP, IRC), PostgreSQL's SSLRequest, MySQL's SSL capability;
// proxies put their own exchange in front of the tunnel (SOCKS 4 and 5, the
// HAProxy PROXY header). When a connection's first bytes are not TLS, both
// sides start in the framer's prologue state: each side's plaintext is read
// message by message, the protocol is named from its first message and its
// upgrade markers, and at every message boundary the bytes are tested for
// the side's hello (a ClientHello from the client, a ServerHello from the
// server, or once the client's TLS began, any record from the server). The
// framer feeds the parser from there. A protocol certlens does not know is
// searched for a hello at any offset (the content fallback), within
// maxProlog; a known one that goes on in plaintext is named in the closed
// event with why no TLS followed.

type appProto uint8

const (
	protoUnknown appProto = iota
	protoSMTP             // or FTP, until the client's commands say: both greet with 220
	protoFTP
	protoIMAP
	protoPOP3
	protoXMPP
	protoLDAP
	protoIRC
	protoPostgres
	protoMySQL
	protoSOCKS4
	protoSOCKS5
	protoProxyV1
	protoProxyV2
	// protoPlain is a protocol that never upgrades in band (HTTP, SSH):
	// handed to the parser at once, which says what it is.
	protoPlain
)

// names of the protocols: plain, and once the client asked for TLS.
var protoNames = [...][2]string{
	protoUnknown:  {"", ""},
	protoSMTP:     {"smtp", "smtp-starttls"},
	protoFTP:      {"ftp", "ftp-auth-tls"},
	protoIMAP:     {"imap", "imap-starttls"},
	protoPOP3:     {"pop3", "pop3-stls"},
	protoXMPP:     {"xmpp", "xmpp-starttls"},
	protoLDAP:     {"ldap", "ldap-starttls"},
	protoIRC:      {"irc", "irc-starttls"},
	protoPostgres: {"postgresql", "postgresql"},
	protoMySQL:    {"mysql", "mysql"},
	protoSOCKS4:   {"socks4", "socks4"},
	protoSOCKS5:   {"socks5", "socks5"},
	protoProxyV1:  {"proxy-v1", "proxy-v1"},
	protoProxyV2:  {"proxy-v2", "proxy-v2"},
	protoPlain:    {"", ""},
}

// upgradeAsk names each protocol's request for TLS, for not_tls.
var upgradeAsk = [...]string{
	protoSMTP: "STARTTLS", protoFTP: "AUTH TLS", protoIMAP: "STARTTLS", protoPOP3: "STLS",
	protoXMPP: "<starttls/>", protoLDAP: "the StartTLS extended request", protoIRC: "STARTTLS",
	protoPostgres: "an SSLRequest", protoMySQL: "the SSL capability flag",
	protoSOCKS4: "", protoSOCKS5: "", protoProxyV1: "", protoProxyV2: "", protoPlain: "", protoUnknown: "",
}

// isProxy: the plaintext is a proxy's, not the application's: like an
// HTTP CONNECT, its bytes are not counted as the tunnel's.
func (p appProto) isProxy() bool {
	return p == protoSOCKS4 || p == protoSOCKS5 || p == protoProxyV1 || p == protoProxyV2
}

// prologue is a connection's plaintext before TLS, as far as it was read.
type prologue struct {
	proto appProto
	// asked: the client asked for TLS with the protocol's own marker.
	asked bool
	// refused is the server's answer when it refused TLS; declined, when
	// set, says why the connection went on without TLS (not_tls).
	refused, declined string
	// started: TLS began on the side (conn side index).
	started [2]bool
	msgs    [2]int  // messages read from the client [0] and the server [1]
	lost    [2]bool // a capture gap hit the side: hellos are looked for anywhere
	// head is each side's first bytes, for the parser to name what a
	// connection is when no TLS follows.
	head [2][]byte
	// target is the tunnel's target a proxy was asked for (SOCKS); origin
	// the client and destination a PROXY header passes on.
	target, origin string
	// PostgreSQL: the one-byte answers the server owes, oldest first
	// ('s' for an SSLRequest, 'g' for a GSSENCRequest), and whether the
	// startup message (the session proper) was sent.
	pgOwed    []byte
	pgStartup bool
	// SOCKS 5: the proxy chose username and password authentication.
	socksAuth bool
}

// name is the app_protocol of the connection.
func (p *prologue) name() string {
	n := protoNames[p.proto]
	if p.asked {
		return n[1]
	}
	return n[0]
}

// notTLS says why no TLS followed a known protocol's plaintext.
func (p *prologue) notTLS() string {
	name := protoNames[p.proto][0]
	switch {
	case p.declined != "":
		return name + ": " + p.declined
	case p.refused != "":
		return fmt.Sprintf("%s: the server refused %s: %q", name, upgradeAsk[p.proto], p.refused)
	case p.asked:
		return fmt.Sprintf("%s: the client asked for TLS (%s) but no TLS handshake followed in the capture", name, upgradeAsk[p.proto])
	case upgradeAsk[p.proto] != "":
		return fmt.Sprintf("%s: the client did not ask for TLS (no %s): the connection stayed in plaintext", name, upgradeAsk[p.proto])
	}
	return name + ": no TLS handshake followed in the capture"
}

// looksLikeTLS reports whether the first bytes of a connection can start
// TLS: a record header, or an SSLv2-format ClientHello.
func looksLikeTLS(b []byte) bool {
	if b[0] >= contentChangeCipherSpec && b[0] <= contentHeartbeat {
		return len(b) < 2 || b[1] == 3
	}
	return sslv2Start(b)
}

// sslv2Start reports whether b can start an SSLv2-format ClientHello: a
// two-byte length with its high bit set, then message type 1.
func sslv2Start(b []byte) bool {
	return b[0]&0x80 != 0 && (len(b) < 3 || b[2] == 1)
}

// startPrologue reads the connection's sides as plaintext before TLS.
// Sides whose start was not captured keep looking for a record boundary.
func (c *conn) startPrologue() {
	c.pro = &prologue{}
	for i := range c.sides {
		fr := &c.sides[i].fr
		if fr.state != stateAligned || len(fr.pending) > 0 {
			continue
		}
		fr.state = stateProlog
		fr.onProlog = func(b []byte) (int, framerState) { return c.prolog(i, b) }
	}
}

// prolog reads side s's plaintext at the start of b: whole messages, up to
// the TLS record that ends it.
func (c *conn) prolog(s int, b []byte) (int, framerState) {
	p := c.pro
	fr := &c.sides[s].fr
	if fr.plain == 0 && len(p.head[s]) < recordHeaderLen {
		p.head[s] = append(p.head[s][:0], b[:min(len(b), recordHeaderLen)]...)
	}
	fromClient := c.client < 0 || s == c.client
	role := 1
	if fromClient {
		role = 0
	}
	n := 0
	for n < len(b) {
		rest := b[n:]
		switch c.tlsAt(s, rest) {
		case tlsYes:
			p.started[s] = true
			return n, stateAligned
		case tlsMaybe:
			return n, stateProlog
		}
		if p.proto == protoUnknown && p.msgs[0]+p.msgs[1] == 0 {
			proto, wait := identify(rest, fromClient)
			if wait {
				break
			}
			p.proto = proto
		}
		if p.proto == protoPlain {
			// Not TLS, and never upgraded in band: the parser reads it and
			// says what it is, as it would without a prologue.
			for i := range c.sides {
				if fr := &c.sides[i].fr; fr.state == stateProlog {
					fr.state = stateRaw
				}
			}
			return n, stateRaw
		}
		var m int
		if p.proto == protoUnknown || p.lost[s] {
			m = c.scanForTLS(s, rest)
		} else {
			m = p.read(rest, fromClient)
			if p.target != "" && c.connect == "" {
				c.connect = p.target
			}
			if p.origin != "" {
				c.note("the " + protoNames[p.proto][0] + " header says the connection is from " + p.origin)
				p.origin = ""
			}
		}
		if p.declined != "" {
			c.stopPrologue()
			return n + m, stateOff
		}
		if m == 0 {
			break
		}
		p.msgs[role]++
		n += m
	}
	if fr.plain+int64(len(b)) > maxProlog {
		if p.proto == protoUnknown {
			c.giveUpPrologue()
		} else {
			p.declined = fmt.Sprintf("no TLS handshake in the first %d KiB of the %s's plaintext", maxProlog>>10, c.role(s))
			c.stopPrologue()
		}
		return n, stateOff
	}
	return n, stateProlog
}

// A TLS record at a message boundary: yes, no, or not enough bytes to say.
const (
	tlsNo = iota
	tlsYes
	tlsMaybe
)

// tlsAt tests whether side s's TLS starts at b: its hello (a ClientHello
// from the client, a ServerHello from the server), or once the client's
// TLS began, any record from the server (an alert refusing the hello).
// The test reads the record header and the hello's own header, ten bytes
// that plaintext of any of the protocols above does not begin a message
// with.
func (c *conn) tlsAt(s int, b []byte) int {
	if b[0] != contentHandshake {
		if s == c.client || c.client < 0 || !c.pro.started[c.client] || b[0] < contentChangeCipherSpec || b[0] > contentApplicationData {
			return tlsNo
		}
		if len(b) < recordHeaderLen {
			return tlsMaybe
		}
		if plausibleHeader(b) {
			return tlsYes
		}
		return tlsNo
	}
	want := byte(2)
	switch {
	case c.client < 0:
		want = 0
	case s == c.client:
		want = 1
	}
	switch {
	case len(b) < 3:
		if len(b) == 2 && b[1] != 3 {
			return tlsNo
		}
		return tlsMaybe
	case b[1] != 3 || b[2] > 4:
		return tlsNo
	case len(b) < 6:
		return tlsMaybe
	}
	if l := int(b[3])<<8 | int(b[4]); l < 4 || l > maxRecord || b[5] != want && (want != 0 || b[5] != 1 && b[5] != 2) {
		return tlsNo
	}
	if len(b) < 10 {
		return tlsMaybe
	}
	if b[9] != 3 {
		return tlsNo
	}
	return tlsYes
}

// scanForTLS looks for side s's TLS anywhere in b past its first byte (the
// content fallback): it returns how many bytes come before it, or all but
// a tail that may start it.
func (c *conn) scanForTLS(s int, b []byte) int {
	for i := 1; i < len(b); i++ {
		if b[i] >= contentChangeCipherSpec && b[i] <= contentApplicationData && c.tlsAt(s, b[i:]) != tlsNo {
			return i
		}
	}
	return max(len(b)-9, 0)
}

// stopPrologue ends both sides' plaintext: the connection is not TLS.
func (c *conn) stopPrologue() {
	for i := range c.sides {
		if fr := &c.sides[i].fr; fr.state == stateProlog {
			fr.state = stateOff
			fr.pending = nil
		}
	}
}

// giveUpPrologue hands each side's first bytes to the parser, which names
// what the connection is (not TLS: starts with "HELLO"), as it would have
// without a prologue; nothing more is read.
func (c *conn) giveUpPrologue() {
	p := c.pro
	p.proto = protoPlain
	c.stopPrologue()
	cl := max(c.client, 0)
	for _, s := range [2]int{cl, 1 - cl} {
		if len(p.head[s]) == 0 || c.parser != nil && c.parser.Done() {
			continue
		}
		fr := &c.sides[s].fr
		fr.state = stateRaw
		fr.emit(p.head[s])
		fr.state = stateOff
	}
}

// endPrologue, at the end of the connection, concludes a prologue that
// never came to TLS.
func (c *conn) endPrologue() {
	p := c.pro
	if p == nil || p.started[0] || p.started[1] {
		return
	}
	if p.proto == protoUnknown {
		c.giveUpPrologue()
	}
}

// read reads one message at the start of b, noting what the protocol
// says; it returns the message's length, 0 until it is whole.
func (p *prologue) read(b []byte, fromClient bool) int {
	switch p.proto {
	case protoSMTP, protoFTP, protoIMAP, protoPOP3, protoIRC, protoProxyV1:
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return 0
		}
		p.line(strings.TrimRight(string(b[:i]), "\r"), fromClient)
		return i + 1
	case protoXMPP:
		i := bytes.IndexByte(b, '>')
		if i < 0 {
			return 0
		}
		p.xmpp(string(b[:i+1]), fromClient)
		return i + 1
	case protoLDAP:
		return p.ldap(b, fromClient)
	case protoPostgres:
		return p.postgres(b, fromClient)
	case protoMySQL:
		return p.mysql(b, fromClient)
	case protoSOCKS4:
		return p.socks4(b, fromClient)
	case protoSOCKS5:
		return p.socks5(b, fromClient)
	case protoProxyV2:
		return p.proxyV2(b)
	}
	return 0
}
