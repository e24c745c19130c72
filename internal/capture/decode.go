package capture

import (
	"encoding/binary"
	"net/netip"

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
	skipFragment // an IP fragment (not reassembled)
	skipMalformed
)

// decoder turns frames of the supported link types into TCP segments with
// gopacket's layers, without allocating per packet.
type decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	lo      layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newDecoder() *decoder {
	d := &decoder{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL,
		layers.LayerTypeLinuxSLL2, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		// The parser stops after IP: TCP is decoded below, once fragments
		// and IPv6 extension headers are dealt with.
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.dot1q, &d.sll, &d.sll2, &d.lo, &d.ip4, &d.ip6)
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
		if len(data) > 0 {
			switch data[0] >> 4 {
			case 4:
				return layers.LayerTypeIPv4
			case 6:
				return layers.LayerTypeIPv6
			}
		}
	}
	return gopacket.LayerTypeZero
}

// IP protocol numbers of the IPv6 extension headers walked to reach TCP.
const (
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6Destination = 60
	ipProtoTCP      = 6
)

// decode returns the TCP segment a frame carries. seg.tcp points into the
// decoder and data: valid until the next call.
func (d *decoder) decode(p packet) (seg segment, why skipReason) {
	first := firstLayer(p.link, p.data)
	parser := d.parsers[first]
	if parser == nil {
		return seg, skipLinkType
	}
	d.decoded = d.decoded[:0]
	// A decoding error after the IP layer still leaves that layer usable;
	// one before it leaves no IP layer in decoded.
	_ = parser.DecodeLayers(p.data, &d.decoded)
	var payload []byte
	var src, dst netip.Addr
	proto := -1
	for i := len(d.decoded) - 1; i >= 0 && proto < 0; i-- {
		switch d.decoded[i] {
		case layers.LayerTypeIPv4:
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				return seg, skipFragment
			}
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(d.ip4.DstIP.To4())
			proto, payload = int(d.ip4.Protocol), d.ip4.Payload
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			next := d.ip6.NextHeader
			if d.ip6.HopByHop != nil {
				next = d.ip6.HopByHop.NextHeader
			}
			var ok bool
			proto, payload, ok = skipIPv6Extensions(int(next), d.ip6.Payload)
			if !ok {
				return seg, skipFragment
			}
		}
	}
	if proto < 0 {
		if first == gopacket.LayerTypeZero {
			return seg, skipLinkType
		}
		return seg, skipNotTCP
	}
	if proto != ipProtoTCP {
		return seg, skipNotTCP
	}
	if len(payload) < 20 || !src.IsValid() || !dst.IsValid() {
		return seg, skipMalformed
	}
	sport := binary.BigEndian.Uint16(payload[0:2])
	dport := binary.BigEndian.Uint16(payload[2:4])
	seg.src = netip.AddrPortFrom(src, sport)
	seg.dst = netip.AddrPortFrom(dst, dport)
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

// skipIPv6Extensions walks the extension headers between IPv6 and the
// upper layer. ok is false for a fragment, which is not reassembled.
func skipIPv6Extensions(next int, payload []byte) (proto int, rest []byte, ok bool) {
	for range 8 {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6Destination:
			if len(payload) < 2 {
				return -1, nil, true
			}
			n := (int(payload[1]) + 1) * 8
			if n > len(payload) {
				return -1, nil, true
			}
			next, payload = int(payload[0]), payload[n:]
		case ipv6Fragment:
			return -1, nil, false
		default:
			return next, payload, true
		}
	}
	return -1, nil, true
}
