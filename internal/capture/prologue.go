package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
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
	switch {
	case b[0] >= contentChangeCipherSpec && b[0] <= contentHeartbeat:
		return len(b) < 2 || b[1] == 3
	case b[0]&0x80 != 0:
		return len(b) < 3 || b[2] == 1
	}
	return false
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

// identify names the protocol from the connection's first message (from
// the client or, for protocols where the server speaks first, from the
// server). wait: the bytes so far are too few to say.
func identify(b []byte, fromClient bool) (proto appProto, wait bool) {
	if !fromClient {
		return identifyServer(b)
	}
	switch b[0] {
	case 0:
		// PostgreSQL: Int32 length, Int32 code.
		if len(b) < 8 {
			return 0, true
		}
		switch binary.BigEndian.Uint32(b[4:8]) {
		case pgSSLRequest, pgGSSENCRequest, pgStartup, pgCancel:
			return protoPostgres, false
		}
		return protoUnknown, false
	case 4:
		if len(b) < 2 {
			return 0, true
		}
		if b[1] == 1 || b[1] == 2 {
			return protoSOCKS4, false
		}
	case 5:
		if len(b) < 2 {
			return 0, true
		}
		if b[1] > 0 {
			return protoSOCKS5, false
		}
	case '\r':
		if len(b) < len(proxyV2Sig) {
			return 0, bytes.HasPrefix(proxyV2Sig, b)
		}
		if bytes.HasPrefix(b, proxyV2Sig) {
			return protoProxyV2, false
		}
	case 0x30:
		// LDAP: an LDAPMessage SEQUENCE whose first element is the
		// message ID, an INTEGER.
		hdr, _, ok := berHeader(b)
		if !ok {
			return 0, len(b) < 6
		}
		if hdr < len(b) && b[hdr] == 0x02 {
			return protoLDAP, false
		}
	}
	line, wait := firstLine(b)
	if wait {
		return 0, true
	}
	u := strings.ToUpper(line)
	switch {
	case strings.HasPrefix(u, "PROXY "):
		return protoProxyV1, false
	case strings.HasPrefix(u, "<?XML") || strings.HasPrefix(u, "<STREAM:STREAM"):
		return protoXMPP, false
	case strings.HasPrefix(u, "SSH-") || strings.HasPrefix(u, "PRI * HTTP/2"):
		return protoPlain, false
	case strings.HasPrefix(u, "STARTTLS") || strings.HasPrefix(u, "CAP LS") || strings.HasPrefix(u, "NICK ") || strings.HasPrefix(u, "PASS "):
		return protoIRC, false
	}
	if f := strings.Fields(u); len(f) >= 3 && strings.HasPrefix(f[len(f)-1], "HTTP/") {
		return protoPlain, false // an HTTP request line
	}
	return protoUnknown, false
}

func identifyServer(b []byte) (appProto, bool) {
	if len(b) >= 5 && b[3] == 0 && (b[4] == 10 || b[4] == 0xff) && int(b[0])|int(b[1])<<8|int(b[2])<<16 < 4096 {
		return protoMySQL, false // a greeting (protocol 10) or an error packet
	}
	if len(b) < 5 && len(b) >= 1 && b[0] < 0x20 {
		return 0, true
	}
	line, wait := firstLine(b)
	if wait {
		return 0, true
	}
	u := strings.ToUpper(line)
	switch {
	case strings.HasPrefix(u, "220"):
		if strings.Contains(u, "FTP") {
			return protoFTP, false
		}
		return protoSMTP, false
	case strings.HasPrefix(u, "* OK") || strings.HasPrefix(u, "* PREAUTH"):
		return protoIMAP, false
	case strings.HasPrefix(u, "+OK"):
		return protoPOP3, false
	case strings.HasPrefix(u, "SSH-"):
		return protoPlain, false
	case strings.HasPrefix(u, ":") && strings.Contains(u, " NOTICE "):
		return protoIRC, false
	}
	return protoUnknown, false
}

// firstLine returns the text up to the first line end (or XML tag end) of
// b; wait while there is none yet in a short text start. Binary bytes
// return "".
func firstLine(b []byte) (string, bool) {
	const maxFirst = 512
	end := -1
	for i, x := range b[:min(len(b), maxFirst)] {
		if x == '\n' || x == '>' {
			end = i
			break
		}
		if x < 0x20 && x != '\r' && x != '\t' || x >= 0x7f {
			return "", false
		}
	}
	if end < 0 {
		return "", len(b) < maxFirst
	}
	return strings.TrimRight(string(b[:end]), "\r"), false
}

// PostgreSQL's untyped first messages, by their code.
const (
	pgSSLRequest    = 80877103
	pgGSSENCRequest = 80877104
	pgCancel        = 80877102
	pgStartup       = 196608 // protocol 3.0
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

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

// replyRefuses: a text protocol's answer to the request for TLS that is
// not the go-ahead.
func (p *prologue) replyRefuses(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	switch p.proto {
	case protoSMTP, protoFTP:
		// The last line of a reply: "454 TLS not available".
		return len(f[0]) == 3 && (f[0][0] == '4' || f[0][0] == '5')
	case protoIMAP:
		return len(f) >= 2 && f[0] != "*" && (strings.EqualFold(f[1], "NO") || strings.EqualFold(f[1], "BAD"))
	case protoPOP3:
		return strings.HasPrefix(f[0], "-ERR")
	case protoIRC:
		return len(f) >= 2 && f[1] == "691"
	}
	return false
}

// line reads one line of a text protocol.
func (p *prologue) line(line string, fromClient bool) {
	u := strings.ToUpper(strings.TrimSpace(line))
	if !fromClient {
		if p.asked && p.refused == "" && p.replyRefuses(line) {
			p.refused = line
		}
		return
	}
	cmd, _, _ := strings.Cut(u, " ")
	switch p.proto {
	case protoSMTP, protoFTP:
		switch {
		case cmd == "STARTTLS":
			p.proto, p.asked, p.refused = protoSMTP, true, ""
		case u == "AUTH TLS" || u == "AUTH SSL" || u == "AUTH TLS-C":
			p.proto, p.asked, p.refused = protoFTP, true, ""
		case cmd == "EHLO" || cmd == "HELO" || cmd == "LHLO":
			p.proto = protoSMTP
		case cmd == "USER" || cmd == "FEAT" || cmd == "SYST":
			p.proto = protoFTP
		case p.proto == protoSMTP && (cmd == "MAIL" || cmd == "DATA") && !p.asked:
			p.declined = "mail was sent without STARTTLS: the connection stayed in plaintext"
		}
	case protoIMAP:
		if f := strings.Fields(u); len(f) >= 2 && f[1] == "STARTTLS" {
			p.asked, p.refused = true, ""
		}
	case protoPOP3:
		if cmd == "STLS" {
			p.asked, p.refused = true, ""
		}
	case protoIRC:
		if cmd == "STARTTLS" {
			p.asked, p.refused = true, ""
		}
	case protoProxyV1:
		// PROXY TCP4 192.0.2.1 198.51.100.2 51234 443
		if f := strings.Fields(line); len(f) == 6 {
			p.origin = fmt.Sprintf("%s to %s", joinHostPort(f[2], f[4]), joinHostPort(f[3], f[5]))
		}
	}
}

func joinHostPort(host, port string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// xmpp reads one XML tag (or the text before it).
func (p *prologue) xmpp(tag string, fromClient bool) {
	t := strings.TrimSpace(tag)
	switch {
	case fromClient && strings.HasPrefix(t, "<starttls"):
		p.asked, p.refused = true, ""
	case !fromClient && p.asked && strings.HasPrefix(t, "<failure") && strings.Contains(t, "xmpp-tls"):
		p.refused = t
	}
}

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

// socks4 reads a SOCKS 4 (or 4a) request or reply.
func (p *prologue) socks4(b []byte, fromClient bool) int {
	if !fromClient {
		if len(b) < 8 {
			return 0
		}
		if b[1] != 0x5a {
			p.declined = fmt.Sprintf("the SOCKS 4 proxy refused the connection (reply %#x)", b[1])
		}
		return 8
	}
	// VN CD DSTPORT DSTIP USERID NUL [HOST NUL]
	if len(b) < 9 {
		return 0
	}
	i := bytes.IndexByte(b[8:], 0)
	if i < 0 {
		return 0
	}
	n := 8 + i + 1
	port := strconv.Itoa(int(binary.BigEndian.Uint16(b[2:4])))
	ip := netip.AddrFrom4([4]byte(b[4:8]))
	host := ip.String()
	if b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] != 0 {
		// SOCKS 4a: the host name follows.
		j := bytes.IndexByte(b[n:], 0)
		if j < 0 {
			return 0
		}
		host = string(b[n : n+j])
		n += j + 1
	}
	p.asked = true
	p.target = joinHostPort(host, port)
	return n
}

// socks5 reads one SOCKS 5 message (RFC 1928, 1929).
func (p *prologue) socks5(b []byte, fromClient bool) int {
	if !fromClient {
		switch {
		case p.msgs[1] == 0:
			if len(b) < 2 {
				return 0
			}
			switch b[1] {
			case 2:
				p.socksAuth = true
			case 0xff:
				p.declined = "the SOCKS 5 proxy accepted none of the client's authentication methods"
			}
			return 2
		case p.socksAuth && p.msgs[1] == 1:
			if len(b) < 2 {
				return 0
			}
			if b[1] != 0 {
				p.declined = "the SOCKS 5 proxy rejected the client's user name and password"
			}
			return 2
		}
		n, _ := socks5Addr(b)
		if n == 0 {
			return 0
		}
		if b[1] != 0 {
			p.declined = fmt.Sprintf("the SOCKS 5 proxy refused the connection (reply %d)", b[1])
		}
		return n
	}
	switch {
	case p.msgs[0] == 0:
		// VER NMETHODS METHODS
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return 0
		}
		return 2 + int(b[1])
	case b[0] == 1:
		// Username and password: never read, never logged.
		if len(b) < 2 || len(b) < 3+int(b[1]) || len(b) < 3+int(b[1])+int(b[2+int(b[1])]) {
			return 0
		}
		return 3 + int(b[1]) + int(b[2+int(b[1])])
	}
	n, target := socks5Addr(b)
	if n > 0 {
		p.asked = true
		p.target = target
	}
	return n
}

// socks5Addr reads a SOCKS 5 request or reply: VER CMD/REP RSV ATYP
// ADDR PORT. It returns its length (0 until whole) and the address.
func socks5Addr(b []byte) (int, string) {
	if len(b) < 5 {
		return 0, ""
	}
	var n int
	var host string
	switch b[3] {
	case 1:
		n = 4 + 4 + 2
		if len(b) >= n {
			host = netip.AddrFrom4([4]byte(b[4:8])).String()
		}
	case 3:
		n = 4 + 1 + int(b[4]) + 2
		if len(b) >= n {
			host = string(b[5 : 5+int(b[4])])
		}
	case 4:
		n = 4 + 16 + 2
		if len(b) >= n {
			host = netip.AddrFrom16([16]byte(b[4:20])).String()
		}
	default:
		return len(b), ""
	}
	if len(b) < n {
		return 0, ""
	}
	return n, joinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(b[n-2:n]))))
}

// proxyV2 reads a PROXY protocol version 2 header.
func (p *prologue) proxyV2(b []byte) int {
	if len(b) < 16 {
		return 0
	}
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < n {
		return 0
	}
	addr := b[16:n]
	switch b[13] {
	case 0x11: // TCP over IPv4
		if len(addr) >= 12 {
			p.origin = fmt.Sprintf("%s to %s",
				netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[0:4])), binary.BigEndian.Uint16(addr[8:10])),
				netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[4:8])), binary.BigEndian.Uint16(addr[10:12])))
		}
	case 0x21: // TCP over IPv6
		if len(addr) >= 36 {
			p.origin = fmt.Sprintf("%s to %s",
				netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[0:16])), binary.BigEndian.Uint16(addr[32:34])),
				netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[16:32])), binary.BigEndian.Uint16(addr[34:36])))
		}
	}
	return n
}
