package capture

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTCPIdentity: connections are told apart as Wireshark tells them
// apart, on captures written with gopacket whose TCP is odd in the ways
// real captures are: ports reused after a RST or FIN (with a new initial
// sequence number or the same one), a SYN answered by a challenge ACK, then
// a RST and the SYN again, clocks that jump inside a connection. Every
// handshake is read, in the stream Wireshark gives it, and none is cut.
func TestTCPIdentity(t *testing.T) {
	nocert := readTranscript(t, "tls12-3ca-curl-nocert") // 403.7: the client sends an empty Certificate
	cert := readTranscript(t, "tls12-3ca-curl-cert")
	const cl, srv = "10.1.0.1:40000", "10.1.0.2:443"
	tests := []struct {
		name  string
		build func(s *tcpScript)
		// want lists, in order, "stream:verdict" of each handshake.
		want []string
		// streams is how many TCP streams Wireshark numbers.
		streams int
		// reuse: a SYN takes the ports of an ended connection with its
		// old sequence number, which tshark numbers this way from 4.2 on.
		reuse bool
		// oneWay: only the client's direction is captured, so every
		// handshake is partial, saying the server's side is missing.
		oneWay bool
	}{
		{"RST, then a new SYN on the same ports", func(s *tcpScript) {
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(nocert.Chunks)
			c.reset(true)
			c = s.conn(cl, srv, 90000, 95000)
			c.open()
			c.replay(cert.Chunks)
			c.close()
		}, []string{"0:403.7", "1:ok"}, 2, false, false},
		{"RST, then a SYN with the old sequence number", func(s *tcpScript) {
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(nocert.Chunks)
			c.reset(false)
			c = s.conn(cl, srv, 1000, 95000)
			c.open()
			c.replay(cert.Chunks)
			c.close()
		}, []string{"0:403.7", "1:ok"}, 2, true, false},
		{"FIN, then a SYN with the old sequence number", func(s *tcpScript) {
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(cert.Chunks)
			c.close()
			c = s.conn(cl, srv, 1000, 95000)
			c.open()
			c.replay(nocert.Chunks)
			c.close()
		}, []string{"0:ok", "1:403.7"}, 2, true, false},
		{"one direction captured: FIN, then a SYN with the old sequence number", func(s *tcpScript) {
			// Without the server's SYN+ACK, only the SYN says a new
			// connection began.
			c := s.conn(cl, srv, 1000, 5000)
			c.hideServer = true
			c.open()
			c.replay(cert.Chunks)
			c.close()
			c = s.conn(cl, srv, 1000, 95000)
			c.hideServer = true
			c.open()
			c.replay(nocert.Chunks)
			c.close()
		}, []string{"0:unknown", "1:unknown"}, 2, true, true},
		{"SYN, challenge ACK, RST, the SYN again", func(s *tcpScript) {
			// The server still holds an old connection on these ports: it
			// answers the SYN with an ACK of the old one, the client resets
			// that, and its retransmitted SYN opens the new connection.
			c := s.conn(cl, srv, 1000, 5000)
			c.segment(true, flags{syn: true}, nil)
			c.server.seq, c.client.seq = 777777, 424242
			c.segment(false, flags{ack: true}, nil)
			c.segment(true, flags{rst: true}, nil)
			s.sleep(time.Second)
			c = s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(nocert.Chunks)
			c.close()
		}, []string{"1:403.7"}, 2, true, false},
		{"the clock jumps two hours forward inside a handshake", func(s *tcpScript) {
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.send(true, nocert.Chunks[0].Data) // ClientHello
			s.sleep(2 * time.Hour)
			c.replay(nocert.Chunks[1:]) // the server's flight with its request
			c.close()
			c = s.conn("10.1.0.1:40001", srv, 1000, 5000)
			c.open()
			c.replay(cert.Chunks)
			c.close()
		}, []string{"0:403.7", "1:ok"}, 2, false, false},
		{"the clock jumps back an hour inside a handshake", func(s *tcpScript) {
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.send(true, nocert.Chunks[0].Data)
			s.sleep(-time.Hour)
			c.replay(nocert.Chunks[1:])
			c.close()
		}, []string{"0:403.7"}, 1, false, false},
		{"a connection idle for an hour between the handshake and a renegotiation, others going on", func(s *tcpScript) {
			reneg := readTranscript(t, "tls12-renegotiation-sclient")
			c := s.conn(cl, srv, 1000, 5000)
			c.open()
			c.replay(reneg.Chunks[:4])
			// Other connections fill the hour: the idle timeout ends
			// this one, and its renegotiation is read from the middle, in
			// the same stream.
			for i := range 90 {
				s.sleep(40 * time.Second)
				o := s.conn(fmt.Sprintf("10.1.0.9:%d", 30000+i), srv, 1, 2)
				o.open()
				o.close()
			}
			c.replay(reneg.Chunks[4:])
			c.close()
		}, nil, 91, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t)
			tt.build(s)
			path := s.write()
			evs, st := analyzeFile(t, path, Options{WatchRenegotiation: true})
			var got []string
			for _, e := range evs {
				if h := e.Handshake; h != nil {
					got = append(got, fmt.Sprintf("%d:%s", e.Stream, h.Verdict))
					if tt.oneWay {
						if h.Visibility != "partial" || !strings.Contains(strings.Join(h.Errors, " "), "the server's side of this connection is missing from the capture") {
							t.Errorf("stream %d: %s handshake, errors %q: want partial, the server's side missing", e.Stream, h.Visibility, h.Errors)
						}
					} else if h.Visibility != "clear" && h.Visibility != "encrypted" || len(h.Errors) > 0 {
						t.Errorf("stream %d: %s handshake, errors %q", e.Stream, h.Visibility, h.Errors)
					}
				}
			}
			if tt.want != nil && strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("handshakes %v, want %v", got, tt.want)
			}
			if st.Streams != tt.streams {
				t.Errorf("%d streams, want %d", st.Streams, tt.streams)
			}
			if tt.reuse && !tsharkAtLeast(t, 4, 2) {
				t.Logf("tshark before 4.2 keeps this SYN in the old stream; compared with Wireshark 4.2's rule only")
				return
			}
			matchTshark(t, path, evs, st)
		})
	}
}
