package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// segment is one TCP segment, its addresses and its decoded header.
type segment struct {
	src, dst netip.AddrPort
	tcp      *layers.TCP
	// headerOnly: the fixed TCP header was read (enough to number the
	// connection as Wireshark does) but the segment is unusable beyond that.
	headerOnly bool
	// truncated: the capture cut the packet short (snap length), so the
	// payload is incomplete.
	truncated bool
}

// Why a packet carried no TCP segment, for the summary.
type skipReason int

const (
	skipNone skipReason = iota
	skipNotTCP
	skipLinkType // a link type the decoder does not know
	skipFragment // an IP fragment held until its datagram is whole
	skipMalformed
	skipTunnel // inside an encapsulation certlens cannot read (decoder.tunnel names it)
)

// decoder turns frames of the supported link types into TCP segments with
// gopacket's layers, without allocating per packet. Tunnels and
// encapsulations gopacket decodes are walked to the innermost IP packet:
// 802.1Q and QinQ, MPLS, PPPoE, GRE (and ERSPAN), VXLAN, Geneve, GTP-U,
// IP in IP; IPv6 extension headers are skipped and IP fragments reassembled.
type decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	lo      layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	gre     layers.GRE
	vxlan   layers.VXLAN
	geneve  layers.Geneve
	gtp     layers.GTPv1U
	erspan  layers.ERSPANII
	tcp     layers.TCP
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	defrag  defragmenter
	// tunnel names the encapsulation of the last skipTunnel.
	tunnel string
}

func newDecoder() *decoder {
	d := &decoder{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	d.defrag.init()
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL,
		layers.LayerTypeLinuxSLL2, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6,
		layers.LayerTypeUDP, layers.LayerTypeGRE} {
		// The parser stops where TCP begins: TCP is decoded below, once
		// fragments and IPv6 extension headers are dealt with.
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.dot1q, &d.sll, &d.sll2, &d.lo, &d.ip4, &d.ip6,
			&d.udp, &d.gre, &d.vxlan, &d.geneve, &d.gtp, &d.erspan)
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	return d
}

// firstLayer maps a capture's link type to the layer its frames start with.
func firstLayer(link layers.LinkType, data []byte) gopacket.LayerType {
	switch link {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case layers.LinkTypeIPv4:
		return layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		return layers.LayerTypeIPv6
	case layers.LinkTypeRaw, 12, 14:
		// Raw IP (12 and 14 are DLT_RAW on some BSDs): the version nibble says which.
		return ipByVersion(data)
	}
	return gopacket.LayerTypeZero
}

func ipByVersion(data []byte) gopacket.LayerType {
	if len(data) > 0 {
		switch data[0] >> 4 {
		case 4:
			return layers.LayerTypeIPv4
		case 6:
			return layers.LayerTypeIPv6
		}
	}
	return gopacket.LayerTypeZero
}

// IP protocol numbers of the headers walked to reach TCP.
const (
	ipv6HopByHop    = 0
	ipProtoIPIP     = 4
	ipProtoTCP      = 6
	ipProtoUDP      = 17
	ipProtoIPv6     = 41
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipProtoGRE      = 47
	ipProtoESP      = 50
	ipProtoAH       = 51
	ipv6Destination = 60
)

// maxEncap bounds the encapsulations walked: a packet nesting deeper is
// crafted, not captured.
const maxEncap = 8

// ipPacket is the innermost IP packet found so far.
type ipPacket struct {
	src, dst netip.Addr
	proto    int
	payload  []byte
	v6       bool
	// A fragment: its datagram's id, its offset, whether more follow.
	frag    bool
	fragID  uint32
	fragOff int
	more    bool
}

// decode returns the TCP segment a frame carries. seg.tcp points into the
// decoder and data: valid until the next call.
func (d *decoder) decode(p packet, now time.Time) (seg segment, why skipReason) {
	typ := firstLayer(p.link, p.data)
	if d.parsers[typ] == nil {
		return seg, skipLinkType
	}
	data := p.data
	var ip ipPacket
	found := false
	for depth := 0; ; depth++ {
		if depth == maxEncap {
			return seg, skipMalformed
		}
		d.decoded = d.decoded[:0]
		// A decoding error after an IP layer still leaves that layer
		// usable; one before it leaves no IP layer in decoded.
		err := d.parsers[typ].DecodeLayers(data, &d.decoded)
		if d.innermostIP(&ip) {
			found = true
		}
		next := gopacket.LayerTypeZero
		var rest []byte
		if l := d.layerOf(d.decoded); err == nil && l != nil {
			// The parser stopped at a layer it has no decoder for.
			next, rest = l.NextLayerType(), l.LayerPayload()
		}
		if found && ip.frag {
			whole, ok := d.defrag.add(ip, now)
			if !ok {
				return seg, skipFragment
			}
			ip = whole
			if ip.v6 {
				ip.proto, ip.payload = skipExtensions(ip.proto, ip.payload, &ip)
			}
			if typ, data = ipNext(ip.proto, ip.payload); typ != gopacket.LayerTypeZero {
				continue
			}
			break
		}
		switch next {
		case layers.LayerTypeMPLS:
			typ, data = mplsPayload(rest)
		case layers.LayerTypePPPoE:
			typ, data = pppoePayload(rest)
		default:
			typ = gopacket.LayerTypeZero
		}
		if typ == gopacket.LayerTypeZero {
			if !found && next == layers.LayerTypeMPLS {
				d.tunnel = "MPLS (a payload that is neither IP nor Ethernet)"
				return seg, skipTunnel
			}
			break
		}
	}
	if !found {
		return seg, skipNotTCP
	}
	if ip.proto != ipProtoTCP {
		if name := tunnelName(ip); name != "" {
			d.tunnel = name
			return seg, skipTunnel
		}
		return seg, skipNotTCP
	}
	payload := ip.payload
	if len(payload) < 20 || !ip.src.IsValid() || !ip.dst.IsValid() {
		return seg, skipMalformed
	}
	sport := binary.BigEndian.Uint16(payload[0:2])
	dport := binary.BigEndian.Uint16(payload[2:4])
	seg.src = netip.AddrPortFrom(ip.src, sport)
	seg.dst = netip.AddrPortFrom(ip.dst, dport)
	seg.truncated = p.ci.CaptureLength < p.ci.Length
	if err := d.tcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
		// The ports, sequence number and flags are in the fixed header
		// DecodeFromBytes read first: Wireshark numbers the connection
		// from them even when the rest is bogus.
		seg.headerOnly = true
	}
	seg.tcp = &d.tcp
	return seg, skipNone
}

// innermostIP records the last IP layer of the latest pass of the parser,
// past its IPv6 extension headers; it reports whether there was one.
func (d *decoder) innermostIP(ip *ipPacket) bool {
	for i := len(d.decoded) - 1; i >= 0; i-- {
		switch d.decoded[i] {
		case layers.LayerTypeIPv4:
			*ip = ipPacket{proto: int(d.ip4.Protocol), payload: d.ip4.Payload}
			ip.src, _ = netip.AddrFromSlice(d.ip4.SrcIP.To4())
			ip.dst, _ = netip.AddrFromSlice(d.ip4.DstIP.To4())
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				ip.frag, ip.fragID, ip.fragOff = true, uint32(d.ip4.Id), int(d.ip4.FragOffset)*8
				ip.more = d.ip4.Flags&layers.IPv4MoreFragments != 0
				return true
			}
			if ip.proto == ipProtoAH {
				ip.proto, ip.payload = skipExtensions(ip.proto, ip.payload, ip)
			}
			return true
		case layers.LayerTypeIPv6:
			*ip = ipPacket{payload: d.ip6.Payload, v6: true}
			ip.src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			ip.dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			next := d.ip6.NextHeader
			if d.ip6.HopByHop != nil {
				next = d.ip6.HopByHop.NextHeader
			}
			ip.proto, ip.payload = skipExtensions(int(next), ip.payload, ip)
			return true
		}
	}
	return false
}

// skipExtensions walks the IPv6 extension headers (and an authentication
// header, in IPv4 too) between IP and the upper layer; at a fragment
// header it fills in ip's fragment fields and stops.
func skipExtensions(next int, payload []byte, ip *ipPacket) (proto int, rest []byte) {
	for range maxEncap {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6Destination, ipProtoAH:
			if len(payload) < 2 {
				return -1, nil
			}
			n := (int(payload[1]) + 1) * 8
			if next == ipProtoAH {
				n = (int(payload[1]) + 2) * 4
			}
			if n > len(payload) {
				return -1, nil
			}
			next, payload = int(payload[0]), payload[n:]
		case ipv6Fragment:
			if len(payload) < 8 {
				return -1, nil
			}
			off := binary.BigEndian.Uint16(payload[2:4])
			ip.frag, ip.fragOff, ip.more = true, int(off&^7), off&1 != 0
			ip.fragID = binary.BigEndian.Uint32(payload[4:8])
			return int(payload[0]), payload[8:]
		default:
			return next, payload
		}
	}
	return -1, nil
}

// ipNext is the layer an IP payload of protocol proto starts with, when
// the parser can go on into it (a tunnel in a reassembled datagram).
func ipNext(proto int, payload []byte) (gopacket.LayerType, []byte) {
	switch proto {
	case ipProtoUDP:
		return layers.LayerTypeUDP, payload
	case ipProtoGRE:
		return layers.LayerTypeGRE, payload
	case ipProtoIPIP:
		return layers.LayerTypeIPv4, payload
	case ipProtoIPv6:
		return layers.LayerTypeIPv6, payload
	}
	return gopacket.LayerTypeZero, nil
}

// layerOf returns the last layer decoded, nil if none.
func (d *decoder) layerOf(decoded []gopacket.LayerType) gopacket.DecodingLayer {
	if len(decoded) == 0 {
		return nil
	}
	switch decoded[len(decoded)-1] {
	case layers.LayerTypeEthernet:
		return &d.eth
	case layers.LayerTypeDot1Q:
		return &d.dot1q
	case layers.LayerTypeLinuxSLL:
		return &d.sll
	case layers.LayerTypeLinuxSLL2:
		return &d.sll2
	}
	return nil
}

// mplsPayload steps over an MPLS label stack. What follows the bottom
// label is not typed on the wire: IP by its version nibble, or an Ethernet
// pseudowire (with its control word), as Wireshark guesses it.
func mplsPayload(b []byte) (gopacket.LayerType, []byte) {
	for len(b) >= 4 {
		bottom := b[2]&1 != 0
		b = b[4:]
		if bottom {
			if t := ipByVersion(b); t != gopacket.LayerTypeZero {
				return t, b
			}
			if len(b) >= 4 && b[0]>>4 == 0 {
				b = b[4:] // the pseudowire control word
			}
			if len(b) >= 14 {
				return layers.LayerTypeEthernet, b
			}
			return gopacket.LayerTypeZero, nil
		}
	}
	return gopacket.LayerTypeZero, nil
}

// pppoePayload steps over a PPPoE session header and PPP's protocol field.
func pppoePayload(b []byte) (gopacket.LayerType, []byte) {
	if len(b) < 8 || b[1] != 0 { // code 0: session data
		return gopacket.LayerTypeZero, nil
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	body := b[6:]
	if n <= len(body) {
		body = body[:n]
	}
	if len(body) < 2 {
		// A length too short for PPP's protocol field: what lies past it
		// is padding, not the field.
		return gopacket.LayerTypeZero, nil
	}
	switch binary.BigEndian.Uint16(body[0:2]) {
	case 0x0021:
		return layers.LayerTypeIPv4, body[2:]
	case 0x0057:
		return layers.LayerTypeIPv6, body[2:]
	}
	return gopacket.LayerTypeZero, nil
}

// tunnelPorts are UDP ports of encapsulations certlens does not read into.
var tunnelPorts = map[uint16]string{
	1194:  "OpenVPN (UDP 1194)",
	51820: "WireGuard (UDP 51820)",
	500:   "IPsec IKE (UDP 500)",
	4500:  "IPsec NAT-T (UDP 4500)",
	1701:  "L2TP (UDP 1701)",
	4754:  "GRE in UDP (UDP 4754)",
	8472:  "VXLAN on Linux's old port (UDP 8472)",
}

// tunnelName names an encapsulation an IP packet that is not TCP carries,
// "" when it is none (DNS, ICMP and the like are just not TCP).
func tunnelName(ip ipPacket) string {
	switch ip.proto {
	case ipProtoESP:
		return "IPsec ESP (encrypted)"
	case ipProtoGRE:
		if len(ip.payload) >= 4 {
			return fmt.Sprintf("GRE carrying protocol %#04x", binary.BigEndian.Uint16(ip.payload[2:4]))
		}
	case ipProtoUDP:
		if len(ip.payload) >= 4 {
			for _, port := range []uint16{binary.BigEndian.Uint16(ip.payload[0:2]), binary.BigEndian.Uint16(ip.payload[2:4])} {
				if n := tunnelPorts[port]; n != "" {
					return n
				}
			}
		}
	}
	return ""
}
