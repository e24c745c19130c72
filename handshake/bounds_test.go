package handshake

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileConn is a connection no real peer produces, that once broke a bound.
type hostileConn struct {
	name string
	conn *conn
	// handshakes is how many handshakes the parser must hand out in all.
	handshakes int
}

// hostileConns are kept in testdata/fuzz/FuzzParser as well (see
// TestFuzzRegressionCorpus): the fuzz target checks the same bounds.
func hostileConns() []hostileConn {
	hello := record(ContentHandshake, clientHello("a.test"))
	return []hostileConn{
		{"client repeats its ClientHello", func() *conn {
			c := &conn{}
			for range 10 {
				c.client(hello)
			}
			return c
		}(), 10},
		{"server repeats its ServerHello", func() *conn {
			c := &conn{}
			c.client(hello)
			for range 10 {
				c.server(record(ContentHandshake, serverHello(0x0303)))
			}
			return c
		}(), 10},
		{"client restarts encrypted handshakes the server never finishes", func() *conn {
			c := &conn{}
			c.client(hello)
			c.server(record(ContentHandshake, append(serverHello(0x0303), message(typeServerHelloDone, nil)...)))
			for range 10 {
				c.client(record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, bytes.Repeat([]byte("f"), 40)), record(ContentHandshake, bytes.Repeat([]byte("h"), 300)))
			}
			return c
		}(), 11},
		{"clear record of the largest size, fed in small pieces", func() *conn {
			c := &conn{}
			c.client(hello)
			filler := bytes.Repeat([]byte("x"), maxCiphertext-4-len(serverHello(0x0303)))
			c.server(record(ContentHandshake, append(serverHello(0x0303), message(typeCertificate, filler)...)))
			return c
		}(), 1},
	}
}

// Hostile peers must not make the parser hold more than its documented
// bounds: a few open handshakes, record buffers of at most maxCiphertext; and
// every handshake it started must still be handed out.
func TestHostileInputStaysBounded(t *testing.T) {
	tests := hostileConns()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range feedModes {
				p := NewParser(Options{})
				rng := rand.New(rand.NewPCG(1, 2))
				n := 0
				for _, ch := range *tt.conn {
					for _, part := range mode.split(rng, ch.data) {
						p.Feed(ch.from, part)
						if len(p.open) > maxOpen {
							t.Fatalf("%s: %d handshakes open at once, limit %d", mode.name, len(p.open), maxOpen)
						}
						for _, s := range p.streams {
							if cap(s.body) > maxCiphertext {
								t.Fatalf("%s: record buffer grew to %d bytes, limit %d", mode.name, cap(s.body), maxCiphertext)
							}
						}
						n += len(p.Drain())
					}
				}
				if n += len(p.Close()); n != tt.handshakes {
					t.Errorf("%s: %d handshakes handed out, want %d", mode.name, n, tt.handshakes)
				}
			}
		})
	}
}

func TestCloseReportsEveryOpenHandshake(t *testing.T) {
	c := &conn{}
	hello := record(ContentHandshake, clientHello("a.test"))
	c.client(hello, hello, hello)
	hs, _ := runAll(t, c, Options{})
	if len(hs) != 3 {
		t.Fatalf("got %d handshakes, want all 3 that were open at Close", len(hs))
	}
	for i, h := range hs {
		if h.Index != i || h.End != EndEOF || h.Visibility != VisibilityPartial {
			t.Errorf("handshake %d: index %d end %s visibility %s", i, h.Index, h.End, h.Visibility)
		}
	}
}

// TestFuzzRegressionCorpus keeps the hostile connections in FuzzParser's
// committed corpus (testdata/fuzz/FuzzParser/regression-*), so that `go test`
// replays them through the fuzz target's invariants too; -update rewrites them.
func TestFuzzRegressionCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParser")
	for _, hc := range hostileConns() {
		name := "regression-" + strings.ReplaceAll(strings.ReplaceAll(hc.name, ",", ""), " ", "-")
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", encodeChunks(hc.conn))
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (err %v): rerun with -update", path, err)
		}
	}
}
