package logging

import (
	"bytes"
	"sync"
	"sync/atomic"

	"go.uber.org/zap/zapcore"
)

// DefaultHubSize is how many events the live page keeps for a browser that
// opens it late, and DefaultHubBytes how much memory they may take: 2,000
// events whose issuer lists are 60 KB each would be 120 MB, so with lists
// that long the ring keeps fewer.
const (
	DefaultHubSize  = 2000
	DefaultHubBytes = 32 << 20
)

// HubMessages are the events the hub keeps: those the page shows. Other
// log lines (config warnings, listening) are not published.
var HubMessages = []string{"handshake", "connection closed"}

// Line is one published event: its JSON line as the log has it, and its
// place in the stream (1 for the first), which a reconnecting browser
// hands back as Last-Event-ID.
type Line struct {
	ID   uint64
	JSON []byte
}

// Hub keeps the most recent events in a bounded ring and hands each new
// one to its subscribers without ever waiting for them: a subscriber whose
// buffer is full misses the event, and the miss is counted. The proxy's
// goroutines publish; a browser on a slow link cannot hold a tunnel.
type Hub struct {
	mu       sync.Mutex
	ring     []slot // ring[(id-1) % len(ring)]
	first    uint64 // ID of the oldest line kept
	last     uint64 // ID of the newest line; 0 before the first
	bytes    int    // held by the lines kept (their capacity: what they take)
	maxBytes int
	subs     map[*Subscription]struct{}
	evicted  atomic.Uint64
	free     freeList
}

// slot is a line of the ring, and how many subscribers were given it and
// have not released it: the bytes of one nobody holds are reused once it
// is let go.
type slot struct {
	Line
	held int
}

// freeList keeps the bytes of a few lines the ring let go of and nobody
// holds, for the next lines to be copied into: with no page open, or pages
// that keep up, the ring then takes no new memory per event (with 60 KB issuer lists,
// allocating, clearing and collecting it was half of what the ring cost
// per event: BenchmarkHubCore).
type freeList struct {
	mu   sync.Mutex
	bufs [][]byte
}

// freeKept bounds the free list: lines are let go of one or two at a time,
// as they come in.
const freeKept = 8

// get returns an empty slice with room for n bytes, reused if one of the
// kept ones fits without wasting more than n: what a short line held of
// a long one's bytes would count against the ring's byte bound.
func (f *freeList) get(n int) []byte {
	f.mu.Lock()
	for i, b := range f.bufs {
		if cap(b) >= n && cap(b) <= 2*n {
			last := len(f.bufs) - 1
			f.bufs[i], f.bufs[last] = f.bufs[last], nil
			f.bufs = f.bufs[:last]
			f.mu.Unlock()
			return b[:0]
		}
	}
	f.mu.Unlock()
	// Room to spare: the next events' lines are as long give or take a
	// few bytes (a timestamp, a port, a duration), and one longer by a
	// byte would not fit in bytes cut to this one.
	return make([]byte, 0, n+n/8)
}

func (f *freeList) put(b []byte) {
	f.mu.Lock()
	if len(f.bufs) < freeKept {
		f.bufs = append(f.bufs, b)
	} else {
		// The oldest goes to the collector; the newest fits what comes
		// next best.
		copy(f.bufs, f.bufs[1:])
		f.bufs[len(f.bufs)-1] = b
	}
	f.mu.Unlock()
}

// NewHub returns a hub that keeps the last size events (DefaultHubSize
// when size <= 0), fewer if they take more than maxBytes
// (DefaultHubBytes when maxBytes <= 0); the newest is always kept.
func NewHub(size, maxBytes int) *Hub {
	if size <= 0 {
		size = DefaultHubSize
	}
	if maxBytes <= 0 {
		maxBytes = DefaultHubBytes
	}
	return &Hub{ring: make([]slot, size), first: 1, maxBytes: maxBytes, subs: map[*Subscription]struct{}{}}
}

// Publish keeps a copy of line (without its newline) and offers it to
// every subscriber.
func (h *Hub) Publish(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	// Copied before the lock: publishers of 60 KB lines do not queue
	// behind each other's copies.
	l := Line{JSON: append(h.free.get(len(line)), line...)}
	h.mu.Lock()
	h.last++
	l.ID = h.last
	if h.last-h.first == uint64(len(h.ring)) {
		h.evict() // the slot's own line, the oldest
	}
	sl := &h.ring[(l.ID-1)%uint64(len(h.ring))]
	*sl = slot{Line: l}
	h.bytes += cap(l.JSON)
	for h.bytes > h.maxBytes && h.first < h.last {
		h.evict()
	}
	for s := range h.subs {
		select {
		case s.ch <- l:
			sl.held++
		default:
			s.dropped.Add(1)
		}
	}
	h.mu.Unlock()
}

// evict lets the oldest line go; h.mu is held.
func (h *Hub) evict() {
	sl := &h.ring[(h.first-1)%uint64(len(h.ring))]
	h.bytes -= cap(sl.JSON)
	if sl.held == 0 {
		h.free.put(sl.JSON)
	}
	*sl = slot{}
	h.first++
	h.evicted.Add(1)
}

// Evicted is how many events the ring has let go of to keep its bound.
func (h *Hub) Evicted() uint64 { return h.evicted.Load() }

// Subscription receives the events published after it began.
type Subscription struct {
	hub     *Hub
	ch      chan Line
	dropped atomic.Uint64
}

// subscriberBuffer is how many events a subscriber may fall behind by
// before it misses some: a burst of handshakes, not a stalled browser.
const subscriberBuffer = 512

// Subscribe returns the kept events newer than after (oldest first) and a
// subscription to those that follow, with nothing lost or repeated
// between the two.
func (h *Hub) Subscribe(after uint64) ([]Line, *Subscription) {
	s := &Subscription{hub: h, ch: make(chan Line, subscriberBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := uint64(len(h.ring))
	first := max(h.first, after+1)
	var backlog []Line
	for id := first; id <= h.last; id++ {
		sl := &h.ring[(id-1)%n]
		sl.held++
		backlog = append(backlog, sl.Line)
	}
	h.subs[s] = struct{}{}
	return backlog, s
}

// C delivers the events.
func (s *Subscription) C() <-chan Line { return s.ch }

// Release says that l (from C or the backlog) is no longer read, once for
// each line: the ring may reuse its bytes once it lets it go. A line never
// released is left to the garbage collector.
func (s *Subscription) Release(l Line) {
	h := s.hub
	h.mu.Lock()
	if l.ID >= h.first && l.ID <= h.last { // else let go of, and not reused
		h.ring[(l.ID-1)%uint64(len(h.ring))].held--
	}
	h.mu.Unlock()
}

// Dropped is how many events this subscriber missed because it was behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	delete(s.hub.subs, s)
	s.hub.mu.Unlock()
}

// core is a zap core that encodes the page's events (HubMessages) as the
// JSON log lines would be and publishes them: for a log that writes no
// JSON (console or ecs to stdout, no log.file), which has no line to share.
func (h *Hub) core(level zapcore.LevelEnabler) zapcore.Core {
	return &hubCore{LevelEnabler: level, enc: zapcore.NewJSONEncoder(jsonConfig()), hub: h}
}

func isHubMessage(msg string) bool {
	for _, m := range HubMessages {
		if msg == m {
			return true
		}
	}
	return false
}

type hubCore struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	hub *Hub
}

// withFields is a clone of enc with fields added, for a core's With.
func withFields(enc zapcore.Encoder, fields []zapcore.Field) zapcore.Encoder {
	enc = enc.Clone()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return enc
}

func (c *hubCore) With(fields []zapcore.Field) zapcore.Core {
	return &hubCore{LevelEnabler: c.LevelEnabler, enc: withFields(c.enc, fields), hub: c.hub}
}

func (c *hubCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) && isHubMessage(e.Message) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *hubCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(e, fields)
	if err != nil {
		return err
	}
	c.hub.Publish(buf.Bytes())
	buf.Free()
	return nil
}

func (c *hubCore) Sync() error { return nil }

// sharingCore is zapcore.NewCore's core for a JSON log destination that
// also hands the page's events to the hub: the line is encoded once, for
// both, not once more for the hub on every handshake (60 KB more to write
// with a long issuer list) whether a page is open or not.
type sharingCore struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	out zapcore.WriteSyncer
	hub *Hub
}

func newSharingCore(enc zapcore.Encoder, out zapcore.WriteSyncer, level zapcore.LevelEnabler, hub *Hub) zapcore.Core {
	return &sharingCore{LevelEnabler: level, enc: enc, out: out, hub: hub}
}

func (c *sharingCore) With(fields []zapcore.Field) zapcore.Core {
	return &sharingCore{LevelEnabler: c.LevelEnabler, enc: withFields(c.enc, fields), out: c.out, hub: c.hub}
}

func (c *sharingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write publishes even when the log's write failed: the page is a
// destination of its own, and the failure is still returned to zap.
func (c *sharingCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(e, fields)
	if err != nil {
		return err
	}
	_, err = c.out.Write(buf.Bytes())
	if isHubMessage(e.Message) {
		c.hub.Publish(buf.Bytes())
	}
	buf.Free()
	if err != nil {
		return err
	}
	if e.Level > zapcore.ErrorLevel {
		// As zap's own core: the process may be about to exit.
		return c.Sync()
	}
	return nil
}

func (c *sharingCore) Sync() error { return c.out.Sync() }
