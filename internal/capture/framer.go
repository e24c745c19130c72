package capture

import (
	"bytes"

	"github.com/certlens/certlens/handshake"
)

// The framer sits between TCP reassembly and the handshake parser, one per
// direction. While the stream is whole it only holds back the start of a
// record until the record is complete, so the parser sees exactly the
// bytes the proxy would have fed it, cut at record boundaries. Its reason
// to exist is what reassembly cannot hide: bytes missing from the capture
// (a dropped segment, a capture started mid-connection). The parser is a
// byte-stream parser that must never see half a record followed by
// unrelated bytes, so the framer drops the damaged record (an
// application_data record, whose body the parser never reads, gets zeros
// in the hole instead) and finds the next record boundary (exactly when the
// damaged record's header was seen, else by scanning for a chain of
// plausible record headers) before it feeds anything again. It also steps
// over the HTTP heads of a proxy's CONNECT tunnel, so that TLS inside the
// tunnel is read as serve reads it.

const (
	recordHeaderLen = handshake.RecordHeaderLen
	// maxRecord is the largest record body TLS allows; the parser rejects
	// longer ones, and so does the scan.
	maxRecord = handshake.MaxRecord
	// maxScan bounds the bytes held while looking for a record boundary:
	// enough for a whole record and the next header, which confirm it.
	maxScan = 2 * (recordHeaderLen + maxRecord)

	// The parser's content types, as bytes to compare with the wire's.
	contentChangeCipherSpec = byte(handshake.ContentChangeCipherSpec)
	contentHandshake        = byte(handshake.ContentHandshake)
	contentApplicationData  = byte(handshake.ContentApplicationData)
	contentHeartbeat        = byte(handshake.ContentHeartbeat)

	helloClient = 1 << 1 // a record starting a ClientHello (handshake type 1)
	helloServer = 1 << 2 // a record starting a ServerHello (handshake type 2)
)

type framerState int

const (
	stateAligned framerState = iota // at a record boundary; pending is a partial record
	stateSkip                       // dropping the rest of a damaged record
	stateScan                       // looking for a record boundary; pending is unscanned data
	stateRaw                        // not TLS (or corrupt): pass everything through
	stateOff                        // the parser wants no more bytes
	stateHead                       // reading an HTTP head (a proxy's CONNECT and its answer)
	stateProlog                     // reading plaintext before TLS (STARTTLS, a database, a proxy's header)
)

// framer frames one direction. emit receives whole records (several at a
// time, never a partial one) except in the raw state.
type framer struct {
	state   framerState
	pending []byte
	skip    int64 // stateSkip: bytes left to drop
	// afterSkip is the state once skip is done: aligned after a damaged
	// record, head after the body of a proxy's refusal.
	afterSkip framerState
	// headPrefix, when set, is how an HTTP head starts where a record could
	// (a CONNECT, a proxy's answer): TLS records never start with a letter.
	headPrefix []byte
	// offset is the stream offset of the next byte pushed, missing bytes
	// included: where in the sender's stream things happened.
	offset int64
	// wantHello, when not 0, is the set of hello records (helloClient,
	// helloServer) the first record fed must be: the stream's start was
	// not captured, and only a new handshake can be parsed from its middle.
	wantHello int
	// midstream, when set, is called instead of dropping the first
	// application_data record while a hello is wanted: the connection is
	// established, and from that record on its records are read as those
	// of one (a later renegotiation is then seen). It says whether to feed.
	midstream func() bool
	// joined: the other side proved the connection established, so any
	// record (an encrypted HelloRequest, say) joins it, not only
	// application data.
	joined bool
	// Counters for the connection's notes.
	dropped int64 // bytes not fed because a record was damaged or before a boundary
	emit    func(records []byte)
	// onHead receives an HTTP head (stateHead) and says what follows it:
	// bytes of a body to skip, and the state after them.
	onHead func(head []byte) (skip int64, next framerState)
	// tunnel counts the bytes of HTTP heads and bodies (not TLS) passed.
	tunnel int64
	// onProlog reads plaintext before TLS (stateProlog): it returns how
	// many bytes at the start of b it read (whole messages of the
	// protocol), and the state after them: stateProlog for more
	// plaintext, stateAligned when a TLS record starts there, stateOff when
	// the connection goes on without TLS.
	onProlog func(b []byte) (n int, next framerState)
	// plain counts the bytes of a plaintext prologue read.
	plain int64
	// sslv2: the client's stream starts with an SSL 2.0-format
	// CLIENT-HELLO, fed as the TLS ClientHello it stands for.
	sslv2 bool
}

// maxProlog bounds the plaintext read before TLS on one side: STARTTLS
// dialogues, database negotiations and proxy headers are a few hundred
// bytes; a connection without TLS is given up past this.
const maxProlog = 32 << 10

// maxHead bounds an HTTP head: a CONNECT and its answer are a few hundred
// bytes; a proxy's authentication challenge a few kilobytes.
const maxHead = 16 << 10

// plausibleHeader is stricter than the parser's own test of a record
// header (handshake.ValidRecordHeader), for finding a boundary in the
// middle of a stream: encrypted bytes often pass that by chance, rarely
// this twice in a row.
func plausibleHeader(h []byte) bool {
	return handshake.ValidRecordHeader(h) && h[0] <= contentApplicationData && h[2] >= 1 && int(h[3])<<8|int(h[4]) >= 1
}

func recordLen(h []byte) int { return recordHeaderLen + (int(h[3])<<8 | int(h[4])) }

// push hands the framer the next bytes of the stream.
func (f *framer) push(data []byte) {
	f.offset += int64(len(data))
	f.process(data)
}

// process consumes bytes already counted in offset.
func (f *framer) process(data []byte) {
	for len(data) > 0 {
		switch f.state {
		case stateOff:
			return
		case stateRaw:
			f.emit(data)
			return
		case stateSkip:
			n := min(f.skip, int64(len(data)))
			f.skip -= n
			if f.afterSkip == stateHead {
				f.tunnel += n
			} else {
				f.dropped += n
			}
			data = data[n:]
			if f.skip == 0 {
				f.state, f.afterSkip = f.afterSkip, stateAligned
			}
		case stateScan:
			data = f.scan(data)
		case stateHead:
			data = f.head(data)
		case stateProlog:
			data = f.prolog(data)
		case stateAligned:
			f.aligned(data)
			return
		}
	}
}

// aligned consumes data from a record boundary (after pending).
func (f *framer) aligned(data []byte) {
	if f.sslv2 {
		f.sslv2Hello(data)
		return
	}
	if len(f.pending) == 0 && f.headPrefix != nil && data[0] == f.headPrefix[0] {
		f.state = stateHead
		f.process(data)
		return
	}
	if len(f.pending) > 0 {
		if len(f.pending) < recordHeaderLen {
			n := min(recordHeaderLen-len(f.pending), len(data))
			f.pending = append(f.pending, data[:n]...)
			data = data[n:]
			if len(f.pending) < recordHeaderLen {
				return
			}
			if !handshake.ValidRecordHeader(f.pending) {
				f.toRaw(data)
				return
			}
		}
		n := min(recordLen(f.pending)-len(f.pending), len(data))
		f.pending = append(f.pending, data[:n]...)
		data = data[n:]
		if len(f.pending) < recordLen(f.pending) {
			return
		}
		f.records(f.pending)
		f.pending = f.pending[:0]
		if f.state != stateAligned {
			f.process(data)
			return
		}
	}
	// Whole records are fed in place, several at a time.
	i := 0
	for i+recordHeaderLen <= len(data) {
		h := data[i : i+recordHeaderLen]
		if !handshake.ValidRecordHeader(h) {
			f.records(data[:i])
			if f.state == stateAligned {
				f.toRaw(data[i:])
			}
			return
		}
		if i+recordLen(h) > len(data) {
			break
		}
		i += recordLen(h)
	}
	f.records(data[:i])
	if f.state != stateAligned {
		f.process(data[i:])
		return
	}
	f.pending = append(f.pending, data[i:]...)
}

// sslv2Hello collects the SSLv2-format ClientHello a client's stream
// starts with and feeds the TLS record it stands for; what follows it is
// TLS records.
func (f *framer) sslv2Hello(data []byte) {
	f.pending = append(f.pending, data...)
	rec, n := handshake.SSLv2ClientHello(f.pending)
	if n == 0 {
		if len(f.pending) >= 2 && len(f.pending) >= 2+(int(f.pending[0]&0x7f)<<8|int(f.pending[1])) {
			// Whole, and not a hello the parser can read: it says so.
			f.sslv2 = false
			f.toRaw(nil)
		}
		return
	}
	f.sslv2 = false
	rest := append([]byte(nil), f.pending[n:]...)
	f.pending = f.pending[:0]
	f.records(rec)
	if len(rest) > 0 && f.state == stateAligned {
		f.process(rest)
	}
}

// records feeds whole records, dropping those before the wanted hello.
func (f *framer) records(data []byte) {
	f.headPrefix = nil
	for f.wantHello != 0 && len(data) > 0 {
		n := recordLen(data)
		if data[0] == contentHandshake && n > recordHeaderLen && data[recordHeaderLen] < 8 &&
			f.wantHello&(1<<data[recordHeaderLen]) != 0 {
			f.wantHello = 0
			break
		}
		// Application data proves the handshake before it is over: what
		// follows is an established connection's, readable by its headers.
		if (data[0] == contentApplicationData || f.joined) && f.midstream != nil && f.midstream() {
			f.wantHello = 0
			break
		}
		f.dropped += int64(n)
		data = data[n:]
	}
	if len(data) > 0 {
		f.emit(data)
	}
}

// toRaw gives up framing: what follows is fed as it is, as the proxy
// would, and the parser decides (not TLS, or a corrupt stream).
func (f *framer) toRaw(rest []byte) {
	f.state = stateRaw
	held := f.pending
	f.pending = nil
	if f.wantHello != 0 {
		// Nothing was fed yet and the start is unknown: raw bytes from the
		// middle of a stream would only make the parser call it not TLS.
		// Scan again; the invalid header in front is not plausible, so the
		// scan moves past it.
		f.state = stateScan
		f.process(append(held, rest...))
		return
	}
	if len(held) > 0 {
		f.emit(held)
	}
	if len(rest) > 0 {
		f.emit(rest)
	}
}

// scan looks for a record boundary in pending+data; it returns what is
// left to push once one is found (the framer is then aligned), or nil.
func (f *framer) scan(data []byte) []byte {
	f.pending = append(f.pending, data...)
	buf := f.pending
	for i := 0; i+recordHeaderLen <= len(buf); i++ {
		if !plausibleHeader(buf[i:]) {
			continue
		}
		next := i + recordLen(buf[i:])
		switch {
		case next+recordHeaderLen <= len(buf):
			if !plausibleHeader(buf[next:]) {
				continue
			}
		case len(buf)-i < maxScan:
			// The next header, which would confirm this one, is not here
			// yet: keep the candidate and wait for more.
			f.dropped += int64(i)
			f.pending = append(f.pending[:0], buf[i:]...)
			return nil
		}
		f.dropped += int64(i)
		rest := append([]byte(nil), buf[i:]...)
		f.pending = f.pending[:0]
		f.state = stateAligned
		return rest
	}
	// No boundary: keep only a tail that may still start a header.
	keep := min(len(buf), recordHeaderLen-1)
	f.dropped += int64(len(buf) - keep)
	f.pending = append(f.pending[:0], buf[len(buf)-keep:]...)
	return nil
}

// endScan, at the end of the stream, takes a record the scan found but
// could not confirm with the next header (a lone server flight, the last
// record of a capture): whole and plausible, it is read.
func (f *framer) endScan() {
	if f.state != stateScan || len(f.pending) < recordHeaderLen || !plausibleHeader(f.pending) || recordLen(f.pending) > len(f.pending) {
		return
	}
	data := f.pending
	f.pending = nil
	f.state = stateAligned
	f.process(data)
}

// head collects an HTTP head; it returns what follows it.
func (f *framer) head(data []byte) []byte {
	start := max(0, len(f.pending)-3)
	f.pending = append(f.pending, data...)
	i := bytes.Index(f.pending[start:], []byte("\r\n\r\n"))
	if i < 0 {
		if len(f.pending) > maxHead {
			f.toRaw(nil)
		}
		return nil
	}
	end := start + i + 4
	head := f.pending[:end]
	rest := append([]byte(nil), f.pending[end:]...)
	f.tunnel += int64(end)
	skip, next := f.onHead(head)
	f.pending = f.pending[:0]
	f.state = next
	if skip > 0 {
		f.state, f.skip, f.afterSkip = stateSkip, skip, next
	}
	return rest
}

// prolog collects plaintext for onProlog; it returns what follows the
// plaintext once the state changed.
func (f *framer) prolog(data []byte) []byte {
	buf := data
	if len(f.pending) > 0 {
		f.pending = append(f.pending, data...)
		buf = f.pending
	}
	n, next := f.onProlog(buf)
	f.plain += int64(n)
	rest := buf[n:]
	if next == stateProlog {
		// In place: append moves rest (which may lie in pending) as
		// copy does, overlap included; a fresh buffer for every segment
		// of a long plaintext dialogue would cost an allocation each.
		f.pending = append(f.pending[:0], rest...)
		return nil
	}
	out := append([]byte(nil), rest...)
	f.pending = f.pending[:0]
	f.state = next
	return out
}

// gapInfo describes what a gap destroyed.
type gapInfo struct {
	// recordType is the content type of the damaged record, 0 when the gap
	// hit a record header (or the framer was not aligned).
	recordType byte
	// harmless: the framer was not feeding the parser anyway.
	harmless bool
	// prolog: the gap hit plaintext before TLS.
	prolog bool
}

// gap tells the framer that n bytes are missing before the next push.
func (f *framer) gap(n int64) gapInfo {
	f.offset += n
	switch f.state {
	case stateOff, stateRaw:
		return gapInfo{harmless: true}
	case stateSkip:
		if n < f.skip {
			f.skip -= n
			return gapInfo{}
		}
		// The loss runs past the damaged record: no boundary is known.
		f.skip = 0
		f.state = stateScan
		return gapInfo{}
	case stateScan:
		f.dropped += int64(len(f.pending))
		f.pending = f.pending[:0]
		return gapInfo{}
	case stateProlog:
		// Plaintext lost: the conn looks for the hello by content.
		f.plain += int64(len(f.pending))
		f.pending = f.pending[:0]
		return gapInfo{harmless: true, prolog: true}
	}
	// Aligned. The record in progress is damaged; when its header was read,
	// its end is the next boundary.
	info := gapInfo{}
	if len(f.pending) >= recordHeaderLen {
		info.recordType = f.pending[0]
		left := int64(recordLen(f.pending) - len(f.pending))
		if info.recordType == contentApplicationData {
			// The parser reads nothing of an application_data record but
			// its header (in TLS 1.3 the encrypted handshake is such
			// records, whose lengths it counts): zeros in place of the
			// lost bytes change nothing it reads.
			fill := min(n, left)
			f.pending = append(f.pending, make([]byte, fill)...)
			if fill == left {
				f.records(f.pending)
				f.pending = f.pending[:0]
			}
			if n <= left {
				info.harmless = true
				return info
			}
			f.state = stateScan
			return info
		}
		f.dropped += int64(len(f.pending))
		f.pending = f.pending[:0]
		switch {
		case n < left:
			f.skip, f.state = left-n, stateSkip
		case n > left:
			f.state = stateScan
		}
		return info
	}
	f.dropped += int64(len(f.pending))
	f.pending = f.pending[:0]
	f.state = stateScan
	return info
}

// stop ends the framer: the parser is done.
func (f *framer) stop() {
	f.state = stateOff
	f.pending = nil
}
