package capture

// The text protocols' upgrades to TLS: STARTTLS in SMTP, IMAP, POP3's STLS,
// FTP's AUTH TLS, IRC and XMPP, and the PROXY v1 header, read line by line.

import (
	"fmt"
	"net/netip"
	"strings"
)

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
