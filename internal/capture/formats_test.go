package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapVariant writes frames as a classic pcap of the given byte order,
// magic, version and record layout.
type pcapVariant struct {
	order       binary.ByteOrder
	magic       uint32
	minor       uint16
	nano        bool
	extra       int  // modified pcap: 8 more bytes per record header
	swapLengths bool // old libpcap: caplen and len written the other way round
}

func (v pcapVariant) write(t *testing.T, link layers.LinkType, frames []scriptFrame) []byte {
	var b bytes.Buffer
	h := make([]byte, 24)
	v.order.PutUint32(h[0:], v.magic)
	v.order.PutUint16(h[4:], 2)
	v.order.PutUint16(h[6:], v.minor)
	v.order.PutUint32(h[16:], 262144)
	v.order.PutUint32(h[20:], uint32(link))
	b.Write(h)
	for _, f := range frames {
		r := make([]byte, 16+v.extra)
		v.order.PutUint32(r[0:], uint32(f.ci.Timestamp.Unix()))
		frac := uint32(f.ci.Timestamp.Nanosecond() / 1000)
		if v.nano {
			frac = uint32(f.ci.Timestamp.Nanosecond())
		}
		v.order.PutUint32(r[4:], frac)
		caplen, length := uint32(len(f.data)), uint32(len(f.data))
		if v.swapLengths {
			// A frame whose 4-byte FCS was not captured, its lengths
			// written the other way round.
			caplen, length = length+4, caplen
		}
		v.order.PutUint32(r[8:], caplen)
		v.order.PutUint32(r[12:], length)
		b.Write(r)
		b.Write(f.data)
	}
	return b.Bytes()
}

// TestPcapVariants: the classic pcap variants Wireshark reads give the
// same events as the usual file, and tshark reads each one the same way.
func TestPcapVariants(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-nocert")
	s := newScript(t)
	s.now = s.now.Add(123456789) // nanoseconds that microseconds round away
	c := s.conn("10.0.0.1:40000", "10.0.0.2:443", 1000, 5000)
	c.open()
	c.replay(tr.Chunks)
	c.close()
	want, _ := analyzeFile(t, s.write(), Options{Name: "x.pcap"})
	for name, v := range map[string]pcapVariant{
		"big-endian (byte-swapped) microseconds":      {order: binary.BigEndian, magic: pcapMagicMicro, minor: 4},
		"nanoseconds":                                 {order: binary.LittleEndian, magic: pcapMagicNano, minor: 4, nano: true},
		"big-endian nanoseconds":                      {order: binary.BigEndian, magic: pcapMagicNano, minor: 4, nano: true},
		"version 2.1":                                 {order: binary.LittleEndian, magic: pcapMagicMicro, minor: 1},
		"version 2.2 with caplen and len swapped":     {order: binary.LittleEndian, magic: pcapMagicMicro, minor: 2, swapLengths: true},
		"modified pcap (Kuznetzov), 8-byte extension": {order: binary.LittleEndian, magic: pcapMagicModified, minor: 4, extra: 8},
	} {
		t.Run(name, func(t *testing.T) {
			data := v.write(t, layers.LinkTypeEthernet, s.frames)
			path := filepath.Join(t.TempDir(), "variant.pcap")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, st := analyzeFile(t, path, Options{Name: "x.pcap"})
			if len(got) != len(want) || st.Frames != len(s.frames) {
				t.Fatalf("%d events from %d frames, want %d from %d", len(got), st.Frames, len(want), len(s.frames))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Closed != nil && v.swapLengths {
					// The frames were cut short of their FCS: noted.
					gc := *g.Closed
					gc.Errors = nil
					g.Closed = &gc
				}
				if a, b := jsonOf(t, g.Handshake)+jsonOf(t, g.Closed), jsonOf(t, w.Handshake)+jsonOf(t, w.Closed); a != b {
					t.Errorf("event %d:\n%s\nwant\n%s", i, a, b)
				}
			}
			if sub := got[0].Time.Nanosecond() % 1000; v.nano != (sub != 0) {
				t.Errorf("timestamps read as %v (nanoseconds %v)", got[0].Time, v.nano)
			}
			if v.swapLengths {
				return // tshark's reading of swapped lengths is its own heuristic
			}
			if n := matchTshark(t, path, got, st); n != 1 {
				t.Errorf("tshark shows %d CertificateRequests", n)
			}
		})
	}
}

// TestPcapngInterfaces: a pcapng of several interfaces with different
// link types (tshark -i eth0 -i lo, or mergecap of an Ethernet and a raw
// IP capture) is read frame by frame with each interface's link type.
func TestPcapngInterfaces(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-cert")
	eth := newScript(t)
	c := eth.conn("10.0.0.1:40000", "10.0.0.2:443", 1000, 5000)
	c.open()
	c.replay(tr.Chunks)
	c.close()
	raw := newScript(t)
	raw.now = eth.now.Add(-eth.now.Sub(newScript(t).now) / 2)
	c = raw.conn("10.0.0.3:40001", "10.0.0.4:443", 7000, 9000)
	c.open()
	c.replay(tr.Chunks)
	c.close()
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	rawIdx, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 262144})
	if err != nil {
		t.Fatal(err)
	}
	sllIdx, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeLinuxSLL, SnapLength: 262144})
	if err != nil {
		t.Fatal(err)
	}
	// Interleave the two connections in time order: the second one over
	// raw IP (without Ethernet) and, every other frame, Linux cooked.
	i, j := 0, 0
	for i < len(eth.frames) || j < len(raw.frames) {
		if j >= len(raw.frames) || i < len(eth.frames) && !raw.frames[j].ci.Timestamp.Before(eth.frames[i].ci.Timestamp) {
			if err := w.WritePacket(eth.frames[i].ci, eth.frames[i].data); err != nil {
				t.Fatal(err)
			}
			i++
			continue
		}
		f := raw.frames[j]
		ci, data := f.ci, f.data[14:]
		ci.InterfaceIndex = rawIdx
		if j%2 == 1 {
			sll := make([]byte, 16, 16+len(data))
			binary.BigEndian.PutUint16(sll[0:], 0) // to us
			binary.BigEndian.PutUint16(sll[2:], 1) // ARPHRD_ETHER
			binary.BigEndian.PutUint16(sll[4:], 6) // address length
			binary.BigEndian.PutUint16(sll[14:], 0x0800)
			data = append(sll, data...)
			ci.InterfaceIndex = sllIdx
		}
		ci.CaptureLength, ci.Length = len(data), len(data)
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		j++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "interfaces.pcapng")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, st := analyzeFile(t, path, Options{})
	hs := 0
	for _, e := range evs {
		if e.Handshake != nil {
			hs++
			if e.Handshake.Verdict != "ok" {
				t.Errorf("handshake: %s", jsonOf(t, e.Handshake))
			}
		}
	}
	if hs != 2 || st.UnknownLink != 0 {
		t.Errorf("%d handshakes, %d frames of unknown link types", hs, st.UnknownLink)
	}
	if n := matchTshark(t, path, evs, st); n != 2 {
		t.Errorf("tshark shows %d CertificateRequests", n)
	}
}
