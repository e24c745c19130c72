package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/transcript"
	"github.com/certlens/certlens/rules"
)

const transcriptDir = "../../handshake/testdata/transcripts"

// proxyEvents is what the proxy logs for a recorded connection: the
// transcript's chunks fed to one parser in the order the relay read them,
// then the parser closed (proxy/tunnel.go), each handshake diagnosed with
// the shared helper.
func proxyEvents(tr *transcript.Transcript, m event.Meta, opts rules.Options) []*event.Handshake {
	p := handshake.NewParser(handshake.Options{})
	var out []*event.Handshake
	for _, ch := range tr.Chunks {
		dir := handshake.FromClient
		if ch.Dir == transcript.ServerToClient {
			dir = handshake.FromServer
		}
		p.Feed(dir, ch.Data)
		for _, h := range p.Drain() {
			out = append(out, event.Diagnose(m, h, rules.Evidence{}, opts))
		}
	}
	for _, h := range p.Close() {
		out = append(out, event.Diagnose(m, h, rules.Evidence{}, opts))
	}
	return out
}

// TestSameEventsAsProxy: for every recorded transcript, analyze on its pcap
// (TCP segments of at most 1460 bytes) writes the handshake events the
// proxy writes from the socket reads, but for the pcap field.
func TestSameEventsAsProxy(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(transcriptDir, "*.transcript"))
	if len(paths) == 0 {
		t.Fatal("no recorded transcripts in " + transcriptDir)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".transcript")
		t.Run(name, func(t *testing.T) {
			tr, err := transcript.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var pcap bytes.Buffer
			if err := tr.WritePcap(&pcap); err != nil {
				t.Fatal(err)
			}
			opts := rules.Options{Now: tr.Meta.Date}
			var got []*event.Handshake
			var closed *event.Closed
			_, err = analyze(t, bytes.NewReader(pcap.Bytes()), Options{Name: name, Rules: opts, WatchRenegotiation: true}, func(e Event) {
				if e.Handshake != nil {
					got = append(got, e.Handshake)
				} else {
					closed = e.Closed
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			m := event.Meta{ConnID: name + "#0", Mode: event.ModeAnalyze, ClientAddr: "127.0.0.1:40000", Target: "127.0.0.1:443",
				CommunityID: communityid.FromStrings(0, "127.0.0.1:40000", "127.0.0.1:443")}
			want := proxyEvents(tr, m, opts)
			if len(got) != len(want) {
				t.Fatalf("%d handshake events, the proxy's way %d", len(got), len(want))
			}
			for i := range got {
				if got[i].PCAP == nil || got[i].PCAP.Stream != 0 {
					t.Errorf("handshake %d: pcap %+v", i, got[i].PCAP)
				}
				g := *got[i]
				g.PCAP = nil
				if a, b := jsonOf(t, &g), jsonOf(t, want[i]); a != b {
					t.Errorf("handshake %d:\nanalyze %s\nproxy   %s", i, a, b)
				}
			}
			if closed == nil || closed.BytesUp != int64(len(tr.Stream(transcript.ClientToServer))) ||
				closed.BytesDown != int64(len(tr.Stream(transcript.ServerToClient))) || closed.Reason != "client closed" || len(closed.Errors) > 0 {
				t.Errorf("closed event %s", jsonOf(t, closed))
			}
		})
	}
}

// TestFramesMatchTshark: the frames the events name are those tshark
// showed the messages in, as noted when the transcripts were recorded.
func TestFramesMatchRecordedNotes(t *testing.T) {
	cases := map[string]event.PCAPFrames{
		"tls12-3ca-curl-nocert":  {CertRequest: 6, ClientCert: 8},
		"tls12-260ca-curl-cert":  {CertRequest: 50, ClientCert: 52},
		"tls12-require-nocert":   {CertRequest: 6, ClientCert: 8},
		"tls12-3ca-sclient-cert": {CertRequest: 6, ClientCert: 8},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			evs, _ := analyzeFile(t, filepath.Join(transcriptDir, name+".pcap"), Options{})
			if len(evs) == 0 || evs[0].Handshake == nil || evs[0].Handshake.PCAP.Frames == nil {
				t.Fatalf("events %v", evs)
			}
			if got := *evs[0].Handshake.PCAP.Frames; got != want {
				t.Errorf("frames %+v, want %+v", got, want)
			}
		})
	}
}

func TestInputFormats(t *testing.T) {
	pcap, err := os.ReadFile(filepath.Join(transcriptDir, "tls12-3ca-curl-nocert.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pcap)
	zw.Close()
	for name, data := range map[string][]byte{"pcap": pcap, "gzip-compressed pcap": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			var hs int
			st, err := analyze(t, bytes.NewReader(data), Options{}, func(e Event) {
				if e.Handshake != nil {
					hs++
				}
			})
			if err != nil || hs != 1 || st.Frames != 25 || st.Bytes != int64(len(pcap)) {
				t.Errorf("%d handshakes, %+v, %v", hs, st, err)
			}
		})
	}
}

// TestUnreadableInput: damage ends in an error naming the file and where,
// after the events of what came before.
func TestUnreadableInput(t *testing.T) {
	pcap, err := os.ReadFile(filepath.Join(transcriptDir, "tls12-3ca-curl-nocert.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// The pcap's 8th record starts after the 24-byte header and 7 records.
	off := 24
	for range 7 {
		off += 16 + int(uint32(pcap[off+8])|uint32(pcap[off+9])<<8|uint32(pcap[off+10])<<16|uint32(pcap[off+11])<<24)
	}
	badLen := append([]byte(nil), pcap...)
	copy(badLen[off+8:], []byte{0xff, 0xff, 0xff, 0x7f})
	tests := []struct {
		name       string
		data       []byte
		wantOffset int64
		wantFrame  int
		wantErr    string
		wantEvents bool
	}{
		{"empty", nil, 0, 0, "too short for a capture file", false},
		{"not a capture", []byte("GET / HTTP/1.1\r\n\r\n"), 0, 0, "not a pcap or pcapng file", false},
		{"truncated in the file header", pcap[:10], 0, 0, "truncated", false},
		{"truncated in a packet", pcap[:off+30], int64(off), 7, "the file ends inside this record", true},
		{"absurd capture length", badLen, int64(off), 7, "capture length", true},
		{"pcapng magic, then garbage", append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, bytes.Repeat([]byte{0xee}, 40)...), 0, 0, "pcapng", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var closed int
			_, err := analyze(t, bytes.NewReader(tt.data), Options{Name: "x.pcap"}, func(e Event) {
				if e.Closed != nil {
					closed++
				}
			})
			var re *ReadError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a *ReadError", err)
			}
			if re.File != "x.pcap" || re.Offset != tt.wantOffset || re.Frame != tt.wantFrame || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q (offset %d, frame %d), want %q at %d after frame %d", err, re.Offset, re.Frame, tt.wantErr, tt.wantOffset, tt.wantFrame)
			}
			if !strings.HasPrefix(err.Error(), "x.pcap: byte ") {
				t.Errorf("error %q does not start with the file and the offset", err)
			}
			if (closed > 0) != tt.wantEvents {
				t.Errorf("%d connections reported before the damage", closed)
			}
		})
	}
}

func TestStreamNumbering(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:50000")
	b := netip.MustParseAddrPort("10.0.0.2:443")
	c := netip.MustParseAddrPort("10.0.0.3:443")
	st := newStreamTable()
	now := time.Unix(0, 0)
	steps := []struct {
		name     string
		src, dst netip.AddrPort
		tcp      layers.TCP
		want     int
	}{
		{"first SYN opens stream 0", a, b, layers.TCP{Seq: 100, SYN: true}, 0},
		{"the answer belongs to it", b, a, layers.TCP{Seq: 900, Ack: 101, SYN: true, ACK: true}, 0},
		{"another connection is stream 1", a, c, layers.TCP{Seq: 5, Ack: 77, ACK: true}, 1},
		{"a retransmitted SYN stays in stream 0", a, b, layers.TCP{Seq: 100, SYN: true}, 0},
		{"a retransmitted SYN+ACK too", b, a, layers.TCP{Seq: 900, Ack: 101, SYN: true, ACK: true}, 0},
		{"a SYN with a new sequence number is port reuse: stream 2", a, b, layers.TCP{Seq: 7000, SYN: true}, 2},
		{"the old server's late segment is stream 2 too", b, a, layers.TCP{Seq: 950, Ack: 200, ACK: true}, 2},
		{"a SYN+ACK other than the acknowledged sequence is a new connection whose SYN was missed", c, a, layers.TCP{Seq: 1, Ack: 6, SYN: true, ACK: true}, 3},
		{"its client's data", a, c, layers.TCP{Seq: 6, Ack: 2, ACK: true, PSH: true}, 3},
		{"the client closes", a, c, layers.TCP{Seq: 6, Ack: 2, ACK: true, FIN: true}, 3},
		{"a SYN with the old sequence number after a FIN is a new connection", a, c, layers.TCP{Seq: 6, SYN: true}, 4},
		{"its server answers", c, a, layers.TCP{Seq: 50, Ack: 7, SYN: true, ACK: true}, 4},
		{"a reset", a, c, layers.TCP{Seq: 7, RST: true}, 4},
		{"a SYN with the same sequence number after a RST is a new connection", a, c, layers.TCP{Seq: 6, SYN: true}, 5},
		{"so is a SYN+ACK after a RST", c, a, layers.TCP{Seq: 50, RST: true}, 5},
		{"", c, a, layers.TCP{Seq: 50, Ack: 7, SYN: true, ACK: true}, 6},
	}
	for _, s := range steps {
		e, _, _, _ := st.lookup(s.src, s.dst, &s.tcp, now)
		if e.stream != s.want {
			t.Errorf("%s: stream %d, want %d", s.name, e.stream, s.want)
		}
	}
}

func TestFilter(t *testing.T) {
	cl := netip.MustParseAddrPort("10.0.0.5:50000")
	srv := netip.MustParseAddrPort("[2001:db8::9]:443")
	tests := []struct {
		expr string
		sni  string
		want bool
	}{
		{"port 443", "", true},
		{"443", "", true},
		{"port 8443", "", false},
		{"host 10.0.0.5", "", true},
		{"10.0.0.5 and port 443", "", true},
		{"10.0.0.5 and not port 443", "", false},
		{"net 10.0.0.0/8", "", true},
		{"2001:db8::/32", "", true},
		{"[2001:db8::9]:443", "", true},
		{"10.0.0.5:443", "", false},
		{"sni *.corp.example", "iis.CORP.example", true},
		{"iis.corp.example", "", false},
		{"host iis.corp.example or port 8443", "iis.corp.example", true},
		{"(port 1 or port 2) or (host 10.0.0.5 and sni x)", "x", true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.expr)
		if err != nil {
			t.Errorf("%q: %v", tt.expr, err)
			continue
		}
		if got := f.Match(cl, srv, tt.sni); got != tt.want {
			t.Errorf("%q with SNI %q: %v, want %v", tt.expr, tt.sni, got, tt.want)
		}
	}
	for _, bad := range []string{"", "port", "port http", "net 10.0.0.1", "host 1.2.3.4 or", "(port 1", "port 1 port 2", "a/b"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestFilterSelects: connections the filter leaves out yield no event but
// keep their tcp.stream number.
func TestFilterSelects(t *testing.T) {
	path := filepath.Join(transcriptDir, "tls12-3ca-curl-nocert.pcap")
	for expr, want := range map[string]int{"port 443": 2, "port 444": 0, "sni localhost": 2, "sni other.example": 0, "not sni localhost": 0} {
		f, err := ParseFilter(expr)
		if err != nil {
			t.Fatal(err)
		}
		evs, st := analyzeFile(t, path, Options{Filter: f})
		if len(evs) != want || st.Streams != 1 {
			t.Errorf("%s: %d events, %d streams; want %d events", expr, len(evs), st.Streams, want)
		}
	}
}

// TestProxyTunnel: a connection to an HTTP proxy carries TLS inside a
// CONNECT tunnel, after the proxy asked for credentials once; the handshake
// is read as if the capture were of the tunnel, with the CONNECT target.
func TestProxyTunnel(t *testing.T) {
	tr, err := transcript.ReadFile(filepath.Join(transcriptDir, "tls12-3ca-curl-nocert.transcript"))
	if err != nil {
		t.Fatal(err)
	}
	c := func(dir transcript.Direction, s string) transcript.Chunk {
		return transcript.Chunk{Dir: dir, Data: []byte(s)}
	}
	tunnel := &transcript.Transcript{Meta: tr.Meta, Chunks: append([]transcript.Chunk{
		c(transcript.ClientToServer, "CONNECT iis.example.test:443 HTTP/1.1\r\nHost: iis.example.test:443\r\n\r\n"),
		c(transcript.ServerToClient, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 12\r\n\r\n"),
		c(transcript.ServerToClient, "not allowed\n"),
		c(transcript.ClientToServer, "CONNECT iis.example.test:443 HTTP/1.1\r\nProxy-Authorization: Negotiate YII=\r\n\r\n"),
		c(transcript.ServerToClient, "HTTP/1.1 200 Connection established\r\n\r\n"),
	}, tr.Chunks...)}
	var direct, tunnelled bytes.Buffer
	if err := tr.WritePcap(&direct); err != nil {
		t.Fatal(err)
	}
	if err := tunnel.WritePcap(&tunnelled); err != nil {
		t.Fatal(err)
	}
	run := func(data []byte) (*event.Handshake, *event.Closed) {
		var h *event.Handshake
		var cl *event.Closed
		if _, err := analyze(t, bytes.NewReader(data), Options{Rules: rules.Options{Now: tr.Meta.Date}}, func(e Event) {
			if e.Handshake != nil {
				h = e.Handshake
			} else {
				cl = e.Closed
			}
		}); err != nil {
			t.Fatal(err)
		}
		if h == nil || cl == nil {
			t.Fatalf("handshake %v, closed %v", h, cl)
		}
		return h, cl
	}
	want, wantClosed := run(direct.Bytes())
	got, closed := run(tunnelled.Bytes())
	if got.Target != "iis.example.test:443" || closed.Target != got.Target {
		t.Errorf("targets %q, %q: want the CONNECT's", got.Target, closed.Target)
	}
	if got.AppProtocol != "http-connect" || closed.AppProtocol != got.AppProtocol || want.AppProtocol != "" {
		t.Errorf("app_protocol %q, %q (direct %q): want http-connect in the tunnel only", got.AppProtocol, closed.AppProtocol, want.AppProtocol)
	}
	g, w := *got, *want
	g.Target, g.AppProtocol, g.PCAP, w.PCAP = w.Target, "", nil, nil
	if a, b := jsonOf(t, &g), jsonOf(t, &w); a != b {
		t.Errorf("tunnelled handshake:\n%s\nwant\n%s", a, b)
	}
	if closed.BytesUp != wantClosed.BytesUp || closed.BytesDown != wantClosed.BytesDown || closed.NotTLS != "" {
		t.Errorf("tunnel bytes %d/%d, want the TLS bytes %d/%d", closed.BytesUp, closed.BytesDown, wantClosed.BytesUp, wantClosed.BytesDown)
	}
}

// TestIdleConnection: a connection silent for longer than the idle timeout
// (in capture time, while other connections go on) ends, freeing its
// memory; what it carries afterwards is read as a connection joined in the
// middle, under the same tcp.stream. A capture in which nothing at all
// happens for as long is not idle time (TestTCPIdentity: clock jumps).
func TestIdleConnection(t *testing.T) {
	reneg := readTranscript(t, "tls12-renegotiation-sclient")
	s := newScript(t)
	c := s.conn("10.0.0.1:40000", "10.0.0.2:443", 1000, 5000)
	c.open()
	c.replay(reneg.Chunks[:4]) // the first handshake, before the renegotiation
	for i := range 30 {
		s.sleep(40 * time.Second)
		o := s.conn(fmt.Sprintf("10.0.0.9:%d", 30000+i), "10.0.0.2:443", 1, 2)
		o.open()
		o.close()
	}
	c.replay(reneg.Chunks[4:])
	c.close()
	var got []string
	if _, err := analyze(t, bytes.NewReader(s.pcap()), Options{IdleTimeout: 15 * time.Minute, WatchRenegotiation: true}, func(e Event) {
		if e.Stream != 0 {
			return
		}
		switch {
		case e.Handshake != nil:
			got = append(got, "handshake "+e.Handshake.Verdict)
		default:
			got = append(got, e.Closed.Reason+" "+strings.Join(e.Closed.Errors, "; "))
		}
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"handshake ok", "idle timeout ", "client closed packets arrived after this connection was idle"}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("event %d: %q, want %q...", i, got[i], want[i])
		}
	}
}

// TestSweep: ended conversations leave the table after a short while,
// those that may go on (idle, or not followed because of the filter)
// later; either way a packet on their ports afterwards finds the stream
// number Wireshark gives it, and whether it may carry data.
func TestSweep(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	st := newStreamTable()
	srv := netip.MustParseAddrPort("10.0.0.2:443")
	cl := func(port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port)
	}
	add := func(port uint16, selected, idle bool) tuple {
		tp, _ := newTuple(cl(port), srv)
		st.m[tp] = &entry{stream: int(port), last: t0, selected: selected, idle: idle, gen: 1, client: cl(port),
			base: [2]uint32{100, 200}, baseSet: [2]bool{true, true}, closing: !idle}
		return tp
	}
	closed, idle, unselected := add(1, true, false), add(2, true, true), add(3, false, false)
	live := add(4, true, false)
	st.m[live].conn = &conn{}
	st.sweep(t0.Add(3*time.Minute), 2*time.Minute, 30*time.Minute)
	if st.m[closed] != nil || st.m[idle] == nil || st.m[unselected] == nil || st.m[live] == nil {
		t.Errorf("after 3 minutes: closed %v, idle %v, unselected %v, live %v", st.m[closed] != nil, st.m[idle] != nil, st.m[unselected] != nil, st.m[live] != nil)
	}
	st.sweep(t0.Add(31*time.Minute), 2*time.Minute, 30*time.Minute)
	if len(st.m) != 1 || st.m[live] == nil || len(st.past) != 3 {
		t.Errorf("after 31 minutes %d conversations remain, %d remembered", len(st.m), len(st.past))
	}
	ack := &layers.TCP{Seq: 300, Ack: 500, ACK: true}
	for port, selected := range map[uint16]bool{1: true, 2: true, 3: false} {
		e, _, created, _ := st.lookup(cl(port), srv, ack, t0.Add(time.Hour))
		if created || e.stream != int(port) || e.gen != 1 || e.selected != selected || e.client != cl(port) || e.closing == (port == 2) {
			t.Errorf("port %d comes back as %+v (created %v)", port, e, created)
		}
	}
	// The closed conversation is over: a SYN on its ports, even with its
	// old sequence number, is a new stream.
	if e, _, created, _ := st.lookup(cl(1), srv, &layers.TCP{Seq: 100, SYN: true}, t0.Add(time.Hour)); !created || e.stream != 0 {
		t.Errorf("SYN after the close: stream %d, created %v", e.stream, created)
	}
}

// TestCaptureStartsAfterHandshake: a capture that begins once the
// connection carries application data is resynced on record headers, and
// the renegotiation that follows is seen, encrypted, as a renegotiation.
// The recording is s_server's renegotiation with a request put in front of
// it, as IIS renegotiates after reading the request for a folder that
// requires a certificate.
func TestCaptureStartsAfterHandshake(t *testing.T) {
	const name = "tls12-renegotiation-sclient"
	rec, err := transcript.ReadFile(filepath.Join(transcriptDir, name+".transcript"))
	if err != nil {
		t.Fatal(err)
	}
	// Chunks 0-3 are the initial handshake, 4 the server's encrypted HelloRequest.
	if len(rec.Chunks) < 5 || rec.Chunks[4].Data[0] != 22 {
		t.Fatalf("the recording changed: chunk 4 is not the encrypted HelloRequest")
	}
	request := append([]byte{23, 3, 3, 0, 60}, bytes.Repeat([]byte{0xa5}, 60)...)
	tr := *rec
	tr.Chunks = append(append(slices.Clip(rec.Chunks[:4]), transcript.Chunk{Dir: transcript.ClientToServer, Data: request}), rec.Chunks[4:]...)
	var full bytes.Buffer
	if err := tr.WritePcap(&full); err != nil {
		t.Fatal(err)
	}
	// Keep the packets from the first one carrying application data on.
	r, err := pcapgo.NewReader(&full)
	if err != nil {
		t.Fatal(err)
	}
	var late bytes.Buffer
	w := pcapgo.NewWriter(&late)
	if err := w.WriteFileHeader(65535, r.LinkType()); err != nil {
		t.Fatal(err)
	}
	kept, started := 0, false
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !started && tcp != nil && len(tcp.Payload) > 0 && tcp.Payload[0] == 23 {
			started = true
		}
		if started {
			kept++
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kept == 0 {
		t.Fatal("no application data in the capture")
	}
	var hs []*event.Handshake
	var closed *event.Closed
	if _, err := analyze(t, &late, Options{Name: name, WatchRenegotiation: true}, func(e Event) {
		if e.Handshake != nil {
			hs = append(hs, e.Handshake)
		} else {
			closed = e.Closed
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 {
		t.Fatalf("%d handshake events, want the renegotiation only: %s\n%s", len(hs), jsonOf(t, hs), jsonOf(t, closed))
	}
	h := hs[0]
	ids := []string{}
	for _, f := range h.Findings {
		ids = append(ids, f.ID)
	}
	if h.Phase != "renegotiation" || h.Visibility != "encrypted" || h.End != "finished" || !slices.Contains(ids, "cert-request-by-renegotiation") {
		t.Errorf("phase %s visibility %s end %s findings %v, want an encrypted renegotiation", h.Phase, h.Visibility, h.End, ids)
	}
	if h.ClientAddr != "127.0.0.1:40000" || h.Target != "127.0.0.1:443" {
		t.Errorf("client %s target %s: roles guessed wrong", h.ClientAddr, h.Target)
	}
	if closed == nil || !strings.Contains(strings.Join(closed.Errors, "\n"), "past its handshake") {
		t.Errorf("closed event does not say where reading started: %s", jsonOf(t, closed))
	}
}
