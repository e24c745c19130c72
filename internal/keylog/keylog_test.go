package keylog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/handshake"
)

func cr(i int) [32]byte {
	var c [32]byte
	copy(c[:], fmt.Sprintf("%032d", i))
	return c
}

func line(label string, c [32]byte, secretByte byte) string {
	return fmt.Sprintf("%s %x %s\n", label, c, strings.Repeat(fmt.Sprintf("%02x", secretByte), 48))
}

func mustEntry(t *testing.T, l string) handshake.KeyLogEntry {
	t.Helper()
	e, ok, err := handshake.ParseKeyLogLine(strings.TrimSuffix(l, "\n"))
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	return e
}

func TestStoreEvictsLeastRecentlyUsed(t *testing.T) {
	s := NewStore(3)
	for i := range 3 {
		s.Add(mustEntry(t, line(handshake.LabelClientRandom, cr(i), byte(i))))
	}
	if _, ok := s.Lookup(cr(0)); !ok { // 0 is now the most recently used
		t.Fatal("secret 0 missing")
	}
	s.Add(mustEntry(t, line(handshake.LabelClientRandom, cr(3), 3)))
	if _, ok := s.Lookup(cr(1)); ok {
		t.Error("secret 1, the least recently used, was kept")
	}
	for _, i := range []int{0, 2, 3} {
		if sec, ok := s.Lookup(cr(i)); !ok || sec.Master[0] != byte(i) {
			t.Errorf("secret %d: %v %v", i, ok, sec)
		}
	}
	if st := s.Stats(); st.Connections != 3 || st.Evicted != 1 || st.Lines != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestStoreWaitWakesOnTheSecret(t *testing.T) {
	s := NewStore(0)
	ch, cancel := s.Wait(cr(7))
	defer cancel()
	other, cancelOther := s.Wait(cr(8))
	s.Add(mustEntry(t, line(handshake.LabelServerHandshakeTraffic, cr(7), 1)))
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("waiter not woken")
	}
	select {
	case <-other:
		t.Fatal("a waiter for another connection was woken")
	default:
	}
	cancelOther()
	s.Add(mustEntry(t, line(handshake.LabelClientRandom, cr(8), 1)))
	if n := len(s.waiters); n != 0 {
		t.Errorf("%d waiter lists left", n)
	}
}

// TestFollowerLikeTailF walks a key log through what writers and users do
// to it: absent at start, appended half a line at a time, truncated for a
// new browser session, replaced by a new file, and a runaway line.
func TestFollowerLikeTailF(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sslkeys.log")
	s := NewStore(0)
	fl := NewFollower(path, s, nil)
	defer fl.close()
	fl.Poll() // absent: nothing, no error
	appendTo := func(text string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	has := func(i int) bool { _, ok := s.Lookup(cr(i)); return ok }

	l1 := line(handshake.LabelClientRandom, cr(1), 1)
	appendTo("# SSL/TLS secrets log file\n" + l1[:40])
	fl.Poll()
	if has(1) {
		t.Fatal("half a line was used")
	}
	appendTo(l1[40:])
	fl.Poll()
	if !has(1) {
		t.Fatal("the completed line was not read")
	}

	// Truncated and rewritten, shorter than what was read.
	if err := os.WriteFile(path, []byte(line(handshake.LabelClientRandom, cr(2), 2)), 0o600); err != nil {
		t.Fatal(err)
	}
	fl.Poll()
	if !has(2) {
		t.Fatal("the truncated file's new line was not read")
	}

	// Replaced by rename, as log rotation does.
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, []byte(strings.Repeat("x", 2000)+"\n"+line(handshake.LabelClientRandom, cr(3), 3)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	fl.Poll()
	if !has(3) {
		t.Fatal("the replacing file's line was not read")
	}
	if st := s.Stats(); st.BadLines != 1 || st.Lines != 3 {
		t.Errorf("stats %+v, want 3 lines and the runaway one bad", st)
	}
}

// TestFollowerWakesWaiter: with Run watching, a line appended after a
// waiter registered reaches it well inside the default decrypt.wait.
func TestFollowerWakesWaiter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	s := NewStore(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { NewFollower(path, s, nil).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ch, stop := s.Wait(cr(9))
	defer stop()
	time.Sleep(50 * time.Millisecond) // let Run start watching the absent file
	start := time.Now()
	if err := os.WriteFile(path, []byte(line(handshake.LabelClientHandshakeTraffic, cr(9), 9)), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Logf("secret arrived %v after the write", time.Since(start))
	case <-time.After(500 * time.Millisecond):
		t.Fatal("no secret 500ms after the write")
	}
}
