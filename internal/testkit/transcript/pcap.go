package transcript

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The synthetic connection. Port 443 makes Wireshark pick its TLS dissector
// without "Decode As"; fixed ISNs and timestamps make the export
// reproducible byte for byte.
const (
	pcapClientPort = 40000
	pcapServerPort = 443
	pcapClientISN  = 1000000
	pcapServerISN  = 2000000
	pcapMSS        = 1460
	pcapWindow     = 65535
	// pcapAckEvery is how many segments a receiver lets through before it
	// ACKs, so no burst (a 60 KB issuer list) outruns the advertised window
	// and tshark reports no window problems.
	pcapAckEvery = 20
	pcapTick     = 100 * time.Microsecond
)

var (
	pcapClientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	pcapServerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	pcapLoopback  = net.IPv4(127, 0, 0, 1).To4()
	// pcapEpoch stands in for a missing recording date.
	pcapEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

type pcapSide struct {
	mac  net.HardwareAddr
	port layers.TCPPort
	seq  uint32 // next sequence number this side sends
	ipID uint16
}

type pcapWriter struct {
	w      *pcapgo.Writer
	now    time.Time
	client pcapSide
	server pcapSide
	buf    gopacket.SerializeBuffer
}

// WritePcap writes t as a classic pcap (Ethernet, IPv4, TCP) of one
// connection from 127.0.0.1:40000 to 127.0.0.1:443: three-way handshake,
// each chunk in segments of at most 1460 bytes with correct sequence and
// acknowledgement numbers and checksums, then FIN from both sides.
func (t *Transcript) WritePcap(w io.Writer) error {
	pw := &pcapWriter{
		w:      pcapgo.NewWriter(w),
		now:    t.Meta.Date,
		client: pcapSide{mac: pcapClientMAC, port: pcapClientPort, seq: pcapClientISN},
		server: pcapSide{mac: pcapServerMAC, port: pcapServerPort, seq: pcapServerISN},
		buf:    gopacket.NewSerializeBuffer(),
	}
	if pw.now.IsZero() {
		pw.now = pcapEpoch
	}
	if err := pw.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	c, s := &pw.client, &pw.server
	connect := []control{
		{c, s, tcpFlags{syn: true}},
		{s, c, tcpFlags{syn: true, ack: true}},
		{c, s, tcpFlags{ack: true}},
	}
	if err := pw.controls(connect); err != nil {
		return err
	}
	for i, ch := range t.Chunks {
		from, to := c, s
		if ch.Dir == ServerToClient {
			from, to = s, c
		}
		if err := pw.chunk(from, to, ch.Data); err != nil {
			return fmt.Errorf("pcap chunk %d: %w", i, err)
		}
	}
	return pw.controls([]control{
		{c, s, tcpFlags{fin: true, ack: true}},
		{s, c, tcpFlags{fin: true, ack: true}},
		{c, s, tcpFlags{ack: true}},
	})
}

// control is a segment without payload.
type control struct {
	from, to *pcapSide
	flags    tcpFlags
}

func (pw *pcapWriter) controls(cs []control) error {
	for _, c := range cs {
		if err := pw.segment(c.from, c.to, c.flags, nil); err != nil {
			return err
		}
	}
	return nil
}

// chunk sends data from one side in MSS-sized segments, PSH on the last,
// with the receiver's ACKs interleaved as a real stack would.
func (pw *pcapWriter) chunk(from, to *pcapSide, data []byte) error {
	for n := 1; len(data) > 0; n++ {
		seg := data[:min(len(data), pcapMSS)]
		data = data[len(seg):]
		if err := pw.segment(from, to, tcpFlags{ack: true, psh: len(data) == 0}, seg); err != nil {
			return err
		}
		if len(data) == 0 || n%pcapAckEvery == 0 {
			if err := pw.segment(to, from, tcpFlags{ack: true}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

type tcpFlags struct{ syn, ack, psh, fin bool }

func (pw *pcapWriter) segment(from, to *pcapSide, f tcpFlags, payload []byte) error {
	eth := &layers.Ethernet{SrcMAC: from.mac, DstMAC: to.mac, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TTL: 64, Id: from.ipID,
		Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: pcapLoopback, DstIP: pcapLoopback,
	}
	tcp := &layers.TCP{
		SrcPort: from.port, DstPort: to.port,
		Seq: from.seq, SYN: f.syn, ACK: f.ack, PSH: f.psh, FIN: f.fin,
		Window: pcapWindow,
	}
	if f.ack {
		tcp.Ack = to.seq
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(pw.buf, opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		return fmt.Errorf("serialize segment: %w", err)
	}
	data := pw.buf.Bytes()
	ci := gopacket.CaptureInfo{Timestamp: pw.now, CaptureLength: len(data), Length: len(data)}
	if err := pw.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	pw.now = pw.now.Add(pcapTick)
	from.ipID++
	from.seq += uint32(len(payload))
	if f.syn || f.fin {
		// SYN and FIN each take one sequence number.
		from.seq++
	}
	return nil
}
