package capture

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/internal/testkit/transcript"
)

// tcpScript writes a capture packet by packet with gopacket's serializer,
// with every TCP field under the test's control: the TCP damage and
// oddities real captures hold (port reuse, resets, retransmitted SYNs,
// clocks that jump, one side missing) are written exactly, and tshark
// reads the same file.
type tcpScript struct {
	t      testing.TB
	now    time.Time
	frames []scriptFrame
	// encap wraps a packet's IP layer and what follows in the link and
	// tunnel layers of the capture; nil is Ethernet.
	encap func(ip []gopacket.SerializableLayer) []gopacket.SerializableLayer
	link  layers.LinkType
	// fragment, when not 0, splits IP packets into fragments of at most
	// this many bytes of payload; v6ext puts extension headers in IPv6.
	fragment int
	v6ext    bool
}

type scriptFrame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// tick is the capture time between two packets of a script.
const tick = 100 * time.Microsecond

func newScript(t testing.TB) *tcpScript {
	// The day the transcripts were recorded: their certificates are valid.
	return &tcpScript{t: t, now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), link: layers.LinkTypeEthernet}
}

// sleep advances the capture clock (it may go back, as clocks do).
func (s *tcpScript) sleep(d time.Duration) { s.now = s.now.Add(d) }

// peer is one endpoint of a scripted connection.
type peer struct {
	addr netip.AddrPort
	mac  net.HardwareAddr
	seq  uint32 // next sequence number it sends
	ipID uint16
}

// scriptConn is one TCP connection of a script.
type scriptConn struct {
	s              *tcpScript
	client, server *peer
	// hide leaves the segments of one side out of the capture (a tap
	// that saw one direction, a capture that started late), sequence
	// numbers advancing all the same.
	hideClient, hideServer bool
}

// conn starts a connection between two "addr:port" endpoints with the
// given initial sequence numbers; nothing is written until open or send.
func (s *tcpScript) conn(client, server string, clientISN, serverISN uint32) *scriptConn {
	mk := func(a string, mac byte, isn uint32) *peer {
		return &peer{addr: netip.MustParseAddrPort(a), mac: net.HardwareAddr{2, 0, 0, 0, 0, mac}, seq: isn}
	}
	return &scriptConn{s: s, client: mk(client, 1, clientISN), server: mk(server, 2, serverISN)}
}

type flags struct{ syn, ack, psh, fin, rst bool }

// open writes the three-way handshake.
func (c *scriptConn) open() {
	c.segment(true, flags{syn: true}, nil)
	c.segment(false, flags{syn: true, ack: true}, nil)
	c.segment(true, flags{ack: true}, nil)
}

// send writes data from one side in segments of at most 1460 bytes, and
// the other side's ACK of the last.
func (c *scriptConn) send(fromClient bool, data []byte) {
	for len(data) > 0 {
		seg := data[:min(len(data), 1460)]
		data = data[len(seg):]
		c.segment(fromClient, flags{ack: true, psh: len(data) == 0}, seg)
	}
	c.segment(!fromClient, flags{ack: true}, nil)
}

// replay sends a transcript's chunks, in order.
func (c *scriptConn) replay(chunks []transcript.Chunk) {
	for _, ch := range chunks {
		c.send(ch.Dir == transcript.ClientToServer, ch.Data)
	}
}

// close writes FIN from the client, FIN from the server, the last ACK.
func (c *scriptConn) close() {
	c.segment(true, flags{fin: true, ack: true}, nil)
	c.segment(false, flags{fin: true, ack: true}, nil)
	c.segment(true, flags{ack: true}, nil)
}

// reset writes a RST from one side.
func (c *scriptConn) reset(fromClient bool) { c.segment(fromClient, flags{rst: true, ack: true}, nil) }

// segment writes one TCP segment: sequence numbers advance as the stack's
// would.
func (c *scriptConn) segment(fromClient bool, f flags, payload []byte) {
	from, to := c.server, c.client
	if fromClient {
		from, to = c.client, c.server
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(from.addr.Port()), DstPort: layers.TCPPort(to.addr.Port()),
		Seq: from.seq, SYN: f.syn, ACK: f.ack, PSH: f.psh, FIN: f.fin, RST: f.rst, Window: 65535,
	}
	if f.ack {
		tcp.Ack = to.seq
	}
	if !(fromClient && c.hideClient || !fromClient && c.hideServer) {
		c.s.packet(from, to, tcp, payload)
	}
	from.seq += uint32(len(payload))
	if f.syn || f.fin {
		from.seq++
	}
}

// packet serializes one TCP segment over IP (and c.s.encap) and adds it:
// one frame, or one per fragment.
func (s *tcpScript) packet(from, to *peer, tcp *layers.TCP, payload []byte) {
	var nl gopacket.NetworkLayer
	v4 := from.addr.Addr().Is4()
	ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: from.ipID, Flags: layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP, SrcIP: from.addr.Addr().AsSlice(), DstIP: to.addr.Addr().AsSlice()}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: from.addr.Addr().AsSlice(), DstIP: to.addr.Addr().AsSlice()}
	nl = ip6
	if v4 {
		nl = ip4
	}
	from.ipID++
	if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
		s.t.Fatal(err)
	}
	var ips [][]gopacket.SerializableLayer
	switch {
	case s.fragment > 0 && len(payload)+20 > s.fragment || !v4 && s.v6ext:
		ips = s.rawIP(ip4, ip6, v4, s.serialize(tcp, gopacket.Payload(payload)), uint32(from.ipID))
	case v4:
		ips = [][]gopacket.SerializableLayer{{ip4, tcp, gopacket.Payload(payload)}}
	default:
		ips = [][]gopacket.SerializableLayer{{ip6, tcp, gopacket.Payload(payload)}}
	}
	for _, inner := range ips {
		if s.encap != nil {
			s.raw(s.encap(inner)...)
			continue
		}
		et := layers.EthernetTypeIPv4
		if !v4 {
			et = layers.EthernetTypeIPv6
		}
		s.raw(append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: from.mac, DstMAC: to.mac, EthernetType: et}}, inner...)...)
	}
}

// serialize returns the bytes of layers.
func (s *tcpScript) serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		s.t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// rawIP carries the TCP segment's bytes in IP packets written by hand:
// IPv4 or IPv6 fragments of at most s.fragment bytes of payload, and with
// s.v6ext, IPv6 hop-by-hop and destination options headers first.
func (s *tcpScript) rawIP(ip4 *layers.IPv4, ip6 *layers.IPv6, v4 bool, seg []byte, id uint32) [][]gopacket.SerializableLayer {
	var ext []byte
	next := byte(layers.IPProtocolTCP)
	if !v4 && s.v6ext {
		// Hop-by-hop (a PadN option) then destination options, each 8 bytes.
		ext = []byte{60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0}
		next = 0
	}
	size := len(seg)
	if s.fragment > 0 {
		size = s.fragment &^ 7
	}
	var out [][]gopacket.SerializableLayer
	for off := 0; off < len(seg); off += size {
		piece := seg[off:min(off+size, len(seg))]
		more := off+size < len(seg)
		if v4 {
			h := *ip4
			h.Flags = 0
			if more {
				h.Flags = layers.IPv4MoreFragments
			}
			h.FragOffset = uint16(off / 8)
			out = append(out, []gopacket.SerializableLayer{&h, gopacket.Payload(piece)})
			continue
		}
		h := *ip6
		body := ext
		h.NextHeader = layers.IPProtocol(next)
		if len(piece) < len(seg) {
			fo := uint16(off)
			if more {
				fo |= 1
			}
			fh := []byte{byte(layers.IPProtocolTCP), 0, byte(fo >> 8), byte(fo), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
			if len(ext) > 0 {
				// The fragment header follows the hop-by-hop header.
				body = append([]byte{44, 0, 1, 4, 0, 0, 0, 0}, fh...)
			} else {
				body = fh
				h.NextHeader = 44
			}
		}
		out = append(out, []gopacket.SerializableLayer{&h, gopacket.Payload(append(append([]byte(nil), body...), piece...))})
	}
	return out
}

// raw serializes layers as one frame.
func (s *tcpScript) raw(ls ...gopacket.SerializableLayer) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		s.t.Fatal(err)
	}
	data := append([]byte(nil), buf.Bytes()...)
	s.frames = append(s.frames, scriptFrame{gopacket.CaptureInfo{Timestamp: s.now, CaptureLength: len(data), Length: len(data)}, data})
	s.now = s.now.Add(tick)
}

// pcap returns the script as a classic pcap file.
func (s *tcpScript) pcap() []byte {
	var out bytes.Buffer
	w := pcapgo.NewWriter(&out)
	if err := w.WriteFileHeader(262144, s.link); err != nil {
		s.t.Fatal(err)
	}
	for _, f := range s.frames {
		if err := w.WritePacket(f.ci, f.data); err != nil {
			s.t.Fatal(err)
		}
	}
	return out.Bytes()
}

// write writes the script as a pcap in the test's temp dir.
func (s *tcpScript) write() string {
	path := filepath.Join(s.t.TempDir(), "script.pcap")
	if err := os.WriteFile(path, s.pcap(), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// readTranscript reads a recorded transcript by name.
func readTranscript(t testing.TB, name string) *transcript.Transcript {
	tr, err := transcript.ReadFile(filepath.Join(transcriptDir, name+".transcript"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
