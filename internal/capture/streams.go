package capture

import (
	"hash/maphash"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// tuple identifies a TCP connection whichever way a packet goes: a is the
// lesser endpoint.
type tuple struct{ a, b netip.AddrPort }

func newTuple(src, dst netip.AddrPort) (t tuple, side int) {
	if src.Compare(dst) <= 0 {
		return tuple{src, dst}, 0
	}
	return tuple{dst, src}, 1
}

// entry is Wireshark's TCP conversation for a tuple: the stream index it
// gave, and what it needs to tell a new connection on the same ports
// (port reuse) from a retransmission.
type entry struct {
	stream int
	// base is the first sequence number seen from each side (tuple.a,
	// tuple.b), as Wireshark's tcp_analyze_sequence_number keeps it: the
	// SYN's, or one less than the first segment's when no SYN was seen.
	base    [2]uint32
	baseSet [2]bool
	last    time.Time
	// selected: the filter lets the connection through.
	selected bool
	// conn is the connection being read, nil before its first packet
	// and once it ended; gen counts the conns the stream has had (a stream
	// that goes on after a RST or an idle flush is read anew).
	conn *conn
	gen  uint32
	// client is the client's endpoint, once known, for a conn read anew.
	client netip.AddrPort
	// idle: the last conn ended for lack of packets, not by FIN or RST:
	// the connection may well go on, so the entry is kept longer.
	idle bool
	// closing: a FIN (with ACK) or a RST was seen in the conversation,
	// Wireshark's TCP_COMPLETENESS_FIN and _RST: a SYN after it opens a
	// new stream even with the same sequence number.
	closing bool
}

// streamTable numbers TCP connections as Wireshark does (tcp.stream): in
// order of first appearance, with a new number when a SYN, or a SYN+ACK
// whose SYN was not seen, arrives on known ports with a sequence number
// other than that side's base, or after the conversation saw a FIN or a
// RST: Wireshark's tests for port reuse (packet-tcp.c, dissect_tcp, since
// 4.2; 4.0 numbered a SYN after a RST or FIN with the old sequence number
// in the old stream, and read the new connection's data as
// retransmissions).
type streamTable struct {
	m    map[tuple]*entry
	next int
	// past keeps the conversations swept out of m, in 24 bytes each, keyed
	// by a hash of their tuple: Wireshark never forgets a conversation, so
	// a packet on the same ports an hour later (a pooled connection that
	// was idle, a late retransmission) must find its number, or every
	// later stream would be numbered one off.
	past     map[uint64]pastEntry
	seed     maphash.Seed
	pastFull int // conversations forgotten because past was full
}

func newStreamTable() streamTable {
	return streamTable{m: map[tuple]*entry{}, past: map[uint64]pastEntry{}, seed: maphash.MakeSeed()}
}

// maxPast bounds the conversations remembered in compact form (some 300 MB
// at most): beyond it, stream numbers may drift from Wireshark's, and the
// statistics say so.
const maxPast = 1 << 23

// pastEntry is an entry whose connection has ended, as much of it as
// numbering and reading later packets need.
type pastEntry struct {
	stream, gen uint32
	base        [2]uint32
	flags       uint8
}

const (
	pastBaseA uint8 = 1 << iota
	pastBaseB
	pastClosing
	pastIdle
	pastSelected
	pastClientKnown
	pastClientB
)

// lookup returns the conversation of a segment and whether it was created
// by this segment (a new stream), after updating the base sequence
// numbers; replaced is the conversation a new one took the ports of.
func (st *streamTable) lookup(src, dst netip.AddrPort, tcp *layers.TCP, now time.Time) (e *entry, side int, created bool, replaced *entry) {
	t, side := newTuple(src, dst)
	e = st.m[t]
	if e == nil {
		e = st.restore(t)
	}
	if e != nil && tcp.SYN && e.baseSet[side] && (tcp.Seq != e.base[side] || e.closing) {
		replaced, e = e, nil
	}
	if e == nil {
		e = &entry{stream: st.next}
		st.next++
		st.m[t] = e
		created = true
	}
	if !e.baseSet[side] {
		e.base[side], e.baseSet[side] = tcp.Seq, true
		if !tcp.SYN {
			e.base[side] = tcp.Seq - 1
		}
	}
	if !e.baseSet[1-side] && tcp.ACK {
		// The other side's first sequence number is what this one
		// acknowledges first, as far as the capture tells.
		e.base[1-side], e.baseSet[1-side] = tcp.Ack-1, true
	}
	if tcp.RST || tcp.FIN && tcp.ACK {
		e.closing = true
	}
	e.last = now
	return e, side, created, replaced
}

// sweep moves conversations whose connection has ended to the compact
// past: after cleanTTL without a packet when it ended by FIN or RST (late
// retransmissions and ACKs come within that), after idleTTL when it was
// ended for being idle or was left out by the filter.
func (st *streamTable) sweep(now time.Time, cleanTTL, idleTTL time.Duration) {
	for t, e := range st.m {
		ttl := cleanTTL
		if e.idle || !e.selected {
			// Not known to have ended (a connection the filter leaves out
			// is not followed): it may go on after a long silence.
			ttl = idleTTL
		}
		if e.conn == nil && now.Sub(e.last) > ttl {
			delete(st.m, t)
			st.forget(t, e)
		}
	}
}

func (st *streamTable) forget(t tuple, e *entry) {
	if len(st.past) >= maxPast {
		st.pastFull++
		return
	}
	p := pastEntry{stream: uint32(e.stream), gen: e.gen, base: e.base}
	for _, f := range []struct {
		on   bool
		flag uint8
	}{{e.baseSet[0], pastBaseA}, {e.baseSet[1], pastBaseB}, {e.closing, pastClosing}, {e.idle, pastIdle},
		{e.selected, pastSelected}, {e.client.IsValid(), pastClientKnown}, {e.client == t.b, pastClientB}} {
		if f.on {
			p.flags |= f.flag
		}
	}
	st.past[maphash.Comparable(st.seed, t)] = p
}

// restore brings a conversation back from the past, nil if there is none.
func (st *streamTable) restore(t tuple) *entry {
	h := maphash.Comparable(st.seed, t)
	p, ok := st.past[h]
	if !ok {
		return nil
	}
	delete(st.past, h)
	e := &entry{stream: int(p.stream), gen: p.gen, base: p.base,
		baseSet:  [2]bool{p.flags&pastBaseA != 0, p.flags&pastBaseB != 0},
		closing:  p.flags&pastClosing != 0,
		idle:     p.flags&pastIdle != 0,
		selected: p.flags&pastSelected != 0,
	}
	if p.flags&pastClientKnown != 0 {
		e.client = t.a
		if p.flags&pastClientB != 0 {
			e.client = t.b
		}
	}
	st.m[t] = e
	return e
}
