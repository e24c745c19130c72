package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// toPcapng rewrites a pcap as pcapng, for seeds of the other format.
func toPcapng(tb testing.TB, pcap []byte) []byte {
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		if err := w.WritePacket(ci, data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// FuzzAnalyze feeds arbitrary bytes to the whole capture path: format
// detection, the readers, link and IP decoding, reassembly, the plaintext
// prologues (STARTTLS, databases, proxies), framing and the parser. Nothing may panic, and input that cannot be read must end in
// a *ReadError that names the file and an offset inside the input.
func FuzzAnalyze(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(transcriptDir, "*.pcap"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		if strings.Contains(p, "3ca-curl-nocert") || strings.Contains(p, "renegotiation") {
			f.Add(toPcapng(f, data))
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(data)
			zw.Close()
			f.Add(gz.Bytes())
			f.Add(data[:len(data)/2])
		}
	}
	// TLS after plaintext: every prologue the analyzer recognises, and the
	// content fallback's.
	tr := readTranscript(f, "tls12-3ca-curl-nocert")
	for _, tc := range prologueCases {
		s := newScript(f)
		prologueScript(s, 40001, tc.port, tc.turns, tr)
		f.Add(s.pcap())
	}
	// A session opened with an SSLv2-format ClientHello.
	s := newScript(f)
	c := s.conn("10.1.0.1:40000", "10.1.0.2:443", 1000, 5000)
	c.open()
	c.send(true, sslv2HelloFor(0xc02c))
	c.replay(tr.Chunks[1:])
	f.Add(s.pcap())
	f.Fuzz(func(t *testing.T, data []byte) {
		events := 0
		_, err := analyze(t, bytes.NewReader(data), Options{Name: "fuzz.pcap", WatchRenegotiation: true}, func(e Event) {
			events++
			if (e.Handshake == nil) == (e.Closed == nil) {
				t.Fatalf("event with neither or both: %+v", e)
			}
		})
		if err == nil {
			return
		}
		var re *ReadError
		if !errors.As(err, &re) {
			t.Fatalf("error %v is not a *ReadError", err)
		}
		if re.Offset < 0 || (!re.Compressed && re.Offset > int64(len(data))) {
			t.Fatalf("offset %d outside the %d bytes of input: %v", re.Offset, len(data), err)
		}
		if !strings.HasPrefix(err.Error(), "fuzz.pcap: byte ") {
			t.Fatalf("error %q does not name the file and offset first", err)
		}
	})
}
