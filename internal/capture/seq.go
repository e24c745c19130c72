package capture

// Sequence tracking: where each side's stream starts, what the reassembly
// passed on, and which segments wait beyond a loss, so that bytes the
// capture missed are named and skipped, not read as records.

import ()

// side is one direction of the connection, by sender.
type side struct {
	fr         framer
	bytes      int64
	lastFrame  int // the last frame that delivered bytes
	seen       bool
	knownStart bool // its SYN was seen: the stream starts at a record boundary
	fin        bool
	// start is the sequence number of the stream's first byte, consumed
	// how many bytes of it the reassembly has passed on (or skipped): start
	// + consumed is its next expected sequence number.
	start    uint32
	started  bool
	consumed int64
	// ahead are segments seen beyond the next expected byte (waiting in
	// the reassembly), lowest first; fill is the length of a filler the
	// analyzer just injected for bytes the capture lost.
	ahead []seqRange
	fill  int
}

type seqRange struct{ from, to uint32 }

// maxAhead bounds the ranges remembered per side; only the lowest matter.
const maxAhead = 64

func (sd *side) next() uint32 { return sd.start + uint32(sd.consumed) }

// after reports whether sequence number a comes after b, modulo 2^32.
func after(a, b uint32) bool { return int32(a-b) > 0 }

// noteAhead remembers a segment that arrived beyond the next expected byte.
func (sd *side) noteAhead(seq uint32, n int) {
	if !sd.started || n == 0 || !after(seq, sd.next()) {
		return
	}
	r := seqRange{seq, seq + uint32(n)}
	i := 0
	for i < len(sd.ahead) && after(r.from, sd.ahead[i].from) {
		i++
	}
	if len(sd.ahead) >= maxAhead && i >= len(sd.ahead) {
		return
	}
	sd.ahead = append(sd.ahead, seqRange{})
	copy(sd.ahead[i+1:], sd.ahead[i:])
	sd.ahead[i] = r
	if len(sd.ahead) > maxAhead {
		sd.ahead = sd.ahead[:maxAhead]
	}
}

// lost returns how many bytes from the next expected one the capture lost,
// given that the peer acknowledged everything before ack: acknowledged
// bytes reached the peer, so if they are not here the capture missed them.
// It stops at the first segment waiting beyond the gap.
func (sd *side) lost(ack uint32) int {
	if !sd.started {
		return 0
	}
	next := sd.next()
	for len(sd.ahead) > 0 && !after(sd.ahead[0].to, next) {
		sd.ahead = sd.ahead[1:]
	}
	end := ack
	if len(sd.ahead) > 0 && after(end, sd.ahead[0].from) {
		end = sd.ahead[0].from
	}
	if !after(end, next) {
		return 0
	}
	return int(end - next)
}
