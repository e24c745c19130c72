package capture

// From framer to parser: whole records of each side are fed in capture
// order, the frame that completed each is remembered for the events, and
// the parser's handshakes are diagnosed as they come.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// feed gives whole records of side s to the parser.
func (c *conn) feed(s int, records []byte) {
	if c.client < 0 {
		// Roles unknown (no SYN seen): the first record fed is a hello,
		// which says who is who.
		if len(records) > recordHeaderLen && records[0] == contentHandshake && records[recordHeaderLen] == 2 {
			c.setClient(1 - s)
		} else {
			c.setClient(s)
		}
	}
	dir := c.parserDir(s)
	c.fedAny = true
	if c.sides[s].fr.state != stateRaw {
		// Remember which frame completed each handshake record, for the
		// messages the events point at.
		for rec := records; len(rec) >= recordHeaderLen && len(rec) >= recordLen(rec); rec = rec[recordLen(rec):] {
			c.fed[dir] += int64(recordLen(rec))
			if rec[0] == contentHandshake {
				c.frames[dir].add(c.fed[dir], c.frame)
			}
		}
	} else {
		c.fed[dir] += int64(len(records))
	}
	more := c.parser.Feed(dir, records)
	c.drain()
	if !more {
		c.sides[0].fr.stop()
		c.sides[1].fr.stop()
	}
}

// parserDir starts the parser on first use, one way for a stream read
// from its start or joined in the middle, and returns side s's direction;
// the roles must be known.
func (c *conn) parserDir(s int) handshake.Direction {
	if c.parser == nil {
		c.parser = handshake.NewParser(handshake.Options{StopAfterHandshake: !c.a.opts.WatchRenegotiation, Secrets: c.a.opts.Secrets})
	}
	if s == c.client {
		return handshake.FromClient
	}
	return handshake.FromServer
}

func (c *conn) drain() {
	for _, h := range c.parser.Drain() {
		c.handshake(h)
	}
}

// midstream starts reading side s in the middle of an established
// connection, at an application_data record (its start was not captured).
func (c *conn) midstream(s int) bool {
	if c.client < 0 {
		c.setClient(c.guessClient())
	}
	c.parser.Midstream(c.parserDir(s))
	if other := &c.sides[1-s].fr; other.wantHello != 0 {
		other.joined = true
	}
	c.note(fmt.Sprintf("the %s's stream is read from frame %d on, past its handshake: only a later renegotiation can be seen, encrypted", c.role(s), c.frame))
	return true
}

// handshake emits the event of one handshake.
func (c *conn) handshake(h *handshake.Handshake) {
	if h.ClientHello != nil && c.sni == "" {
		c.sni = h.ClientHello.ServerName
		if slices.Contains(h.ClientHello.ALPN, "postgresql") {
			c.alpnProto = "postgresql"
		}
	}
	if missing := c.missingSide(); len(c.gaps) > 0 || missing != "" {
		// The parser saw whole records only, but not all of them: what it
		// read is true, the handshake is not complete. A side of which
		// nothing was read says nothing about what it sent: a server's
		// flight alone never proves a certificate was sent.
		hc := *h
		hc.Visibility = handshake.VisibilityPartial
		hc.Errors = slices.Clip(h.Errors)
		for _, g := range c.gaps {
			hc.Errors = append(hc.Errors, errors.New(g))
		}
		if missing != "" {
			hc.Errors = append(hc.Errors, errors.New(missing))
		}
		c.gaps = nil
		h = &hc
	}
	opts := c.a.opts.Rules
	opts.Now = c.a.now
	if opts.Now.Year() < 2000 {
		// Captures without real timestamps (synthetic ones, pcapng simple
		// packet blocks) say nothing about when: judge validity now.
		opts.Now = time.Time{}
	}
	e := event.Diagnose(c.meta(), h, rules.Evidence{KeylogSet: c.a.opts.Secrets != nil}, opts)
	ref := &event.PCAPRef{Stream: c.stream}
	frames := event.PCAPFrames{
		CertRequest: c.frames[handshake.FromServer].lookup(h.CertRequestEnd),
		ClientCert:  c.frames[handshake.FromClient].lookup(h.ClientCertEnd),
	}
	if frames != (event.PCAPFrames{}) {
		ref.Frames = &frames
	}
	e.PCAP = ref
	e.Fold(&c.verdict)
	c.a.deliver(c, Event{Time: c.a.now, Stream: c.stream, Handshake: e})
}

// frameRing remembers, for the last handshake records fed in one
// direction, the parser offset just past each and the frame that completed
// it. Handshakes end a few records after their messages, so a few dozen
// entries are plenty; it is allocated on first use, so connections that
// are not TLS cost nothing.
type frameRing struct {
	end   []int64
	frame []int
	n     int // entries written, ever
}

const frameRingSize = 32

func (r *frameRing) add(end int64, frame int) {
	if r.end == nil {
		r.end, r.frame = make([]int64, frameRingSize), make([]int, frameRingSize)
	}
	i := r.n % frameRingSize
	r.end[i], r.frame[i] = end, frame
	r.n++
}

// lookup returns the frame of the record holding byte offset-1 (the last
// byte of a message ending at offset), 0 if unknown.
func (r *frameRing) lookup(offset int64) int {
	if offset <= 0 || r.n == 0 {
		return 0
	}
	lo := max(0, r.n-frameRingSize)
	if lo > 0 && r.end[lo%frameRingSize] >= offset {
		// The message may have ended in a record already forgotten.
		return 0
	}
	for i := lo; i < r.n; i++ {
		if r.end[i%frameRingSize] >= offset {
			return r.frame[i%frameRingSize]
		}
	}
	return 0
}
