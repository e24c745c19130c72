package proxy

import (
	"sync/atomic"
	"testing"
	"time"
)

// Memory goes back to the OS once the proxy has been without tunnels for
// a whole quiet period (a second; two here, so that a stall of the test
// machine cannot pass for one), not each period while a client keeps
// opening them.
func TestReleaseAfterAQuietSecond(t *testing.T) {
	addr := tcpServer(t, echo)
	proxyAddr, s, ev := startServer(t, Options{WatchRenegotiation: true})
	var released atomic.Int32
	s.release = func() { released.Add(1) }
	s.quiet = 2 * time.Second
	tunnelOnce := func() {
		t.Helper()
		c, err := dialVia(proxyAddr, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitReleased := func(want int32, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); released.Load() < want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("released %d times %s after the last tunnel, want %d", released.Load(), within, want)
			}
		}
	}

	tunnelOnce()
	ev.waitClosed(t, 1)
	waitReleased(1, 5*time.Second)

	// A tunnel every 200 ms or so for 5 s: never a quiet period.
	for i := range 25 {
		tunnelOnce()
		ev.waitClosed(t, 2+i)
		time.Sleep(200 * time.Millisecond)
		if n := released.Load(); n != 1 {
			t.Fatalf("released %d times while tunnels kept coming", n)
		}
	}
	waitReleased(2, 6*time.Second)
	time.Sleep(2500 * time.Millisecond)
	if n := released.Load(); n != 2 {
		t.Errorf("released %d times after one quiet spell, want 2", n)
	}
}
