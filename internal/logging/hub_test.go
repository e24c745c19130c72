package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestHubCoreWritesTheLogLine: what the page receives is the line the log
// got, byte for byte, for the page's events only.
func TestHubCoreWritesTheLogLine(t *testing.T) {
	hub := NewHub(10, 0)
	var stdout bytes.Buffer
	level := zap.NewAtomicLevel()
	log, closeLog, err := New(Options{Format: "json", Level: "info", Stdout: &stdout, Atomic: &level, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	log = log.With(zap.String("mode", "observe"))
	log.Info("listening", zap.String("addr", "127.0.0.1:1"))
	log.Warn("handshake", zap.String("sni", `<script>"x"</script>`), zap.Strings("issuers", []string{"CN=a", "CN=b"}))
	log.Debug("connection closed") // below the level: neither the log nor the page
	log.Info("connection closed", zap.String("reason", "eof"))
	closeLog()
	backlog, sub := hub.Subscribe(0)
	defer sub.Close()
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.Contains(l, `"msg":"listening"`) {
			want = append(want, l)
		}
	}
	if len(backlog) != len(want) || len(want) != 2 {
		t.Fatalf("hub has %d lines, the log %d page events (want 2):\n%s", len(backlog), len(want), stdout.String())
	}
	for i, l := range backlog {
		if string(l.JSON) != want[i] || l.ID != uint64(i+1) {
			t.Errorf("line %d: id %d %s\nwant id %d %s", i, l.ID, l.JSON, i+1, want[i])
		}
	}
}

// encodeCounter is a field that counts how often the log encodes it.
type encodeCounter struct{ n *atomic.Int64 }

func (c encodeCounter) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	c.n.Add(1)
	enc.AddString("dn", `CN=<script>"x"</script>,O=\u202e`)
	return nil
}

// hubLines logs the same events through New with opts and the hub, and
// returns what the hub got (as strings) and how many times the events were
// encoded (the counter field is in every event, and in With's context).
func hubLines(t *testing.T, opts Options) ([]string, int64) {
	t.Helper()
	hub := NewHub(10, 0)
	level := zap.NewAtomicLevel()
	opts.Level, opts.Atomic, opts.Hub = "info", &level, hub
	log, closeLog, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	log = log.WithOptions(zap.WithClock(fixedClock{})).With(zap.String("mode", "observe"))
	log.Info("listening", zap.Object("c", encodeCounter{&n}))
	log.Warn("handshake", zap.Object("c", encodeCounter{&n}), zap.Strings("issuers", []string{"CN=a", "CN=\u00e9\t"}), zap.Reflect("list", preEncodedList(`["CN=b"]`)))
	log.Debug("connection closed", zap.Object("c", encodeCounter{&n})) // below the level: neither the log nor the page
	level.SetLevel(zap.DebugLevel)
	log.Debug("connection closed", zap.Object("c", encodeCounter{&n}), zap.Duration("duration", 1500*time.Microsecond))
	closeLog()
	backlog, sub := hub.Subscribe(0)
	sub.Close()
	var got []string
	for _, l := range backlog {
		got = append(got, string(l.JSON))
	}
	return got, n.Load()
}

// TestHubSharesTheLogLine: with the JSON log format the page gets the very
// bytes the log wrote, encoded once for both; with console or ecs it gets
// the same JSON lines all the same, shared with log.file when there is one.
func TestHubSharesTheLogLine(t *testing.T) {
	var stdout bytes.Buffer
	fromHub, encodings := hubLines(t, Options{Format: "json", Stdout: &stdout})
	var want []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if !strings.Contains(l, `"msg":"listening"`) {
			want = append(want, l)
		}
	}
	if len(want) != 2 || strings.Join(fromHub, "\n") != strings.Join(want, "\n") {
		t.Fatalf("json: the hub has\n%s\nthe log's page events are (want 2)\n%s", strings.Join(fromHub, "\n"), strings.Join(want, "\n"))
	}
	if encodings != 3 {
		t.Errorf("json: 3 events logged were encoded %d times, want 3 (once each, for the log and the page)", encodings)
	}
	for _, format := range []string{"console", "ecs"} {
		got, encodings := hubLines(t, Options{Format: format, Stdout: io.Discard})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: the hub has\n%s\nwant the JSON log's lines\n%s", format, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if encodings != 3+2 {
			t.Errorf("%s: encoded %d times, want 5 (3 for %s, 2 for the page)", format, encodings, format)
		}
		file := filepath.Join(t.TempDir(), "certlens.log")
		got, encodings = hubLines(t, Options{Format: format, Stdout: io.Discard, File: file})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s with log.file: the hub has\n%s\nwant the JSON log's lines\n%s", format, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if encodings != 3+3 {
			t.Errorf("%s with log.file: encoded %d times, want 6 (3 for %s, 3 for the file, shared with the page)", format, encodings, format)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(lines) != 3 || lines[1] != want[0] || lines[2] != want[1] {
			t.Errorf("%s: log.file has\n%s\nwant listening and\n%s", format, b, strings.Join(want, "\n"))
		}
	}
}

// TestHubRingAndSlowSubscriber: the ring keeps the newest size events and
// counts what it let go; a subscriber that does not read misses events
// (counted) while Publish returns at once; a late subscriber resumes after
// the ID it last saw.
func TestHubRingAndSlowSubscriber(t *testing.T) {
	hub := NewHub(3, 0)
	_, slow := hub.Subscribe(0)
	defer slow.Close()
	n := subscriberBuffer + 10
	for i := 1; i <= n; i++ {
		hub.Publish(fmt.Appendf(nil, `{"n":%d}`+"\n", i))
	}
	if got := slow.Dropped(); got != 10 {
		t.Errorf("slow subscriber dropped %d, want 10", got)
	}
	if got := hub.Evicted(); got != uint64(n-3) {
		t.Errorf("evicted %d, want %d", got, n-3)
	}
	backlog, s := hub.Subscribe(0)
	s.Close()
	if len(backlog) != 3 || string(backlog[0].JSON) != fmt.Sprintf(`{"n":%d}`, n-2) || backlog[2].ID != uint64(n) {
		t.Errorf("backlog %v, want the last 3 without newlines", backlog)
	}
	backlog, s = hub.Subscribe(uint64(n - 1))
	defer s.Close()
	if len(backlog) != 1 || backlog[0].ID != uint64(n) {
		t.Errorf("resuming after %d: backlog %v, want only %d", n-1, backlog, n)
	}
	hub.Publish([]byte(`{"n":"next"}`))
	if l := <-s.C(); string(l.JSON) != `{"n":"next"}` || l.ID != uint64(n+1) {
		t.Errorf("live line %d %s", l.ID, l.JSON)
	}
}

// TestHubByteBound: lines of long issuer lists are kept within the byte
// bound, the newest always, the evictions counted. What counts is what a
// line holds: its 110 bytes and the eighth kept to spare, 123.
func TestHubByteBound(t *testing.T) {
	hub := NewHub(100, 340)
	for i := range 10 {
		hub.Publish(fmt.Appendf(nil, `{"n":%d,"issuers":"%s"}`, i, strings.Repeat("x", 90)))
	}
	backlog, s := hub.Subscribe(0)
	s.Close()
	if len(backlog) != 2 || backlog[0].ID != 9 || backlog[1].ID != 10 || hub.Evicted() != 8 {
		t.Errorf("kept %v, evicted %d; want 9 and 10 (2 x 123 bytes within 340, 3 are not), 8 evicted", backlog, hub.Evicted())
	}
	hub.Publish([]byte(strings.Repeat("y", 1000)))
	backlog, s = hub.Subscribe(0)
	s.Close()
	if len(backlog) != 1 || backlog[0].ID != 11 {
		t.Errorf("a line over the bound: kept %v, want it alone", backlog)
	}
}

// preEncodedList stands for an event's issuer list, whose JSON the event
// package encodes once per list.
type preEncodedList []byte

func (p preEncodedList) PreEncodedJSON() []byte       { return p }
func (p preEncodedList) MarshalJSON() ([]byte, error) { return p, nil }

// BenchmarkHubCore is what the page adds to the JSON log of a handshake
// event with a 60 KB issuer list while no page is open: nothing (no page),
// keeping a copy of the log's line in the ring (shared, how New feeds
// Options.Hub), and encoding the line once more for the ring (again, how
// the hub was fed before, and still is for a console or ecs log without
// log.file).
func BenchmarkHubCore(b *testing.B) {
	list := preEncodedList(`["` + strings.Repeat("CN=certlens test CA 001,OU=Client Certificate Issuer List Size Test", 900) + `"]`)
	for _, bc := range []struct {
		name string
		opts func(*Hub) Options
	}{
		{"no-page", func(*Hub) Options { return Options{} }},
		{"shared", func(h *Hub) Options { return Options{Hub: h} }},
		{"again", func(h *Hub) Options { return Options{Cores: []zapcore.Core{h.core(zap.InfoLevel)}} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := bc.opts(NewHub(0, 0))
			o.Format, o.Level, o.Stdout = "json", "info", io.Discard
			log, closeLog, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			defer closeLog()
			b.ReportAllocs()
			b.SetBytes(int64(len(list)))
			for b.Loop() {
				log.Info("handshake", zap.String("conn_id", "1"), zap.Reflect("issuers", list))
			}
		})
	}
}

// TestHubReusesOnlyWhatNobodyHas: with no page open, or one that releases
// what it has read, the ring copies each line into the bytes of one it let
// go of, taking no new memory; the lines a subscriber was given (backlog
// or live) and did not release are never written over, even after the
// subscriber has gone and the ring has let them go.
func TestHubReusesOnlyWhatNobodyHas(t *testing.T) {
	hub := NewHub(4, 0)
	// Lines of one length: any line let go of could take any new one.
	mark := func(i int) []byte { return fmt.Appendf(nil, `{"n":%04d,"pad":"%s"}`, i, strings.Repeat("y", 60<<10)) }
	for range 8 {
		hub.Publish(mark(0))
	}
	big := mark(0)
	if n := testing.AllocsPerRun(100, func() { hub.Publish(big) }); n != 0 {
		t.Errorf("publishing to a full ring with no subscriber: %v allocations, want 0", n)
	}
	backlog, sub := hub.Subscribe(0)
	for _, l := range backlog {
		sub.Release(l)
	}
	if n := testing.AllocsPerRun(100, func() { hub.Publish(big); sub.Release(<-sub.C()) }); n != 0 {
		t.Errorf("publishing to a full ring whose subscriber releases what it read: %v allocations, want 0", n)
	}
	sub.Close()
	backlog, sub = hub.Subscribe(0)
	hub.Publish(mark(1))
	live := <-sub.C()
	sub.Close()
	kept := append(backlog, live)
	want := make([]string, len(kept))
	for i, l := range kept {
		want[i] = string(l.JSON)
	}
	for i := range 20 {
		hub.Publish(mark(100 + i))
	}
	for i, l := range kept {
		if string(l.JSON) != want[i] {
			t.Fatalf("line %d, given to a subscriber, was written over after the ring let it go: now %.40q", l.ID, l.JSON)
		}
	}
	backlog, sub = hub.Subscribe(0)
	sub.Close()
	for i, l := range backlog {
		if w := string(mark(116 + i)); string(l.JSON) != w {
			t.Errorf("ring line %d: %.40q, want %.40q", l.ID, l.JSON, w)
		}
	}
}

// TestHubFreeListBoundsWaste: a short line is not copied into the bytes
// of a long one, which would keep memory the byte bound does not count.
func TestHubFreeListBoundsWaste(t *testing.T) {
	var f freeList
	f.put(make([]byte, 0, 60<<10))
	if b := f.get(500); cap(b) > 1000 {
		t.Errorf("a 500-byte line got %d bytes", cap(b))
	}
	if b := f.get(40 << 10); cap(b) != 60<<10 || len(b) != 0 {
		t.Errorf("a 40 KB line got len %d cap %d, want the kept 60 KB", len(b), cap(b))
	}
	b := f.get(40 << 10)
	if cap(b) == 60<<10 {
		t.Errorf("the free list gave its 60 KB twice")
	}
	f.put(b)
	if b2 := f.get(40<<10 + 30); cap(b2) != cap(b) {
		t.Errorf("a line 30 bytes longer than the last got a new slice (cap %d), want the last one's (cap %d)", cap(b2), cap(b))
	}
}
