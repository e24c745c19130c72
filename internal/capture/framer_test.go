package capture

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// rec builds a TLS record of type typ whose body starts with first and is
// n bytes long.
func rec(typ byte, first byte, n int) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	body := bytes.Repeat([]byte{0xa5}, n)
	if n > 0 {
		body[0] = first
	}
	return append(b, body...)
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// collect runs pushes and gaps on a framer and returns what it emitted;
// every emission must be whole records unless raw.
func collect(t *testing.T, f *framer, ops func(f *framer)) []byte {
	t.Helper()
	var out []byte
	f.emit = func(b []byte) {
		if f.state != stateRaw {
			for r := b; len(r) > 0; r = r[recordLen(r):] {
				if len(r) < recordHeaderLen || len(r) < recordLen(r) {
					t.Fatalf("emitted a partial record: %x", r)
				}
			}
		}
		out = append(out, b...)
	}
	ops(f)
	return out
}

func TestFramerChunkingDoesNotMatter(t *testing.T) {
	stream := join(rec(22, 1, 300), rec(22, 2, 5000), rec(20, 1, 1), rec(22, 20, 40), rec(23, 0, 17000), rec(21, 1, 2))
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var f framer
		got := collect(t, &f, func(f *framer) {
			for rest := stream; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(3000))
				if trial < 5 {
					n = min(len(rest), trial+1) // byte by byte and so on
				}
				f.push(rest[:n])
				rest = rest[n:]
			}
		})
		if !bytes.Equal(got, stream) {
			t.Fatalf("trial %d: emitted %d bytes, want the %d of the stream", trial, len(got), len(stream))
		}
	}
}

func TestFramerGaps(t *testing.T) {
	hs1, hs2, app, hs3 := rec(22, 2, 3000), rec(22, 11, 2000), rec(23, 0, 4000), rec(22, 14, 4)
	stream := join(hs1, hs2, app, hs3)
	off := func(parts ...[]byte) int { return len(join(parts...)) }
	tests := []struct {
		name     string
		from, n  int // the lost range
		want     []byte
		harmless bool
	}{
		{"inside an application_data record: zeros, nothing else changes", off(hs1, hs2) + 100, 500,
			join(hs1, hs2, append(append(append([]byte(nil), app[:100]...), make([]byte, 500)...), app[600:]...), hs3), true},
		{"inside a handshake record: that record is dropped, the next one fed", 1000, 200, join(hs2, app, hs3), false},
		{"to the end of a record: the next one fed", 1000, len(hs1) - 1000, join(hs2, app, hs3), false},
		{"over a record header: found again by scanning", len(hs1) - 10, 20, join(app, hs3), false},
		{"in a header: found again by scanning", len(hs1) + 2, 1, join(app, hs3), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var info gapInfo
			var f framer
			got := collect(t, &f, func(f *framer) {
				f.push(stream[:tt.from])
				info = f.gap(int64(tt.n))
				rest := stream[tt.from+tt.n:]
				for len(rest) > 0 {
					n := min(len(rest), 1448)
					f.push(rest[:n])
					rest = rest[n:]
				}
			})
			// What came before the damaged record was fed already.
			if !bytes.HasSuffix(got, tt.want) || info.harmless != tt.harmless {
				t.Errorf("emitted %d bytes ending %x, want to end with %d bytes; harmless %v", len(got), tail(got), len(tt.want), info.harmless)
			}
			if !tt.harmless && bytes.Contains(got, hs1[:1500]) && tt.from < len(hs1) {
				t.Error("the damaged record was fed")
			}
			if f.offset != int64(len(stream)) {
				t.Errorf("offset %d, want %d", f.offset, len(stream))
			}
		})
	}
}

func tail(b []byte) []byte { return b[max(0, len(b)-8):] }

func TestFramerMidStream(t *testing.T) {
	junk := bytes.Repeat([]byte{0x17, 0x03, 0x03, 0xff, 0xff, 0x41}, 50) // header-like, lengths too large
	chClient := rec(22, 1, 500)
	stream := join(junk, rec(23, 0, 3000)[700:], rec(23, 0, 1000), rec(22, 16, 70), chClient, rec(22, 11, 40))
	var f framer
	f.state, f.wantHello = stateScan, helloClient
	got := collect(t, &f, func(f *framer) {
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 999)
			f.push(rest[:n])
			rest = rest[n:]
		}
	})
	if want := join(chClient, rec(22, 11, 40)); !bytes.Equal(got, want) {
		t.Errorf("emitted %d bytes (%x...), want the ClientHello and what follows (%d bytes)", len(got), got[:min(len(got), 8)], len(want))
	}
	if f.dropped != int64(len(stream)-len(got)) || f.offset != int64(len(stream)) {
		t.Errorf("dropped %d, offset %d; want %d, %d", f.dropped, f.offset, len(stream)-len(got), len(stream))
	}
}

func TestFramerNotTLS(t *testing.T) {
	var f framer
	stream := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	got := collect(t, &f, func(f *framer) { f.push(stream[:3]); f.push(stream[3:]) })
	if !bytes.Equal(got, stream) || f.state != stateRaw {
		t.Errorf("state %d, emitted %q: the parser must see the bytes to say what they are", f.state, got)
	}
}

// TestFramerJoinsEstablished: with a midstream hook, the first whole
// application_data record joins the established connection and everything
// from it on is fed; a framer told the other side joined takes any record.
func TestFramerJoinsEstablished(t *testing.T) {
	junk := bytes.Repeat([]byte{0x17, 0x03, 0x03, 0xff, 0xff, 0x41}, 50)
	tailRecs := join(rec(23, 0, 1000), rec(22, 0, 64), rec(23, 0, 300))
	stream := join(junk, rec(22, 20, 3000)[700:], rec(22, 11, 200), tailRecs)
	for _, joined := range []bool{false, true} {
		calls := 0
		var f framer
		f.state, f.wantHello, f.joined = stateScan, helloClient, joined
		f.midstream = func() bool { calls++; return true }
		got := collect(t, &f, func(f *framer) { f.push(stream) })
		want := tailRecs
		if joined {
			want = join(rec(22, 11, 200), tailRecs)
		}
		if !bytes.Equal(got, want) || calls != 1 {
			t.Errorf("joined %v: emitted %d bytes, hook called %d times; want %d bytes, once", joined, len(got), calls, len(want))
		}
	}
}
