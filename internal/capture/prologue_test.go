package capture

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// turn is one message of a plaintext prologue.
type turn struct {
	client bool
	data   string
}

func c2s(s string) turn { return turn{true, s} }
func s2c(s string) turn { return turn{false, s} }

// mysqlGreeting is a MySQL server's first packet, offering SSL when ssl.
func mysqlGreeting(ssl bool) string {
	caps := uint16(0xf7ff)
	if !ssl {
		caps &^= mysqlClientSSL
	}
	p := []byte{10}
	p = append(p, "8.0.36\x00"...)
	p = binary.LittleEndian.AppendUint32(p, 42)
	p = append(p, "abcdefgh\x00"...)
	p = binary.LittleEndian.AppendUint16(p, caps)
	p = append(p, 0xff, 2, 0, 0xff, 0xdf, 21)
	p = append(p, make([]byte, 10)...)
	p = append(p, "ijklmnopqrst\x00mysql_native_password\x00"...)
	return mysqlPacket(0, p)
}

func mysqlPacket(seq byte, payload []byte) string {
	n := len(payload)
	return string(append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...))
}

// mysqlLogin is the client's answer to the greeting: an SSLRequest (the
// capability flags, 32 bytes) when ssl, else a login in plaintext.
func mysqlLogin(ssl bool) string {
	caps := uint32(0x000fa685)
	if ssl {
		caps |= mysqlClientSSL
	}
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 23)...)
	if !ssl {
		p = append(p, "root\x00\x00"...)
	}
	return mysqlPacket(1, p)
}

const ldapStartTLSRequest = "\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + "1.3.6.1.4.1.1466.20037"

var proxyV2Header = "\r\n\r\n\x00\r\nQUIT\n" + "\x21\x11\x00\x0c" +
	"\xcb\x00\x71\x07" + "\xc6\x33\x64\x02" + "\xc8\x22" + "\x01\xbb"

// prologueCases are conversations that carry TLS after plaintext, as the
// protocols' RFCs and common servers write them.
var prologueCases = []struct {
	name  string
	port  uint16
	turns []turn
	proto string // app_protocol
	// target is where a proxy was asked to connect; note, a closed-event
	// note the prologue must leave.
	target, note string
	// dissector is what tshark is told the port carries ("tls" when
	// empty): its own dissector where it follows the upgrade into TLS;
	// "-" where tshark follows neither (not compared).
	dissector string
}{
	{"SMTP STARTTLS", 25, []turn{
		s2c("220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n"),
		c2s("EHLO client.example.test\r\n"),
		s2c("250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
		c2s("STARTTLS\r\n"),
		s2c("220 2.0.0 Ready to start TLS\r\n"),
	}, "smtp-starttls", "", "", ""},
	{"IMAP STARTTLS", 143, []turn{
		s2c("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n"),
		c2s("a1 STARTTLS\r\n"),
		s2c("a1 OK Begin TLS negotiation now.\r\n"),
	}, "imap-starttls", "", "", ""},
	{"POP3 STLS", 110, []turn{
		s2c("+OK Dovecot (Debian) ready.\r\n"),
		c2s("CAPA\r\n"),
		s2c("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL\r\n.\r\n"),
		c2s("STLS\r\n"),
		s2c("+OK Begin TLS negotiation now.\r\n"),
	}, "pop3-stls", "", "", ""},
	{"FTP AUTH TLS", 21, []turn{
		s2c("220 (vsFTPd 3.0.3)\r\n"),
		c2s("AUTH TLS\r\n"),
		s2c("234 Proceed with negotiation.\r\n"),
	}, "ftp-auth-tls", "", "", ""},
	{"XMPP STARTTLS", 5222, []turn{
		c2s("<?xml version='1.0'?><stream:stream to='example.test' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"),
		s2c("<?xml version='1.0'?><stream:stream from='example.test' id='c2s1' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"),
		c2s("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
		s2c("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
	}, "xmpp-starttls", "", "", ""},
	{"LDAP StartTLS", 389, []turn{
		c2s(ldapStartTLSRequest),
		s2c("\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00"),
	}, "ldap-starttls", "", "", ""},
	{"IRC STARTTLS", 6667, []turn{
		c2s("CAP LS 302\r\n"),
		s2c(":irc.example.test CAP * LS :multi-prefix tls\r\n"),
		c2s("STARTTLS\r\n"),
		s2c(":irc.example.test 670 * :STARTTLS successful, proceed with TLS handshake\r\n"),
	}, "irc-starttls", "", "", ""},
	{"PostgreSQL SSLRequest", 5432, []turn{
		c2s("\x00\x00\x00\x08\x04\xd2\x16\x2f"),
		s2c("S"),
	}, "postgresql", "", "", "pgsql"},
	{"PostgreSQL GSSENCRequest refused, then SSLRequest", 5432, []turn{
		c2s("\x00\x00\x00\x08\x04\xd2\x16\x30"),
		s2c("N"),
		c2s("\x00\x00\x00\x08\x04\xd2\x16\x2f"),
		s2c("S"),
	}, "postgresql", "", "", "-"}, // tshark 4.0's pgsql dissector does not follow the second request
	{"MySQL SSL after the greeting", 3306, []turn{
		s2c(mysqlGreeting(true)),
		c2s(mysqlLogin(true)),
	}, "mysql", "", "", ""},
	{"SOCKS 4", 1080, []turn{
		c2s("\x04\x01\x01\xbb\x0a\x00\x00\x02alice\x00"),
		s2c("\x00\x5a\x00\x00\x00\x00\x00\x00"),
	}, "socks4", "10.0.0.2:443", "", ""},
	{"SOCKS 4a", 1080, []turn{
		c2s("\x04\x01\x01\xbb\x00\x00\x00\x01\x00iis.example.test\x00"),
		s2c("\x00\x5a\x00\x00\x00\x00\x00\x00"),
	}, "socks4", "iis.example.test:443", "", ""},
	{"SOCKS 5", 1080, []turn{
		c2s("\x05\x01\x00"),
		s2c("\x05\x00"),
		c2s("\x05\x01\x00\x03\x10iis.example.test\x01\xbb"),
		s2c("\x05\x00\x00\x01\x7f\x00\x00\x01\x9c\x40"),
	}, "socks5", "iis.example.test:443", "", ""},
	{"SOCKS 5 with a password", 1080, []turn{
		c2s("\x05\x02\x00\x02"),
		s2c("\x05\x02"),
		c2s("\x01\x05alice\x06secret"),
		s2c("\x01\x00"),
		c2s("\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x01\xbb"),
		s2c("\x05\x00\x00\x01\x7f\x00\x00\x01\x9c\x40"),
	}, "socks5", "[2001:db8::9]:443", "", ""},
	{"PROXY header v1", 443, []turn{
		c2s("PROXY TCP4 203.0.113.7 198.51.100.2 51234 443\r\n"),
	}, "proxy-v1", "", "the proxy-v1 header says the connection is from 203.0.113.7:51234 to 198.51.100.2:443", ""},
	{"PROXY header v2", 443, []turn{
		c2s(proxyV2Header),
	}, "proxy-v2", "", "the proxy-v2 header says the connection is from 203.0.113.7:51234 to 198.51.100.2:443", ""},
	{"a protocol certlens does not know, found by content", 7000, []turn{
		c2s("HELLO certlens 1.0\r\n"),
		s2c("WELCOME\r\n"),
		c2s("UPGRADE tls\r\n"),
		s2c("GO AHEAD\r\n"),
	}, "", "", "", ""},
}

// prologueScript writes one connection: the prologue's turns, then the
// recorded TLS transcript, then FIN both ways.
func prologueScript(s *tcpScript, clientPort, serverPort uint16, turns []turn, tr *transcript.Transcript) {
	c := s.conn(fmt.Sprintf("10.0.0.1:%d", clientPort), fmt.Sprintf("10.0.0.2:%d", serverPort), 1000, 5000)
	c.open()
	for _, t := range turns {
		c.send(t.client, []byte(t.data))
	}
	c.replay(tr.Chunks)
	c.close()
}

// TestPrologues: TLS that starts after plaintext (STARTTLS, a database's
// negotiation, a proxy's exchange) is read as if the connection had
// started with it, named by app_protocol, and where tshark follows the
// protocol into TLS, analyze's events equal tshark's fields.
func TestPrologues(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-cert")
	direct := newScript(t)
	prologueScript(direct, 40000, 443, nil, tr)
	devs, _ := analyzeFile(t, direct.write(), Options{})
	want, wantClosed := devs[0].Handshake, devs[1].Closed
	if want == nil || want.CertRequest == nil || want.Verdict != "ok" || want.AppProtocol != "" {
		t.Fatalf("direct TLS: %s", jsonOf(t, devs))
	}
	for _, tc := range prologueCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t)
			prologueScript(s, 40001, tc.port, tc.turns, tr)
			path := s.write()
			evs, st := analyzeFile(t, path, Options{})
			if len(evs) != 2 || evs[0].Handshake == nil || evs[1].Closed == nil {
				t.Fatalf("events: %s", jsonOf(t, evs))
			}
			h, closed := evs[0].Handshake, evs[1].Closed
			if h.AppProtocol != tc.proto || closed.AppProtocol != tc.proto {
				t.Errorf("app_protocol %q, %q; want %q", h.AppProtocol, closed.AppProtocol, tc.proto)
			}
			target := tc.target
			if target == "" {
				target = fmt.Sprintf("10.0.0.2:%d", tc.port)
			}
			if h.Target != target || closed.Target != target {
				t.Errorf("target %q, %q; want %q", h.Target, closed.Target, target)
			}
			if tc.target == "" {
				if id := communityid.FromStrings(0, h.ClientAddr, target); id == "" || h.CommunityID != id || closed.CommunityID != id {
					t.Errorf("community_id %q, %q; want the capture flow's %q", h.CommunityID, closed.CommunityID, id)
				}
			}
			g, w := *h, *want
			g.ConnID, g.ClientAddr, g.Target, g.AppProtocol, g.PCAP, g.CommunityID = "", "", "", "", nil, ""
			w.ConnID, w.ClientAddr, w.Target, w.PCAP, w.CommunityID = "", "", "", nil, ""
			if a, b := jsonOf(t, &g), jsonOf(t, &w); a != b {
				t.Errorf("handshake after the prologue:\n%s\nwant the direct one's\n%s", a, b)
			}
			var plainUp, plainDown int64
			for _, tn := range tc.turns {
				if tn.client {
					plainUp += int64(len(tn.data))
				} else {
					plainDown += int64(len(tn.data))
				}
			}
			if strings.HasPrefix(tc.proto, "socks") || strings.HasPrefix(tc.proto, "proxy") {
				// A proxy's exchange is not the tunnel's.
				plainUp, plainDown = 0, 0
			}
			if closed.BytesUp != wantClosed.BytesUp+plainUp || closed.BytesDown != wantClosed.BytesDown+plainDown || closed.NotTLS != "" {
				t.Errorf("closed: %s", jsonOf(t, closed))
			}
			if notes := strings.Join(closed.Errors, "\n"); tc.note != notes {
				t.Errorf("closed event notes %q, want %q", notes, tc.note)
			}
			if h.PCAP.Frames == nil || h.PCAP.Frames.CertRequest <= want.PCAP.Frames.CertRequest {
				t.Errorf("frames %+v: the prologue's frames come first", h.PCAP.Frames)
			}
			if tc.proto == "" || tc.dissector == "-" {
				return
			}
			dissector := tc.dissector
			if dissector == "" {
				dissector = "tls"
			}
			if n := matchTshark(t, path, evs, st, "-d", fmt.Sprintf("tcp.port==%d,%s", tc.port, dissector)); n != 1 {
				t.Errorf("tshark shows %d CertificateRequests, want 1", n)
			}
		})
	}
}

// TestProloguesWithoutTLS: a known protocol that goes on in plaintext is
// named, with why no TLS followed; an unknown one is what the parser
// says it is, as before.
func TestProloguesWithoutTLS(t *testing.T) {
	tests := []struct {
		name   string
		port   uint16
		turns  []turn
		proto  string
		notTLS string
	}{
		{"SMTP without STARTTLS", 25, []turn{
			s2c("220 mail.example.test ESMTP\r\n"), c2s("EHLO c\r\n"), s2c("250 mail.example.test\r\n"),
			c2s("MAIL FROM:<a@example.test>\r\n"), s2c("250 2.1.0 Ok\r\n"),
		}, "smtp", "smtp: mail was sent without STARTTLS: the connection stayed in plaintext"},
		{"SMTP STARTTLS refused", 25, []turn{
			s2c("220 mail.example.test ESMTP\r\n"), c2s("STARTTLS\r\n"), s2c("454 4.7.0 TLS not available due to local problem\r\n"),
			c2s("QUIT\r\n"), s2c("221 2.0.0 Bye\r\n"),
		}, "smtp-starttls", `smtp: the server refused STARTTLS: "454 4.7.0 TLS not available due to local problem"`},
		{"IMAP that never asks", 143, []turn{
			s2c("* OK ready\r\n"), c2s("a1 LOGOUT\r\n"), s2c("* BYE\r\na1 OK\r\n"),
		}, "imap", "imap: the client did not ask for TLS (no STARTTLS): the connection stayed in plaintext"},
		{"PostgreSQL server without SSL", 5432, []turn{
			c2s("\x00\x00\x00\x08\x04\xd2\x16\x2f"), s2c("N"),
			c2s("\x00\x00\x00\x0f\x00\x03\x00\x00user\x00u\x00\x00"),
		}, "postgresql", "postgresql: the server answered the SSLRequest with N (no SSL): the session went on in plaintext"},
		{"MySQL login without TLS", 3306, []turn{
			s2c(mysqlGreeting(true)), c2s(mysqlLogin(false)),
		}, "mysql", "mysql: the client logged in without asking for TLS: the connection stayed in plaintext"},
		{"SOCKS 5 refused", 1080, []turn{
			c2s("\x05\x01\x00"), s2c("\x05\x00"),
			c2s("\x05\x01\x00\x01\x0a\x00\x00\x02\x01\xbb"), s2c("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"),
		}, "socks5", "socks5: the SOCKS 5 proxy refused the connection (reply 5)"},
		{"HTTP", 80, []turn{
			c2s("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"), s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
		}, "", `not TLS: starts with "GET /"`},
		{"SSH, whose server speaks first", 22, []turn{
			s2c("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), c2s("SSH-2.0-OpenSSH_9.2p1\r\n"),
		}, "", `not TLS: starts with "SSH-2"`},
		{"an unknown protocol", 7000, []turn{
			c2s("HELLO certlens\r\n"), s2c("WELCOME\r\n"), c2s("BYE\r\n"),
		}, "", `not TLS: starts with "HELLO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t)
			prologueScript(s, 40001, tt.port, tt.turns, &transcript.Transcript{})
			evs, st := analyzeFile(t, s.write(), Options{})
			if len(evs) != 1 || evs[0].Closed == nil {
				t.Fatalf("events: %s", jsonOf(t, evs))
			}
			c := evs[0].Closed
			if c.AppProtocol != tt.proto || c.NotTLS != tt.notTLS {
				t.Errorf("app_protocol %q not_tls %q, want %q %q", c.AppProtocol, c.NotTLS, tt.proto, tt.notTLS)
			}
			if st.TLSConnections != 0 {
				t.Errorf("%d TLS connections", st.TLSConnections)
			}
		})
	}
}

// TestPrologueChunking: however the plaintext and the hello are cut into
// segments (a byte at a time, lines split), the same handshake is found.
func TestPrologueChunking(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-nocert")
	for _, tc := range prologueCases {
		for _, size := range []int{1, 3, 7, 64} {
			t.Run(fmt.Sprintf("%s in %d-byte segments", tc.name, size), func(t *testing.T) {
				s := newScript(t)
				c := s.conn("10.0.0.1:40001", fmt.Sprintf("10.0.0.2:%d", tc.port), 1000, 5000)
				c.open()
				var chunks []transcript.Chunk
				for _, tn := range tc.turns {
					dir := transcript.ServerToClient
					if tn.client {
						dir = transcript.ClientToServer
					}
					chunks = append(chunks, transcript.Chunk{Dir: dir, Data: []byte(tn.data)})
				}
				for i, ch := range append(chunks, tr.Chunks...) {
					data := ch.Data
					if i <= len(chunks) {
						// The prologue and the first hello, cut small.
						for len(data) > size {
							c.segment(ch.Dir == transcript.ClientToServer, flags{ack: true}, data[:size])
							data = data[size:]
						}
					}
					c.send(ch.Dir == transcript.ClientToServer, data)
				}
				c.close()
				evs, _ := analyzeFile(t, s.write(), Options{})
				var hs []*event.Handshake
				for _, e := range evs {
					if e.Handshake != nil {
						hs = append(hs, e.Handshake)
					}
				}
				if len(hs) != 1 || hs[0].Verdict != "403.7" || hs[0].CertRequest == nil || hs[0].AppProtocol != tc.proto {
					t.Errorf("handshakes: %s", jsonOf(t, evs))
				}
			})
		}
	}
}
