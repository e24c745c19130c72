// Package communityid computes the Community ID v1 flow hash
// (https://github.com/corelight/community-id-spec), the key Zeek, Suricata,
// Elastic and Arkime put on a flow's records so they can be joined: certlens
// writes it on every event so its verdict joins Zeek's ssl.log and
// Suricata's alerts for the same connection.
package communityid

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// The IP protocol numbers whose flows carry ports in the hash.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// ErrICMP: ICMP and ICMPv6 flows hash their type and code in place of
// ports, mapped to the request/response pairing of the spec; certlens has
// no ICMP flows and does not implement that mapping.
var ErrICMP = errors.New("community id: ICMP type/code mapping not implemented")

// TCP is the Community ID of the TCP connection between a and b, the same
// whichever of the two is the client.
func TCP(seed uint16, a, b netip.AddrPort) string {
	id, _ := Flow(seed, ProtoTCP, a, b)
	return id
}

// FromAddrs is TCP of two net.Addr as a net.Conn gives them (LocalAddr,
// RemoteAddr); "" when either is not a TCP address (a pipe in a test, a
// Unix socket), since such a connection is no flow a sensor can see.
func FromAddrs(seed uint16, a, b net.Addr) string {
	ta, ok1 := a.(*net.TCPAddr)
	tb, ok2 := b.(*net.TCPAddr)
	if !ok1 || !ok2 || ta == nil || tb == nil {
		return ""
	}
	return TCP(seed, ta.AddrPort(), tb.AddrPort())
}

// FromStrings is TCP of two "host:port" strings with literal IPs; "" when
// either is not one.
func FromStrings(seed uint16, a, b string) string {
	pa, err1 := netip.ParseAddrPort(a)
	pb, err2 := netip.ParseAddrPort(b)
	if err1 != nil || err2 != nil {
		return ""
	}
	return TCP(seed, pa, pb)
}

// Flow is the Community ID v1 of a flow of IP protocol proto between a and
// b: "1:" and the base64 of SHA-1 over seed, the two endpoints in canonical
// order (smaller address first, then smaller port), the protocol, a zero
// pad byte and the ports. Protocols other than TCP, UDP and SCTP hash no
// ports (the ports of a and b are ignored); ICMP is ErrICMP.
func Flow(seed uint16, proto uint8, a, b netip.AddrPort) (string, error) {
	if proto == 1 || proto == 58 {
		return "", ErrICMP
	}
	// An IPv4 address seen through a dual-stack socket is still IPv4 on
	// the wire: hash its 4 bytes, as a sensor does.
	aa, ba := a.Addr().Unmap(), b.Addr().Unmap()
	if aa.Is4() != ba.Is4() {
		return "", fmt.Errorf("community id: %s and %s are not the same IP version", aa, ba)
	}
	ports := proto == ProtoTCP || proto == ProtoUDP || proto == ProtoSCTP
	ap, bp := a.Port(), b.Port()
	if c := aa.Compare(ba); c > 0 || (c == 0 && ports && ap > bp) {
		aa, ba, ap, bp = ba, aa, bp, ap
	}
	buf := make([]byte, 0, 2+16+16+2+4)
	buf = binary.BigEndian.AppendUint16(buf, seed)
	buf = append(buf, aa.AsSlice()...)
	buf = append(buf, ba.AsSlice()...)
	buf = append(buf, proto, 0)
	if ports {
		buf = binary.BigEndian.AppendUint16(buf, ap)
		buf = binary.BigEndian.AppendUint16(buf, bp)
	}
	sum := sha1.Sum(buf)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:]), nil
}
