package capture

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// maxNotes caps the notes a connection collects for its closed event.
const maxNotes = 8

// conn is one TCP connection (one tcp.stream): the reassembly's Stream for
// it, the two framers and the handshake parser both directions feed.
type conn struct {
	a      *analyzer
	entry  *entry
	stream int
	// ends are the two endpoints; side 0 sent the first packet seen.
	ends [2]netip.AddrPort
	// client is the side of the client: the one that sent the SYN (or
	// answered the other's SYN+ACK), else the one that sent a ClientHello;
	// -1 while unknown.
	client int
	sides  [2]side
	parser *handshake.Parser
	// fed counts the bytes fed to the parser per handshake.Direction: the
	// parser's own stream offsets, which frames maps to frame numbers.
	fed    [2]int64
	frames [2]frameRing
	frame  int // the frame whose data is being fed
	first  time.Time
	last   time.Time
	// closedBy is the side of the first FIN or RST, reset whether it was a RST.
	closedBy   int
	reset      bool
	finished   bool
	countedTLS bool
	fedAny     bool
	truncated  int
	sni        string
	// connect is the target of the HTTP CONNECT (or SOCKS request) that
	// opened this connection, when it went through a proxy: what the
	// tunnel carries is TLS to that target, as certlens serve itself would
	// report it.
	connect string
	// pro is the plaintext the connection started with, nil when its
	// first bytes were TLS (or a proxy's CONNECT).
	pro *prologue
	// alpnProto names the application from the ClientHello's ALPN when it
	// is not the web's (PostgreSQL 17's direct TLS says "postgresql").
	alpnProto string
	// gaps are notes on missing bytes that damaged the handshake in
	// progress: the next handshake drained is marked partial with them.
	gaps  []string
	notes []string
	// verdict folds the connection's handshake events, for its closed event.
	verdict rules.Connection
}

func newConn(a *analyzer, e *entry, src, dst netip.AddrPort) *conn {
	c := &conn{a: a, entry: e, stream: e.stream, ends: [2]netip.AddrPort{src, dst}, client: -1, closedBy: -1}
	for i := range c.sides {
		c.sides[i].fr.emit = func(records []byte) { c.feed(i, records) }
	}
	return c
}

func (c *conn) note(s string) {
	if len(c.notes) < maxNotes {
		c.notes = append(c.notes, s)
	}
}

// sideOf maps the reassembly's direction (relative to the first packet it
// saw, which is the first packet of this conn) to a side.
func sideOf(dir reassembly.TCPFlowDirection) int {
	if dir == reassembly.TCPDirClientToServer {
		return 0
	}
	return 1
}

func (c *conn) role(s int) string {
	switch {
	case c.client < 0:
		return c.ends[s].String()
	case s == c.client:
		return "client"
	}
	return "server"
}

// setClient fixes the roles, and tells a framer whose stream start was not
// seen which hello it waits for.
func (c *conn) setClient(s int) {
	if c.client >= 0 {
		return
	}
	c.client = s
	for i := range c.sides {
		if fr := &c.sides[i].fr; fr.wantHello != 0 {
			fr.wantHello = helloServer
			if i == s {
				fr.wantHello = helloClient
			}
		}
	}
}

// Accept implements reassembly.Stream. It sees every packet before the
// reassembly does: roles, starts, FIN and RST are read here.
func (c *conn) Accept(tcp *layers.TCP, _ gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	if c.finished {
		return false
	}
	s := sideOf(dir)
	sd := &c.sides[s]
	// ci carries the timeouts' clock; the duration is the capture's.
	if c.first.IsZero() {
		c.first = c.a.ts
	}
	if c.a.ts.After(c.last) {
		c.last = c.a.ts
	}
	if !sd.seen {
		sd.seen = true
		switch {
		case tcp.SYN && !tcp.ACK:
			sd.knownStart = true
			sd.start, sd.started = tcp.Seq+1, true
			c.setClient(s)
		case tcp.SYN:
			sd.knownStart = true
			sd.start, sd.started = tcp.Seq+1, true
			c.setClient(1 - s)
		case nextSeq < 0:
			sd.start, sd.started = tcp.Seq, true
			// The capture missed this side's SYN: start at this segment and
			// look for a record boundary and a new handshake.
			*start = true
			sd.fr.state = stateScan
			sd.fr.midstream = func() bool { return c.midstream(s) }
			sd.fr.wantHello = helloClient | helloServer
			if c.client >= 0 {
				sd.fr.wantHello = helloServer
				if s == c.client {
					sd.fr.wantHello = helloClient
				}
			}
		}
	}
	sd.noteAhead(tcp.Seq, len(tcp.Payload))
	if tcp.RST {
		if c.closedBy < 0 {
			c.closedBy, c.reset = s, true
		}
		c.a.resets = append(c.a.resets, c)
	}
	if tcp.FIN && !sd.fin {
		sd.fin = true
		if c.closedBy < 0 {
			c.closedBy = s
		}
	}
	return true
}

// ReassembledSG implements reassembly.Stream: in-order bytes of one side,
// possibly after a gap.
func (c *conn) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	if c.finished {
		return
	}
	dir, _, _, skip := sg.Info()
	s := sideOf(dir)
	sd := &c.sides[s]
	frame := c.a.frame
	if pc, ok := ac.(*pktCtx); ok {
		frame = pc.frame
	}
	n, _ := sg.Lengths()
	sd.consumed += int64(max(skip, 0)) + int64(n)
	data := sg.Fetch(n)
	if fill := sd.fill; fill > 0 && fill <= n {
		// The analyzer's filler for lost bytes: a gap, not data.
		sd.fill = 0
		resume := 0
		if fill < n {
			resume = frameOf(sg.CaptureInfo(fill))
		}
		if resume == 0 {
			resume = frame
		}
		c.gap(s, int64(fill), resume)
		data = data[fill:]
		n -= fill
	}
	if skip > 0 {
		// The first bytes after the gap may have waited out of order: name
		// the frame they came in, not the one that released them.
		resume := frameOf(sg.CaptureInfo(0))
		if resume == 0 {
			resume = frame
		}
		c.gap(s, int64(skip), resume)
	}
	if n == 0 {
		return
	}
	if sd.bytes == 0 && sd.knownStart && c.pro == nil && c.connect == "" && c.sides[1-s].bytes == 0 && !c.fedAny {
		// The connection's first bytes: TLS, a proxy's CONNECT, or
		// plaintext TLS may follow.
		switch {
		case s == c.client && bytes.HasPrefix(data, []byte("CONNECT ")):
			c.expectConnect(s)
		case s == c.client && sslv2Start(data):
			sd.fr.sslv2 = true
		case !looksLikeTLS(data) && sd.fr.state == stateAligned:
			c.startPrologue()
		}
	}
	sd.bytes += int64(n)
	sd.lastFrame = frame
	c.frame = frame
	sd.fr.push(data)
}

// ReassemblyComplete implements reassembly.Stream: both sides ended (FIN,
// or a flush of an idle or unfinished connection).
func (c *conn) ReassemblyComplete(reassembly.AssemblerContext) bool {
	c.finish("")
	return true
}

// gap handles n bytes of side s that the capture lost.
func (c *conn) gap(s int, n int64, frame int) {
	sd := &c.sides[s]
	from := sd.fr.offset
	info := sd.fr.gap(n)
	where := fmt.Sprintf("capture gap: %d bytes of the %s's stream missing from byte %d (after frame %d, resuming in frame %d)",
		n, c.role(s), from, sd.lastFrame, frame)
	// Before a side's first hello (a stream whose start was not captured)
	// nothing is read from it, so a loss there costs nothing, unless the
	// other side already started a handshake this one belongs to.
	if info.prolog {
		c.pro.lost[s] = true
	}
	if info.harmless || c.parser == nil && sd.fr.wantHello != 0 {
		c.note(where + "; no handshake data was lost")
		return
	}
	c.note(where)
	if len(c.gaps) < maxNotes {
		c.gaps = append(c.gaps, where+": the records there were not read, so this handshake is incomplete")
	}
}

// guessClient picks the client side when no SYN or hello said: services
// listen on low ports.
func (c *conn) guessClient() int {
	if c.ends[1].Port() > c.ends[0].Port() {
		return 1
	}
	return 0
}

// meta is who and where, as the proxy's events say it: the client's
// address, and the server's as the target.
func (c *conn) meta() event.Meta {
	cl := c.client
	if cl < 0 {
		// Never resolved (not TLS, no SYN).
		cl = c.guessClient()
	}
	m := event.Meta{
		ConnID: c.a.idPfx + strconv.Itoa(c.stream), Mode: event.ModeAnalyze,
		ClientAddr: c.ends[cl].String(), Target: c.ends[1-cl].String(),
		CommunityID: communityid.TCP(0, c.ends[0], c.ends[1]),
	}
	if c.connect != "" {
		m.Target = c.connect
	}
	switch {
	case c.pro != nil:
		m.AppProtocol = c.pro.name()
	case c.connect != "":
		m.AppProtocol = "http-connect"
	default:
		m.AppProtocol = c.alpnProto
	}
	return m
}

// missingSide says which side of a TLS connection is not in the capture
// at all ("" when both were read): one direction captured (a SPAN port
// of one direction, asymmetric routing), or the capture started after
// that side had sent its part of the handshake.
func (c *conn) missingSide() string {
	for _, dir := range []handshake.Direction{handshake.FromClient, handshake.FromServer} {
		if c.fed[dir] == 0 && c.fed[1-dir] > 0 {
			who, what := "client", "its ClientHello and Certificate"
			if dir == handshake.FromServer {
				who, what = "server", "its hello, CertificateRequest and answer"
			}
			return fmt.Sprintf("the %s's side of this connection is missing from the capture (no TLS record from it was read): %s were not seen, so what it sent is unknown; capture both directions", who, what)
		}
	}
	return ""
}

// finish ends the connection: handshakes still open end (partial), then
// its closed event. reason "" derives it from the FIN or RST seen.
func (c *conn) finish(reason string) {
	if c.finished {
		return
	}
	c.finished = true
	if reason == "" {
		reason = c.closeReason()
	}
	if c.entry.conn == c {
		c.entry.conn = nil
		c.entry.idle = reason == "idle timeout"
		if c.client >= 0 {
			c.entry.client = c.ends[c.client]
		}
	}
	c.endPrologue()
	for i := range c.sides {
		c.sides[i].fr.endScan()
	}
	var obs handshake.Observation
	if c.parser != nil {
		for _, h := range c.parser.Close() {
			c.handshake(h)
		}
		obs = c.parser.Observation()
	}
	ev := event.NewClosed(c.meta(), obs)
	cl := c.client
	if cl < 0 {
		cl = c.guessClient()
	}
	// A proxy's CONNECT and answer are not the tunnel's bytes.
	ev.BytesUp = c.sides[cl].bytes - c.sides[cl].fr.tunnel
	ev.BytesDown = c.sides[1-cl].bytes - c.sides[1-cl].fr.tunnel
	if p := c.pro; p != nil {
		if p.proto.isProxy() {
			ev.BytesUp -= c.sides[cl].fr.plain
			ev.BytesDown -= c.sides[1-cl].fr.plain
		}
		if !c.fedAny && ev.NotTLS == "" && p.proto != protoUnknown && p.proto != protoPlain {
			ev.NotTLS = p.notTLS()
		}
	}
	ev.SetDuration(c.last.Sub(c.first))
	ev.Reason = reason
	ev.Conclude(&c.verdict)
	ev.Errors = append(slices.Clip(obs.Errors), c.notes...)
	for i := range c.sides {
		if d := c.sides[i].fr.dropped; d > 0 && !c.sides[i].knownStart && c.entry.gen == 1 {
			ev.Errors = append(ev.Errors, fmt.Sprintf("the capture starts after this connection began: %d bytes of the %s's stream before the first handshake were not read", d, c.role(i)))
		}
	}
	if m := c.missingSide(); m != "" {
		ev.Errors = append(ev.Errors, m)
	}
	if c.truncated > 0 {
		ev.Errors = append(ev.Errors, fmt.Sprintf("%d segments were cut short by the capture's snap length: capture again with the full packet size (tcpdump -s 0)", c.truncated))
	}
	if !c.fedAny && ev.NotTLS == "" && (c.sides[0].bytes > 0 || c.sides[1].bytes > 0) {
		ev.NotTLS = "no TLS record boundary found in the captured bytes"
	}
	ev.PCAP = &event.PCAPRef{Stream: c.stream}
	if c.fedAny && ev.NotTLS == "" && !c.countedTLS {
		c.countedTLS = true
		c.a.stats.TLSConnections++
	}
	c.a.deliver(c, Event{Time: c.a.now, Stream: c.stream, Closed: ev})
	c.parser = nil
	c.sides[0].fr, c.sides[1].fr = framer{state: stateOff}, framer{state: stateOff}
}

func (c *conn) closeReason() string {
	if c.closedBy >= 0 {
		who := "client"
		if c.client >= 0 && c.closedBy != c.client || c.client < 0 && c.closedBy == 1 {
			who = "server"
		}
		if c.reset {
			return who + " reset"
		}
		return who + " closed"
	}
	if c.a.closing != "" {
		return c.a.closing
	}
	return "capture ended"
}
