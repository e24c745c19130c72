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
	hub := NewHub(10)
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
	hub := NewHub(3)
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
