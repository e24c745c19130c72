package logging

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestHubCoreWritesTheLogLine: what the page receives is the line the log
// got, byte for byte, for the page's events only.
func TestHubCoreWritesTheLogLine(t *testing.T) {
	hub := NewHub(10, 0)
	var stdout bytes.Buffer
	level := zap.NewAtomicLevel()
	log, closeLog, err := New(Options{Format: "json", Level: "info", Stdout: &stdout, Atomic: &level, Cores: []zapcore.Core{hub.Core(level)}})
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
// bound, the newest always, the evictions counted.
func TestHubByteBound(t *testing.T) {
	hub := NewHub(100, 250)
	for i := range 10 {
		hub.Publish(fmt.Appendf(nil, `{"n":%d,"issuers":"%s"}`, i, strings.Repeat("x", 90)))
	}
	backlog, s := hub.Subscribe(0)
	s.Close()
	if len(backlog) != 2 || backlog[0].ID != 9 || backlog[1].ID != 10 || hub.Evicted() != 8 {
		t.Errorf("kept %v, evicted %d; want 9 and 10 (2 x 104 bytes within 250), 8 evicted", backlog, hub.Evicted())
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

// BenchmarkHubCore is what the page adds to a handshake event with a 60 KB
// issuer list while no page is open: encoding the line once more and
// keeping a copy in the ring.
func BenchmarkHubCore(b *testing.B) {
	list := preEncodedList(`["` + strings.Repeat("CN=certlens test CA 001,OU=Client Certificate Issuer List Size Test", 900) + `"]`)
	hub := NewHub(0, 0)
	log := zap.New(hub.Core(zap.InfoLevel))
	b.ReportAllocs()
	b.SetBytes(int64(len(list)))
	for b.Loop() {
		log.Info("handshake", zap.String("conn_id", "1"), zap.Reflect("issuers", list))
	}
}
