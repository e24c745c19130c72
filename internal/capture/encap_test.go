package capture

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	outerSrc = net.IPv4(192, 0, 2, 1).To4()
	outerDst = net.IPv4(192, 0, 2, 2).To4()
	macA     = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB     = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

// ethOf is an Ethernet header for an inner IP packet.
func ethOf(inner []gopacket.SerializableLayer) *layers.Ethernet {
	et := layers.EthernetTypeIPv4
	if _, ok := inner[0].(*layers.IPv6); ok {
		et = layers.EthernetTypeIPv6
	}
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

// overUDP carries layers in UDP to port, in an outer IPv4 packet.
func overUDP(port layers.UDPPort, ls ...gopacket.SerializableLayer) []gopacket.SerializableLayer {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: outerSrc, DstIP: outerDst}
	udp := &layers.UDP{SrcPort: 50000, DstPort: port}
	udp.SetNetworkLayerForChecksum(ip)
	return append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, udp}, ls...)
}

func overIP(proto layers.IPProtocol, ls ...gopacket.SerializableLayer) []gopacket.SerializableLayer {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: outerSrc, DstIP: outerDst}
	return append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip}, ls...)
}

func greProto(inner []gopacket.SerializableLayer) layers.EthernetType {
	if _, ok := inner[0].(*layers.IPv6); ok {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// encapsulations wrap a connection's IP packets as networks and capture
// points do; every one is read by tshark as well.
var encapsulations = []struct {
	name  string
	encap func(inner []gopacket.SerializableLayer) []gopacket.SerializableLayer
	// fragment, v6ext, v6: the script's IP options.
	fragment  int
	v6ext, v6 bool
}{
	{"802.1Q QinQ", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return append([]gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 42, Type: ethOf(in).EthernetType}}, in...)
	}, 0, false, false},
	{"MPLS", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast},
			&layers.MPLS{Label: 1000, TTL: 64}, &layers.MPLS{Label: 2000, StackBottom: true, TTL: 64}}, in...)
	}, 0, false, false},
	{"PPPoE", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypePPPoESession},
			&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 7}, &layers.PPP{PPPType: layers.PPPTypeIPv4}}, in...)
	}, 0, false, false},
	{"GRE", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overIP(layers.IPProtocolGRE, append([]gopacket.SerializableLayer{&layers.GRE{Protocol: greProto(in)}}, in...)...)
	}, 0, false, false},
	{"Ethernet over GRE", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overIP(layers.IPProtocolGRE, append([]gopacket.SerializableLayer{&layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging}, ethOf(in)}, in...)...)
	}, 0, false, false},
	{"VXLAN", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overUDP(4789, append([]gopacket.SerializableLayer{&layers.VXLAN{ValidIDFlag: true, VNI: 5001}, ethOf(in)}, in...)...)
	}, 0, false, false},
	{"Geneve", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overUDP(6081, append([]gopacket.SerializableLayer{&layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: 77}, ethOf(in)}, in...)...)
	}, 0, false, false},
	{"GTP-U", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overUDP(2152, append([]gopacket.SerializableLayer{&layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 255, TEID: 0x1234}}, in...)...)
	}, 0, false, false},
	{"IP in IP", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overIP(layers.IPProtocolIPv4, in...)
	}, 0, false, false},
	{"IPv4 fragments", nil, 512, false, false},
	{"IPv6 extension headers", nil, 0, true, true},
	{"IPv6 fragments after a hop-by-hop header", nil, 512, true, true},
	{"IPv4 fragments inside VXLAN", func(in []gopacket.SerializableLayer) []gopacket.SerializableLayer {
		return overUDP(4789, append([]gopacket.SerializableLayer{&layers.VXLAN{ValidIDFlag: true, VNI: 5001}, ethOf(in)}, in...)...)
	}, 600, false, false},
}

// TestEncapsulations: a recorded handshake carried in each encapsulation
// is read as it is without one, in the same frames, and as tshark reads
// it.
func TestEncapsulations(t *testing.T) {
	tr := readTranscript(t, "tls12-260ca-curl-cert")
	plain := map[bool]*tcpScript{}
	for _, v6 := range []bool{false, true} {
		s := newScript(t)
		cl, srv := "10.0.0.1:40000", "10.0.0.2:443"
		if v6 {
			cl, srv = "[2001:db8::1]:40000", "[2001:db8::2]:443"
		}
		c := s.conn(cl, srv, 1000, 5000)
		c.open()
		c.replay(tr.Chunks)
		c.close()
		plain[v6] = s
	}
	for _, tc := range encapsulations {
		t.Run(tc.name, func(t *testing.T) {
			want, _ := analyzeFile(t, plain[tc.v6].write(), Options{})
			s := newScript(t)
			s.encap, s.fragment, s.v6ext = tc.encap, tc.fragment, tc.v6ext
			cl, srv := "10.0.0.1:40000", "10.0.0.2:443"
			if tc.v6 {
				cl, srv = "[2001:db8::1]:40000", "[2001:db8::2]:443"
			}
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(tr.Chunks)
			c.close()
			path := s.write()
			evs, st := analyzeFile(t, path, Options{})
			if len(evs) != 2 || evs[0].Handshake == nil || want[0].Handshake == nil {
				t.Fatalf("events: %s", jsonOf(t, evs))
			}
			g, w := *evs[0].Handshake, *want[0].Handshake
			g.ConnID, w.ConnID = "", ""
			if tc.fragment == 0 {
				if *g.PCAP.Frames != *w.PCAP.Frames {
					t.Errorf("frames %+v, want %+v", g.PCAP.Frames, w.PCAP.Frames)
				}
			}
			g.PCAP, w.PCAP = nil, nil
			if a, b := jsonOf(t, &g), jsonOf(t, &w); a != b {
				t.Errorf("handshake:\n%s\nwant\n%s", a, b)
			}
			if tc.fragment > 0 && (st.Fragments == 0 || st.FragmentsLost != 0) {
				t.Errorf("%d fragments, %d lost", st.Fragments, st.FragmentsLost)
			}
			if n := matchTshark(t, path, evs, st); n != 1 {
				t.Errorf("tshark shows %d CertificateRequests", n)
			}
		})
	}
}

// TestPPPoEShortLength: a PPPoE session header whose length leaves no room
// for PPP's protocol field is not read past its length (into padding that
// may look like IPv4's 0x0021).
func TestPPPoEShortLength(t *testing.T) {
	for _, n := range []byte{0, 1} {
		b := []byte{0x11, 0x00, 0x00, 0x07, 0x00, n, 0x00, 0x21, 0x45, 0, 0, 0}
		if typ, _ := pppoePayload(b); typ != gopacket.LayerTypeZero {
			t.Errorf("length %d: %v, want nothing", n, typ)
		}
	}
	b := []byte{0x11, 0x00, 0x00, 0x07, 0x00, 6, 0x00, 0x21, 0x45, 0, 0, 0}
	if typ, rest := pppoePayload(b); typ != layers.LayerTypeIPv4 || len(rest) != 4 {
		t.Errorf("length 6: %v %d bytes, want IPv4 with 4", typ, len(rest))
	}
}
