package handshake

import (
	"encoding/json"
	"testing"
)

// encodeChunks turns a scripted connection into the fuzz input format: a
// control byte (high bit: direction, low 7 bits: length-1) before each piece.
func encodeChunks(c *conn) []byte {
	var out []byte
	for _, ch := range *c {
		data := ch.data
		for len(data) > 0 {
			n := min(len(data), 128)
			ctl := byte(n - 1)
			if ch.from == FromServer {
				ctl |= 0x80
			}
			out = append(append(out, ctl), data[:n]...)
			data = data[n:]
		}
	}
	return out
}

func seedConns() []*conn {
	var dns [][]byte
	for i := range 80 {
		dns = append(dns, dnDER(i))
	}
	tls13 := &conn{}
	tls13.client(record(ContentHandshake, clientHello("a.test", 0x0304)))
	tls13.server(record(ContentHandshake, serverHello(0x0304)), record(ContentApplicationData, make([]byte, 40)))
	tls13.client(record(ContentApplicationData, make([]byte, 53)))
	reneg := mutualTLS12(16384, dns[:2], []byte("c"))
	reneg.client(record(ContentApplicationData, make([]byte, 30)))
	reneg.server(record(ContentHandshake, make([]byte, 36)))
	return []*conn{mutualTLS12(16384, dns[:3], []byte("leaf")), mutualTLS12(1000, dns), tls13, reneg}
}

// FuzzParser drives the whole parser, both directions interleaved, and checks
// the invariants hostile input must not break: no panic, bounded buffers,
// every handshake handed out with an end.
func FuzzParser(f *testing.F) {
	for _, c := range seedConns() {
		f.Add(encodeChunks(c))
	}
	for _, c := range transcriptConns(f) {
		f.Add(encodeChunks(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser(Options{MaxMessage: 70000})
		var hs []*Handshake
		for len(data) > 0 {
			ctl := data[0]
			n := min(int(ctl&0x7f)+1, len(data)-1)
			from := FromClient
			if ctl&0x80 != 0 {
				from = FromServer
			}
			p.Feed(from, data[1:1+n])
			data = data[1+n:]
			for i := range p.streams {
				s := &p.streams[i]
				if cap(s.body) > maxCiphertext || len(s.msg) > 4+p.opts.MaxMessage {
					t.Fatalf("buffers grew past their caps: body %d msg %d", cap(s.body), len(s.msg))
				}
			}
			if len(p.open) > 4 {
				t.Fatalf("%d handshakes open at once", len(p.open))
			}
			hs = append(hs, p.Drain()...)
		}
		hs = append(hs, p.Close()...)
		for _, h := range hs {
			if h.End == "" || h.Visibility == "" {
				t.Fatalf("handshake %d handed out without end/visibility", h.Index)
			}
			if _, err := json.Marshal(h); err != nil {
				t.Fatal(err)
			}
		}
		_ = p.Observation()
	})
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(clientHello("a.test", 0x0304, 0x0303)[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := ParseClientHello(body); err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	f.Add(serverHello(0x0304)[4:])
	f.Add(serverHello(0x0303)[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := ParseServerHello(body); err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	f.Add(certificate12([]byte("leaf"), []byte("ca"))[4:], false)
	f.Add([]byte{0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, body []byte, tls13 bool) {
		m, err := ParseCertificate(body, tls13)
		if err == nil && (m == nil || m.Chain == nil) {
			t.Fatal("nil chain without error")
		}
	})
}

func FuzzParseCertificateRequest(f *testing.F) {
	f.Add(certRequest12(dnDER(1), dnDER(2))[4:], false, true)
	f.Add([]byte{0, 0, 8, 0, 47, 0, 4, 0, 2, 0x30, 0}, true, true)
	f.Fuzz(func(t *testing.T, body []byte, tls13, sigAlgs bool) {
		m, err := ParseCertificateRequest(body, tls13, sigAlgs)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if m != nil {
			sum := 0
			for _, dn := range m.Issuers {
				sum += 2 + len(dn.Raw)
				_ = dn.String()
			}
			if sum > m.IssuerBytes {
				t.Fatalf("DNs hold %d bytes, more than the %d-byte vector", sum, m.IssuerBytes)
			}
		}
	})
}

// transcriptConns loads the recorded real-peer transcripts as seeds, when present.
func transcriptConns(tb testing.TB) []*conn {
	return nil
}
