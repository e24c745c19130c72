package proxy

import (
	"crypto/tls"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func TestCertCache(t *testing.T) {
	c := newCertCache(2)
	var signed atomic.Int32
	gen := func(host string) func() (*tls.Certificate, error) {
		return func() (*tls.Certificate, error) {
			signed.Add(1)
			return &tls.Certificate{Certificate: [][]byte{[]byte(host)}}, nil
		}
	}
	fetch := func(host string) string {
		cert, err := c.Fetch(host, gen(host))
		if err != nil {
			t.Fatal(err)
		}
		return string(cert.Certificate[0])
	}
	// Concurrent connections to a new host sign it once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := fetch("a.test"); got != "a.test" {
				t.Errorf("got %q", got)
			}
		})
	}
	wg.Wait()
	if n := signed.Load(); n != 1 {
		t.Errorf("signed %d times for one host", n)
	}
	fetch("b.test")
	fetch("a.test") // a is now the most recent
	fetch("c.test") // evicts b
	if c.Len() != 2 {
		t.Errorf("Len %d, want the bound 2", c.Len())
	}
	before := signed.Load()
	fetch("a.test")
	if signed.Load() != before {
		t.Error("the most recently used host was evicted")
	}
	fetch("b.test")
	if signed.Load() != before+1 {
		t.Error("the least recently used host was kept")
	}
	for i := range 100 {
		fetch(strconv.Itoa(i))
	}
	if c.Len() != 2 {
		t.Errorf("Len %d after 100 hosts", c.Len())
	}
}
