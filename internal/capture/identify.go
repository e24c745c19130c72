package capture

// Naming the plaintext protocol of a prologue from its first message.

import (
	"bytes"
	"encoding/binary"
	"strings"
)

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
