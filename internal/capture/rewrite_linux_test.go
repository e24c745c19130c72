package capture

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// frameRec is one recorded frame with what the rewrites need of it.
type frameRec struct {
	ci      gopacket.CaptureInfo
	data    []byte // Ethernet frame
	fromSrv bool
	syn     bool
	seq     uint32
	payload int
}

// smallMSSServer serves HTTPS on 127.0.0.1 with a TCP maximum segment size
// of mss, so that on loopback (MTU 64 KiB) the 60 KB issuer list still
// spreads over many segments, as on a real network: segment-level damage
// then hits the middle of a CertificateRequest.
func smallMSSServer(t *testing.T, cert tls.Certificate, cas *x509.CertPool, mss int, body []byte) int {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss) })
		if err != nil {
			return err
		}
		return serr
	}}
	inner, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := smallWritesListener{inner, mss}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: cas,
			MaxVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// smallWritesListener's connections write at most n bytes per system call:
// loopback's segmentation offload would otherwise show large writes as
// single 64 KB "segments" in the capture, whatever the MSS.
type smallWritesListener struct {
	net.Listener
	n int
}

func (l smallWritesListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return smallWritesConn{c, l.n}, err
}

type smallWritesConn struct {
	net.Conn
	n int
}

func (c smallWritesConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n, err := c.Conn.Write(b[:min(len(b), c.n)])
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// recordForRewrite captures one curl request (TLS 1.2, a 261-name issuer
// list, a client certificate, a 40 KB answer) and returns its frames.
func recordForRewrite(t *testing.T) (frames []frameRec, port int, cas []*pkitest.Cert) {
	for _, bin := range []string{"curl", "tshark"} {
		peertest.Require(t, bin)
	}
	pki := newLivePKI(t)
	cas = pki.cas(261)
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	body := []byte(strings.Repeat("certlens application data ", 1600))
	port = smallMSSServer(t, pki.server.TLSCertificate(), pool, 1200, body)
	c := peertest.StartCapture(t, peertest.CaptureOptions{Format: "pcap"}, port)
	pki.runClient(t, liveScenario{name: "rewrite source", cas: 261, sendCert: true}, port)
	path := c.Stop()

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || (tcp.SrcPort != layers.TCPPort(port) && tcp.DstPort != layers.TCPPort(port)) {
			continue // the capture's marker connections
		}
		frames = append(frames, frameRec{ci: ci, data: data, fromSrv: tcp.SrcPort == layers.TCPPort(port),
			syn: tcp.SYN, seq: tcp.Seq, payload: len(tcp.Payload)})
	}
	return frames, port, cas
}

// writeFrames writes frames as a pcap of the given link type; convert
// turns each Ethernet frame into that link type's.
func writeFrames(t *testing.T, frames []frameRec, link layers.LinkType, convert func([]byte) []byte) string {
	path := filepath.Join(t.TempDir(), "rewritten.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, link); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		data := fr.data
		if convert != nil {
			data = convert(data)
		}
		ci := fr.ci
		ci.CaptureLength, ci.Length = len(data), len(data)
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// events analyses a rewritten file: its handshake and closed events.
func rewrittenEvents(t *testing.T, path string) (*event.Handshake, *event.Closed) {
	evs, _ := analyzeFile(t, path, Options{WatchRenegotiation: true})
	var h *event.Handshake
	var c *event.Closed
	for _, e := range evs {
		switch {
		case e.Handshake != nil && h == nil:
			h = e.Handshake
		case e.Handshake != nil:
			t.Errorf("more than one handshake: %s", jsonOf(t, e.Handshake))
		case e.Closed != nil && c == nil:
			c = e.Closed
		case e.Closed != nil:
			t.Errorf("more than one connection: %s", jsonOf(t, e.Closed))
		}
	}
	if c == nil {
		t.Fatal("no connection closed event")
	}
	return h, c
}

// overlapping builds a segment carrying the second half of a's payload and
// the first half of b's, b following a in sequence.
func overlapping(t *testing.T, a, b frameRec) frameRec {
	p := gopacket.NewPacket(a.data, layers.LayerTypeEthernet, gopacket.Default)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	pa := a.data[len(a.data)-a.payload:]
	pb := b.data[len(b.data)-b.payload:]
	payload := append(append([]byte(nil), pa[len(pa)/2:]...), pb[:len(pb)/2]...)
	tcp.Seq = a.seq + uint32(len(pa)/2)
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return frameRec{ci: a.ci, data: buf.Bytes(), fromSrv: true, seq: tcp.Seq, payload: len(payload)}
}

type record struct {
	typ        byte
	start, end int // stream offsets of the header and just past the body
}

// serverRecords rebuilds the server's stream of an undamaged capture and
// walks its TLS records.
func serverRecords(t *testing.T, frames []frameRec, isn uint32) []record {
	var stream []byte
	for _, fr := range frames {
		if !fr.fromSrv || fr.payload == 0 {
			continue
		}
		off := int(fr.seq - isn - 1)
		payload := fr.data[len(fr.data)-fr.payload:]
		if off == len(stream) {
			stream = append(stream, payload...)
		}
	}
	var recs []record
	for off := 0; off+5 <= len(stream); {
		end := off + 5 + int(binary.BigEndian.Uint16(stream[off+3:]))
		recs = append(recs, record{stream[off], off, end})
		off = end
	}
	if len(recs) < 5 {
		t.Fatalf("server stream of %d bytes has %d records", len(stream), len(recs))
	}
	return recs
}

// sameHandshake compares two events but for where they are in the file.
func sameHandshake(t *testing.T, got, want *event.Handshake) {
	t.Helper()
	if got == nil {
		t.Fatal("no handshake event")
	}
	g, w := *got, *want
	g.PCAP, w.PCAP, g.ConnID, w.ConnID = nil, nil, "", ""
	if a, b := jsonOf(t, &g), jsonOf(t, &w); a != b {
		t.Errorf("handshake differs from the undamaged capture's:\n got %s\nwant %s", a, b)
	}
}

// TestRewrittenCaptures damages a recorded capture with gopacket's writer
// (segments reordered, duplicated, one dropped, the start cut off) and
// re-encapsulates it (raw IP, BSD loopback, VLAN-tagged Ethernet): analyze
// must find the same handshake, or mark it partial and say where the gap
// is.
func TestRewrittenCaptures(t *testing.T) {
	frames, _, cas := recordForRewrite(t)
	orig := writeFrames(t, frames, layers.LinkTypeEthernet, nil)
	want, wantClosed := rewrittenEvents(t, orig)
	if want == nil || want.CertRequest == nil || want.CertRequest.IssuerCount != len(cas) || want.Verdict != "ok" || want.Visibility != "clear" {
		t.Fatalf("undamaged capture: %s", jsonOf(t, want))
	}
	// The server's data segments, in order, and the records of its stream.
	var srvData []int
	var isn uint32
	for i, fr := range frames {
		if fr.fromSrv && fr.payload > 0 {
			srvData = append(srvData, i)
		}
		if fr.fromSrv && fr.syn {
			isn = fr.seq
		}
	}
	if len(srvData) < 60 {
		t.Fatalf("only %d server data segments: the MSS did not apply", len(srvData))
	}
	crFrame := want.PCAP.Frames.CertRequest
	recs := serverRecords(t, frames, isn)
	// inside returns the server segments lying wholly within the body of
	// a record of type typ, header bytes excluded: damage there leaves
	// the record boundaries known.
	inside := func(typ byte) []int {
		var out []int
		for _, i := range srvData {
			off := int(frames[i].seq - isn - 1)
			for _, r := range recs {
				if r.typ == typ && off >= r.start+5 && off+frames[i].payload <= r.end {
					out = append(out, i)
				}
			}
		}
		return out
	}
	// crSegs: server segments inside the request's records, which all
	// come before the frame that completed it.
	var crSegs []int
	for _, i := range inside(22) {
		if i+1 <= crFrame {
			crSegs = append(crSegs, i)
		}
	}
	appSegs := inside(23)
	if len(crSegs) < 10 || len(appSegs) < 4 {
		t.Fatalf("%d segments inside handshake records, %d inside application data: too few to damage", len(crSegs), len(appSegs))
	}

	t.Run("segments reordered", func(t *testing.T) {
		// Adjacent segments of one side swap places, as on a network
		// that reorders, or a capture on several queues.
		out := append([]frameRec(nil), frames...)
		swapped := 0
		for k := 0; k+1 < len(srvData); k++ {
			if i := srvData[k]; srvData[k+1] == i+1 {
				out[i], out[i+1] = out[i+1], out[i]
				swapped++
				k++
			}
		}
		if swapped < 5 {
			t.Fatalf("only %d pairs of adjacent server segments to swap", swapped)
		}
		h, c := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		sameHandshake(t, h, want)
		if c.BytesDown != wantClosed.BytesDown || c.BytesUp != wantClosed.BytesUp || len(c.Errors) > 0 {
			t.Errorf("closed: %s", jsonOf(t, c))
		}
	})

	t.Run("segments retransmitted with other boundaries", func(t *testing.T) {
		// After some server segment A, a retransmission covering the second
		// half of A and the first half of the segment B that follows it:
		// part old data, part new, overlapping both.
		var out []frameRec
		repacked := 0
		next := map[int]int{}
		for k := 0; k+1 < len(srvData); k++ {
			next[srvData[k]] = srvData[k+1]
		}
		for i, fr := range frames {
			out = append(out, fr)
			j, ok := next[i]
			if !ok || i%4 != 0 || frames[j].seq != fr.seq+uint32(fr.payload) {
				continue
			}
			out = append(out, overlapping(t, fr, frames[j]))
			repacked++
		}
		if repacked < 5 {
			t.Fatalf("only %d retransmissions made", repacked)
		}
		h, c := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		sameHandshake(t, h, want)
		if c.BytesDown != wantClosed.BytesDown || len(c.Errors) > 0 {
			t.Errorf("closed: %s", jsonOf(t, c))
		}
	})

	t.Run("segments duplicated", func(t *testing.T) {
		var out []frameRec
		for _, fr := range frames {
			out = append(out, fr)
			if fr.payload > 0 {
				out = append(out, fr)
			}
		}
		h, c := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		sameHandshake(t, h, want)
		if c.BytesDown != wantClosed.BytesDown || len(c.Errors) > 0 {
			t.Errorf("closed: %s", jsonOf(t, c))
		}
	})

	t.Run("a segment of the request dropped", func(t *testing.T) {
		k := slices.Index(srvData, crSegs[len(crSegs)/2])
		prev, drop, next := srvData[k-1], srvData[k], srvData[k+1]
		var out []frameRec
		for i, fr := range frames {
			if i != drop {
				out = append(out, fr)
			}
		}
		h, _ := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		if h == nil || h.Visibility != "partial" || h.Verdict != "unknown" {
			t.Fatalf("handshake with a hole in its request: %s", jsonOf(t, h))
		}
		// Frame numbers in the damaged file: those after the dropped frame
		// moved down by one.
		wantNote := fmt.Sprintf("capture gap: %d bytes of the server's stream missing from byte %d (after frame %d, resuming in frame %d)",
			frames[drop].payload, frames[drop].seq-isn-1, prev+1, next)
		if !strings.Contains(strings.Join(h.Errors, "\n"), wantNote) {
			t.Errorf("errors %q lack %q", h.Errors, wantNote)
		}
	})

	t.Run("a segment of application data dropped", func(t *testing.T) {
		drop := appSegs[len(appSegs)/2]
		var out []frameRec
		for i, fr := range frames {
			if i != drop {
				out = append(out, fr)
			}
		}
		h, c := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		sameHandshake(t, h, want)
		if note := strings.Join(c.Errors, "\n"); !strings.Contains(note, "capture gap: "+strconv.Itoa(frames[drop].payload)+" bytes") ||
			!strings.Contains(note, "no handshake data was lost") {
			t.Errorf("closed event does not note the harmless gap: %q", c.Errors)
		}
	})

	t.Run("handshake of TCP not captured", func(t *testing.T) {
		var out []frameRec
		for _, fr := range frames {
			if !fr.syn {
				out = append(out, fr)
			}
		}
		h, _ := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		sameHandshake(t, h, want)
	})

	t.Run("capture starts in the middle of the request", func(t *testing.T) {
		out := frames[crSegs[len(crSegs)/2]:]
		h, c := rewrittenEvents(t, writeFrames(t, out, layers.LinkTypeEthernet, nil))
		if h != nil {
			t.Errorf("a handshake from the middle of one: %s", jsonOf(t, h))
		}
		if !strings.Contains(strings.Join(c.Errors, "\n"), "the capture starts after this connection began") {
			t.Errorf("closed event does not say the start is missing: %q", c.Errors)
		}
	})

	// Other link types carry the same packets: the events must not change,
	// and tshark must read the rewritten file the same way.
	links := []struct {
		name    string
		link    layers.LinkType
		convert func([]byte) []byte
	}{
		{"raw IP", layers.LinkTypeRaw, func(b []byte) []byte { return b[14:] }},
		{"BSD loopback (null)", layers.LinkTypeNull, func(b []byte) []byte {
			return append(binary.LittleEndian.AppendUint32(nil, 2), b[14:]...)
		}},
		{"Ethernet with an 802.1Q VLAN tag", layers.LinkTypeEthernet, func(b []byte) []byte {
			out := append([]byte(nil), b[:12]...)
			out = append(out, 0x81, 0x00, 0x00, 0x2a) // VLAN 42
			return append(out, b[12:]...)
		}},
	}
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) {
			path := writeFrames(t, frames, l.link, l.convert)
			h, _ := rewrittenEvents(t, path)
			sameHandshake(t, h, want)
			if h.PCAP.Frames == nil || *h.PCAP.Frames != *want.PCAP.Frames {
				t.Errorf("frames %+v, want %+v", h.PCAP.Frames, want.PCAP.Frames)
			}
			sums := transcript.TsharkDNames(t, path)
			if len(sums) != 1 || sums[0].Frame != crFrame || sums[0].Count != len(cas) {
				t.Errorf("tshark reads the rewritten file as %+v", sums)
			}
		})
	}
}
