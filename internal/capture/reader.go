package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ReadError is a capture file certlens cannot read on: not a capture, or
// damaged at Offset. Everything before it was analysed.
type ReadError struct {
	File string
	// Offset is the byte offset of the damaged part: of the file, or of
	// the decompressed data when the file is gzip-compressed.
	Offset     int64
	Compressed bool
	// Frame is the number of the last frame read whole, 0 if none.
	Frame int
	Err   error
}

func (e *ReadError) Error() string {
	where := fmt.Sprintf("byte %d", e.Offset)
	if e.Compressed {
		where += " of the decompressed data"
	}
	after := ""
	if e.Frame > 0 {
		after = fmt.Sprintf(", after frame %d", e.Frame)
	}
	return fmt.Sprintf("%s: %s%s: %v", e.File, where, after, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// Magic numbers of the formats read (first four bytes of the file).
var (
	magicPcapng = []byte{0x0a, 0x0d, 0x0d, 0x0a}
	magicGzip   = []byte{0x1f, 0x8b}
)

// readBufferSize is the read-ahead of the file: large reads keep the
// reader's share of the time small on multi-gigabyte files.
const readBufferSize = 256 << 10

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// packet is one frame of the capture. data is only valid until the next
// call to next.
type packet struct {
	frame int // Wireshark's frame.number, from 1
	ci    gopacket.CaptureInfo
	data  []byte
	link  layers.LinkType
}

// source reads the packets of one capture, tracking the offset each packet
// record starts at, so that damage can be reported where it is.
type source struct {
	name       string
	compressed bool
	cr         *countingReader
	br         *bufio.Reader
	pcap       *pcapReader
	ng         *pcapgo.NgReader
	link       layers.LinkType
	frame      int
	start      int64 // offset of the record being read
}

// openSource detects the format from the magic number: pcap (either byte
// order, either timestamp resolution, modified), pcapng, either of them
// gzip-compressed.
func openSource(name string, r io.Reader) (s *source, err error) {
	s = &source{name: name}
	fail := func(err error) (*source, error) { return nil, s.errorf(err) }
	s.cr = &countingReader{r: r}
	s.br = bufio.NewReaderSize(s.cr, readBufferSize)
	head, err := s.br.Peek(4)
	if len(head) >= 2 && bytes.Equal(head[:2], magicGzip) {
		// Decompress here rather than let pcapgo do it, so that offsets
		// count what the format readers consumed.
		gz, gerr := gzip.NewReader(s.br)
		if gerr != nil {
			return fail(fmt.Errorf("gzip: %w", gerr))
		}
		s.compressed = true
		s.cr = &countingReader{r: gz}
		s.br = bufio.NewReaderSize(s.cr, readBufferSize)
		head, err = s.br.Peek(4)
	}
	if len(head) < 4 {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%d bytes: too short for a capture file", len(head))
		}
		return fail(err)
	}
	// pcapgo panics nowhere we know of, but a malformed file must end in an
	// error with its offset, never in a crash of the whole run.
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, s.errorf(fmt.Errorf("malformed file header (reader panic: %v)", p))
		}
	}()
	switch {
	case bytes.Equal(head, magicPcapng):
		// Mixed link types: a pcapng may hold several interfaces (tshark -i
		// lo -i eth0), each with its own link type; every packet counts as
		// a frame, as in Wireshark.
		s.ng, err = pcapgo.NewNgReader(s.br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return fail(fmt.Errorf("pcapng section header: %w", eofIsTruncation(err)))
		}
	case isPcapMagic(head):
		s.pcap, err = newPcapReader(s.br)
		if err != nil {
			return fail(fmt.Errorf("pcap file header: %w", eofIsTruncation(err)))
		}
		s.link = s.pcap.link
	default:
		return fail(fmt.Errorf("not a pcap or pcapng file (it starts with %x); a Windows netsh trace or pktmon .etl file must be converted first (pktmon etl2pcap, or etl2pcapng)", head))
	}
	return s, nil
}

func isPcapMagic(head []byte) bool {
	for _, m := range pcapMagics {
		if bytes.Equal(head, m) {
			return true
		}
	}
	return false
}

// offset is how far the format reader has consumed the (decompressed) data.
func (s *source) offset() int64 { return s.cr.n - int64(s.br.Buffered()) }

func (s *source) errorf(err error) *ReadError {
	return &ReadError{File: s.name, Offset: s.start, Compressed: s.compressed, Frame: s.frame, Err: err}
}

// next returns the next packet, io.EOF at the clean end of the file, or a
// *ReadError.
func (s *source) next() (p packet, err error) {
	s.start = s.offset()
	defer func() {
		if r := recover(); r != nil {
			err = s.errorf(fmt.Errorf("malformed packet record (reader panic: %v)", r))
		}
	}()
	var data []byte
	var ci gopacket.CaptureInfo
	link := s.link
	if s.ng != nil {
		data, ci, err = s.ng.ZeroCopyReadPacketData()
		if err == nil && len(ci.AncillaryData) > 0 {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				link = lt
			}
		}
	} else {
		data, ci, err = s.pcap.next()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return p, io.EOF
		}
		return p, s.errorf(eofIsTruncation(err))
	}
	s.frame++
	return packet{frame: s.frame, ci: ci, data: data, link: link}, nil
}

// eofIsTruncation words an unexpected end of file for the user: captures
// cut short (a killed tcpdump, a partial copy) are the common cause.
func eofIsTruncation(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the file ends inside this record (truncated capture)")
	}
	return err
}
