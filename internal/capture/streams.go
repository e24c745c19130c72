package capture

import (
	"net/netip"
	"time"
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
}

// streamTable numbers TCP connections as Wireshark does (tcp.stream): in
// order of first appearance, with a new number when a SYN (without ACK)
// arrives on known ports with a sequence number other than that side's
// base, Wireshark's test for port reuse (packet-tcp.c, dissect_tcp).
type streamTable struct {
	m    map[tuple]*entry
	next int
}

// lookup returns the conversation of a segment and whether it was created
// by this segment (a new stream), after updating the base sequence numbers.
func (st *streamTable) lookup(src, dst netip.AddrPort, seq uint32, syn, ack bool, now time.Time) (e *entry, side int, created bool, replaced *entry) {
	t, side := newTuple(src, dst)
	e = st.m[t]
	if e != nil && syn && !ack && e.baseSet[side] && seq != e.base[side] {
		replaced, e = e, nil
	}
	if e == nil {
		e = &entry{stream: st.next}
		st.next++
		st.m[t] = e
		created = true
	}
	if !e.baseSet[side] {
		e.base[side], e.baseSet[side] = seq, true
		if !syn {
			e.base[side] = seq - 1
		}
	}
	e.last = now
	return e, side, created, replaced
}

// sweep forgets conversations whose connection has ended: after cleanTTL
// without a packet when it ended by FIN or RST (late retransmissions and
// ACKs come within that), after idleTTL when it was ended for being idle or
// was left out by the filter.
// Wireshark never forgets, so a packet arriving later on the same ports
// without a SYN gets a new number here; by then it is a stray, and
// forgetting keeps memory bounded.
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
		}
	}
}
