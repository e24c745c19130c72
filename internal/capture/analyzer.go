package capture

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// Options configure an analysis. The zero value analyses every connection
// with the default rules.
type Options struct {
	// Name is the file's name as the user gave it ("-" for stdin): it
	// prefixes connection ids and names the file in errors.
	Name string
	// Rules are the proxy's rule options. Rules.Now is ignored: validity is
	// judged at the capture time of each handshake, as the proxy judges it
	// at the time it sees the handshake.
	Rules rules.Options
	// WatchRenegotiation keeps reading TLS 1.2 record headers after the
	// handshake, to see renegotiations (tunnel.watch_renegotiation).
	WatchRenegotiation bool
	// Filter selects connections; nil selects all.
	Filter *Filter
	// IdleTimeout ends a connection that saw no packet for this long in
	// capture time, to free its memory; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Secrets decrypt TLS 1.3 and renegotiation handshakes (a key log read
	// whole); nil reads only what is in clear.
	Secrets handshake.SecretSource
}

// DefaultIdleTimeout is long enough for an IIS keep-alive connection to sit
// between a request and the renegotiation it triggers, and short enough to
// flush abandoned connections of a day-long capture.
const DefaultIdleTimeout = 15 * time.Minute

// Reassembly tuning. Waiting gapWait of capture time for a segment that is
// missing before giving up on it covers retransmission timeouts; the page
// caps (1,900 bytes a page) bound what waits meanwhile: a 64 KB issuer list
// with its first segment lost fits in one connection's share.
const (
	gapWait         = 10 * time.Second
	flushEvery      = 10 * time.Second
	maxPagesPerConn = 160
	maxPagesTotal   = 1 << 15
	// closedTTL is how long a connection that ended by FIN or RST keeps its
	// tcp.stream for stray packets (retransmissions, the last ACKs).
	closedTTL = 2 * time.Minute
	// maxClockStep is the most the timeouts' clock advances between two
	// frames: a longer silence of the whole capture is a clock step or a
	// pause in which nothing waited for memory's sake.
	maxClockStep = time.Minute
)

// Event is one event, in capture order: a handshake (as soon as its
// outcome is known) or the end of a connection.
type Event struct {
	// Time is the capture time of the frame that made the event known.
	Time time.Time
	// Stream is Wireshark's tcp.stream of the connection.
	Stream int
	// Exactly one of these is set.
	Handshake *event.Handshake
	Closed    *event.Closed
}

// Stats describe what was read.
type Stats struct {
	Frames int
	// Bytes is how much of the (decompressed) file was read.
	Bytes int64
	// Streams is how many TCP connections Wireshark would number.
	Streams int
	// Connections were analysed (selected by the filter), TLS ones had a
	// TLS record, Handshakes is the handshake events.
	Connections, TLSConnections, Handshakes int
	// First and Last are the capture times of the first and last frames.
	First, Last time.Time
	// Frames not analysed: not TCP over IP, link types certlens cannot
	// decode, TCP headers too damaged to use.
	NotTCP, UnknownLink, Malformed int
	// Fragments counts IP fragments, reassembled into datagrams before
	// TCP; FragmentsLost those whose datagram never came whole.
	Fragments, FragmentsLost int
	// Tunnels counts, by name, packets inside encapsulations certlens
	// cannot read ("OpenVPN (UDP 1194)", "IPsec ESP (encrypted)").
	Tunnels map[string]int
	// UnknownLinkTypes names the undecodable link types seen.
	UnknownLinkTypes []string
	// Truncated counts TCP segments the capture cut short (snap length).
	Truncated int
	// StreamsForgotten counts ended connections whose numbers were not
	// kept (millions of them): packets on their ports later on are
	// numbered as new streams, unlike Wireshark's tcp.stream.
	StreamsForgotten int
}

// Analyze reads one capture and calls emit for every event, in order. It
// returns the statistics and, for input that cannot be read to its end, a
// *ReadError; the events of everything before the damage are emitted
// first.
func Analyze(r io.Reader, opts Options, emit func(Event)) (Stats, error) {
	a := newAnalyzer(opts, emit)
	src, err := openSource(displayName(opts.Name), r)
	if err != nil {
		return a.stats, err
	}
	for {
		p, err := src.next()
		if err != nil {
			a.finish()
			a.stats.Bytes = src.offset()
			if errors.Is(err, io.EOF) {
				return a.stats, nil
			}
			return a.stats, err
		}
		a.packet(p)
	}
}

func displayName(name string) string {
	if name == "-" || name == "" {
		return "stdin"
	}
	return name
}

// analyzer holds the state of one file's analysis.
type analyzer struct {
	opts  Options
	idPfx string
	emit  func(Event)
	dec   *decoder
	table streamTable
	pool  *reassembly.StreamPool
	asm   *reassembly.Assembler
	stats Stats
	// cur is the connection of the packet being assembled, for New; nil
	// when the filter excludes it.
	cur *conn
	// now is the latest capture time seen, ts the current frame's; frame
	// is the current frame.
	now   time.Time
	ts    time.Time
	frame int
	// clock is the capture time the idle and gap timeouts run on: it
	// advances with the capture but by at most maxClockStep between two
	// frames, so that a clock stepped forward (or files merged with
	// different clocks) does not end every connection at once; Wireshark
	// ignores time in numbering streams, and so must the flushes here.
	clock     time.Time
	lastFlush time.Time
	// closing is the reason given to connections the reassembly closes
	// during a flush.
	closing string
	// resets are connections a RST ended during the current packet.
	resets   []*conn
	linkSeen map[layers.LinkType]bool
	// curSrc is the source of the packet being handled.
	curSrc netip.AddrPort
	// Buffers of fillLost.
	zeros   []byte
	fillHdr [20]byte
	fillBuf []byte
	fillTCP layers.TCP
}

func newAnalyzer(opts Options, emit func(Event)) *analyzer {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	a := &analyzer{
		opts:     opts,
		idPfx:    filepath.Base(displayName(opts.Name)) + "#",
		emit:     emit,
		dec:      newDecoder(),
		table:    newStreamTable(),
		linkSeen: map[layers.LinkType]bool{},
	}
	a.pool = reassembly.NewStreamPool(a)
	a.asm = reassembly.NewAssembler(a.pool)
	a.asm.MaxBufferedPagesPerConnection = maxPagesPerConn
	a.asm.MaxBufferedPagesTotal = maxPagesTotal
	return a
}

// pktCtx is the reassembly context of one packet: its frame number travels
// with its bytes when they wait out of order.
type pktCtx struct {
	ci    gopacket.CaptureInfo
	frame int
	self  [1]any
}

// GetCaptureInfo implements reassembly.AssemblerContext. The capture info
// carries the context itself, so that ScatterGather.CaptureInfo leads back
// to the frame of any part of the data (boxing a pointer does not allocate).
func (c *pktCtx) GetCaptureInfo() gopacket.CaptureInfo {
	ci := c.ci
	c.self[0] = c
	ci.AncillaryData = c.self[:]
	return ci
}

// frameOf returns the frame a capture info from GetCaptureInfo came from.
func frameOf(ci gopacket.CaptureInfo) int {
	if len(ci.AncillaryData) == 1 {
		if c, ok := ci.AncillaryData[0].(*pktCtx); ok {
			return c.frame
		}
	}
	return 0
}

// endpointStream types the synthetic flows that key the reassembly by
// tcp.stream rather than by addresses (see packet); it is never formatted.
const endpointStream = gopacket.EndpointType(0x6365)

func (a *analyzer) packet(p packet) {
	a.frame = p.frame
	a.stats.Frames++
	ts := p.ci.Timestamp
	a.ts = ts
	if a.stats.First.IsZero() {
		a.stats.First = ts
		a.now, a.clock, a.lastFlush = ts, ts, ts
	}
	a.stats.Last = ts
	if ts.After(a.now) {
		a.clock = a.clock.Add(min(ts.Sub(a.now), maxClockStep))
		a.now = ts
	}
	if a.clock.Sub(a.lastFlush) >= flushEvery {
		// Before this packet: a connection it belongs to may have been
		// idle until now.
		a.flush()
	}
	seg, why := a.dec.decode(p, a.clock)
	switch why {
	case skipNotTCP:
		a.stats.NotTCP++
	case skipFragment:
		a.stats.Fragments++
	case skipTunnel:
		if a.stats.Tunnels == nil {
			a.stats.Tunnels = map[string]int{}
		}
		a.stats.Tunnels[a.dec.tunnel]++
	case skipMalformed:
		a.stats.Malformed++
	case skipLinkType:
		a.stats.UnknownLink++
		if !a.linkSeen[p.link] {
			a.linkSeen[p.link] = true
			a.stats.UnknownLinkTypes = append(a.stats.UnknownLinkTypes, p.link.String()+" ("+strconv.Itoa(int(p.link))+")")
		}
	}
	if why == skipNone {
		a.segment(seg, p)
	}
}

func (a *analyzer) segment(seg segment, p packet) {
	tcp := seg.tcp
	e, side, created, replaced := a.table.lookup(seg.src, seg.dst, tcp, a.clock)
	if created {
		a.stats.Streams++
		if replaced != nil && replaced.conn != nil {
			// Port reuse: the old connection is over, whatever its state.
			replaced.conn.finish("port reused by a new connection")
		}
		e.selected = a.selected(seg.src, seg.dst)
		if e.selected {
			a.stats.Connections++
		}
	}
	if !e.selected || seg.headerOnly {
		return
	}
	a.curSrc = seg.src
	c := e.conn
	if c == nil {
		if e.gen > 0 && (!e.idle || len(tcp.Payload) == 0) {
			// After a FIN each way or a RST nothing more is data: the last
			// ACK of a close, the peer's records still in flight when a
			// RST ended the connection.
			return
		}
		e.gen++
		c = newConn(a, e, seg.src, seg.dst)
		e.conn = c
		if e.gen > 1 {
			// Data after an idle flush: Wireshark keeps the stream number;
			// certlens reads what follows as a connection joined in the
			// middle.
			c.note("packets arrived after this connection was idle for " + a.opts.IdleTimeout.String() + ": read as a connection joined in the middle")
			switch e.client {
			case seg.src:
				c.client = 0
			case seg.dst:
				c.client = 1
			}
		}
	}
	if seg.truncated && len(tcp.Payload) > 0 {
		a.stats.Truncated++
		c.truncated++
	}
	src, dst := streamFlow(e, side)
	a.cur = c
	if tcp.ACK && (len(tcp.Payload) > 0 || tcp.FIN || tcp.RST) {
		// Only a peer that answers (sends data, or closes) is trusted to
		// have received what it acknowledges before this packet: a bare
		// ACK may be captured ahead of the segment it acknowledges when
		// the capture reorders the two directions.
		a.fillLost(c, e, side, tcp.Ack, p)
	}
	a.asm.AssembleWithContext(gopacket.NewFlow(endpointStream, src, dst), tcp, a.context(p))
	a.cur = nil
	for _, c := range a.resets {
		c.finish("")
	}
	a.resets = a.resets[:0]
}

// context is the reassembly's context for packet p: its frame, and the
// timeouts' clock as its time.
func (a *analyzer) context(p packet) *pktCtx {
	ci := p.ci
	ci.Timestamp = a.clock
	return &pktCtx{ci: ci, frame: p.frame}
}

// maxFill bounds a filler: a bigger loss waits for the reassembly's own
// flush (by age or buffer size) rather than allocate for it.
const maxFill = 1 << 20

// fillLost acts on an acknowledgement of bytes the capture does not have.
// The reassembly would hold everything after them until a flush, while the
// other direction goes on: the parser would see the client's answer before
// the server's question. Instead the lost range is filled at once with a
// segment the conn knows to be filler, so that the gap is reported where it
// is and what follows it is fed in order. tupleSide is the acknowledging
// packet's side in the stream table.
func (a *analyzer) fillLost(c *conn, e *entry, tupleSide int, ack uint32, p packet) {
	s := 0 // the conn side of the acknowledged (other) direction
	if a.curSrc == c.ends[0] {
		s = 1
	}
	n := c.sides[s].lost(ack)
	if n == 0 || n > maxFill || c.sides[s].fill > 0 {
		return
	}
	if len(a.zeros) < n {
		a.zeros = make([]byte, max(n, 64<<10))
	}
	hdr := a.fillHdr[:]
	binary.BigEndian.PutUint16(hdr[0:2], c.ends[s].Port())
	binary.BigEndian.PutUint16(hdr[2:4], c.ends[1-s].Port())
	binary.BigEndian.PutUint32(hdr[4:8], c.sides[s].next())
	hdr[12] = 5 << 4 // data offset: 20 bytes, no flags
	buf := append(append(a.fillBuf[:0], hdr...), a.zeros[:n]...)
	a.fillBuf = buf
	if err := a.fillTCP.DecodeFromBytes(buf, gopacket.NilDecodeFeedback); err != nil {
		return
	}
	src, dst := streamFlow(e, 1-tupleSide)
	c.sides[s].fill = n
	a.asm.AssembleWithContext(gopacket.NewFlow(endpointStream, src, dst), &a.fillTCP, a.context(p))
	c.sides[s].fill = 0
}

// streamFlow is the reassembly's key for a packet from side of e's tuple.
// The reassembly is keyed by tcp.stream (and the conn's generation), not by
// addresses: a connection that reuses ports must not inherit the old one's
// sequence state, and each tcp.stream gets its own Stream.
func streamFlow(e *entry, side int) (src, dst []byte) {
	// 13 bytes: a flow endpoint holds at most 16.
	var s, d [13]byte
	binary.BigEndian.PutUint64(s[:8], uint64(e.stream))
	binary.BigEndian.PutUint32(s[8:12], e.gen)
	copy(d[:12], s[:12])
	s[12], d[12] = byte(side), byte(1-side)
	return s[:], d[:]
}

// selected applies the part of the filter that addresses decide.
func (a *analyzer) selected(src, dst netip.AddrPort) bool {
	f := a.opts.Filter
	return f == nil || f.needsSNI() || f.match(src, dst, "")
}

// New implements reassembly.StreamFactory: the connection is the one the
// current packet belongs to.
func (a *analyzer) New(_, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	if a.cur == nil {
		return nil
	}
	return a.cur
}

// flush pushes out data stuck behind a segment the capture lost, ends idle
// connections and forgets old conversations; it runs every flushEvery of
// capture time.
func (a *analyzer) flush() {
	a.lastFlush = a.clock
	a.closing = "idle timeout"
	a.asm.FlushWithOptions(reassembly.FlushOptions{T: a.clock.Add(-gapWait), TC: a.clock.Add(-a.opts.IdleTimeout)})
	a.closing = ""
	a.table.sweep(a.clock, closedTTL, 2*a.opts.IdleTimeout)
	a.dec.defrag.expire(a.clock)
}

// finish flushes everything at the end of the file: data waiting behind a
// gap is delivered, and every connection still open ends.
func (a *analyzer) finish() {
	a.closing = "capture ended"
	a.asm.FlushAll()
	for _, e := range a.table.m {
		if e.conn != nil {
			e.conn.finish("")
		}
	}
	a.stats.StreamsForgotten = a.table.pastFull
	a.stats.FragmentsLost = a.dec.defrag.lost + a.dec.defrag.held()
	a.table = newStreamTable()
}

// deliver counts and passes on an event, applying the filter's SNI terms.
func (a *analyzer) deliver(c *conn, ev Event) {
	if f := a.opts.Filter; f != nil && f.needsSNI() && !f.match(c.ends[0], c.ends[1], c.sni) {
		return
	}
	if ev.Handshake != nil {
		a.stats.Handshakes++
		if !c.countedTLS {
			c.countedTLS = true
			a.stats.TLSConnections++
		}
	}
	a.emit(ev)
}
