package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// pcapReader reads the classic pcap format in all the variants Wireshark
// reads: either byte order, microsecond or nanosecond timestamps, any
// version 2 minor number (2.0 to 2.3 files of old libpcaps, whose caplen
// and len may be swapped), and the "modified" pcap of Alexey Kuznetzov's
// patched libpcap (8 more bytes per record header). gopacket's reader
// takes 2.4 only.
type pcapReader struct {
	r         *bufio.Reader
	order     binary.ByteOrder
	nano      bool
	extra     int  // record header bytes past the standard 16
	maySwap   bool // version 2.3 or older: caplen and len may be swapped
	link      layers.LinkType
	hdr       [24]byte
	buf       []byte
	maxRecord uint32
}

// Magic numbers as read little-endian.
const (
	pcapMagicMicro    = 0xa1b2c3d4
	pcapMagicNano     = 0xa1b23c4d
	pcapMagicModified = 0xa1b2cd34
)

// pcapMagics are the first four bytes of the classic formats read.
var pcapMagics = [][]byte{
	{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, // microseconds, little and big endian
	{0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, // nanoseconds
	{0x34, 0xcd, 0xb2, 0xa1}, {0xa1, 0xb2, 0xcd, 0x34}, // modified (Kuznetzov)
}

// maxPcapRecord bounds a record's capture length: larger is damage, not a
// packet (Wireshark's own limit is 256 KiB for most link types).
const maxPcapRecord = 16 << 20

func newPcapReader(r *bufio.Reader) (*pcapReader, error) {
	p := &pcapReader{r: r, maxRecord: maxPcapRecord}
	if _, err := io.ReadFull(r, p.hdr[:24]); err != nil {
		return nil, err
	}
	p.order = binary.LittleEndian
	magic := p.order.Uint32(p.hdr[0:4])
	if magic>>16 != 0xa1b2 {
		p.order = binary.BigEndian
		magic = p.order.Uint32(p.hdr[0:4])
	}
	switch magic {
	case pcapMagicMicro:
	case pcapMagicNano:
		p.nano = true
	case pcapMagicModified:
		p.extra = 8
	default:
		return nil, fmt.Errorf("unknown pcap magic %x", p.hdr[0:4])
	}
	major, minor := p.order.Uint16(p.hdr[4:6]), p.order.Uint16(p.hdr[6:8])
	if major != 2 {
		return nil, fmt.Errorf("pcap version %d.%d: only version 2 exists", major, minor)
	}
	p.maySwap = minor < 3
	// The low 16 bits are the link type; the high ones carry FCS flags.
	p.link = layers.LinkType(p.order.Uint32(p.hdr[20:24]) & 0xffff)
	return p, nil
}

// next returns the next record's data (valid until the next call) and
// capture info; io.EOF at the clean end of the file.
func (p *pcapReader) next() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	h := p.hdr[:16+p.extra]
	if _, err := io.ReadFull(p.r, h); err != nil {
		if err == io.EOF {
			return nil, ci, io.EOF
		}
		return nil, ci, io.ErrUnexpectedEOF
	}
	sec, frac := p.order.Uint32(h[0:4]), p.order.Uint32(h[4:8])
	caplen, length := p.order.Uint32(h[8:12]), p.order.Uint32(h[12:16])
	if p.maySwap && caplen > length {
		caplen, length = length, caplen
	}
	if caplen > p.maxRecord {
		return nil, ci, fmt.Errorf("capture length %d is larger than any packet (%d bytes at most)", caplen, p.maxRecord)
	}
	ns := int64(frac)
	if !p.nano {
		ns *= 1000
	}
	ci.Timestamp = time.Unix(int64(sec), ns).UTC()
	ci.CaptureLength, ci.Length = int(caplen), int(length)
	if cap(p.buf) < int(caplen) {
		p.buf = make([]byte, caplen)
	}
	p.buf = p.buf[:caplen]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		return nil, ci, io.ErrUnexpectedEOF
	}
	return p.buf, ci, nil
}
