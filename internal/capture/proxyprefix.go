package capture

// The exchanges a proxy puts in front of a tunnel: SOCKS 4 and 5, and the
// PROXY v2 header; the target they name is the connection's target.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

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
