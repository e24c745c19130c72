package handshake

import (
	"encoding/json"
	"path/filepath"
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
	// Record sizes the inference reads: a renegotiation read without keys,
	// a post-handshake authentication.
	inferred12 := script(initial12(0xc02b), "s28 c250 s141 s452 s139 s108 s28 c409 c61 c103 cC c40 sC s40 cD s28 c250 s2100 c68 cC c40 sA")
	cbc := script(initial12(0xc009, extEncryptThenMAC), "s52 c212 s164 s468 s164 s132 s52 c52 c84 cC c68 sA")
	pha := script13(initial13(true), "s282 s282 c103 s16401 s132 c436 c97 c53 s666 c103 s132 c57 c53 s19")
	return []*conn{mutualTLS12(16384, dns[:3], []byte("leaf")), mutualTLS12(1000, dns), tls13, reneg, inferred12, cbc, pha}
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
	f.Fuzz(func(t *testing.T, data []byte) { fuzzParser(t, data, Options{MaxMessage: 70000}) })
}

// FuzzParserDecrypt is FuzzParser with every recorded transcript's key log
// set: decryption, holding and replay under hostile input.
func FuzzParserDecrypt(f *testing.F) {
	kl := KeyLog{}
	for _, rec := range loadTranscripts(f) {
		for k, v := range readKeyLogFile(f, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"])) {
			kl[k] = v
		}
		f.Add(encodeChunks(rec.conn))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParser(t, data, Options{MaxMessage: 70000, Secrets: kl})
	})
}

func fuzzParser(t *testing.T, data []byte, opts Options) {
	{
		p := NewParser(opts)
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
			if p.dec != nil && p.dec.heldBytes > maxHeld {
				t.Fatalf("%d bytes held", p.dec.heldBytes)
			}
			if len(p.open) > maxOpen {
				t.Fatalf("%d handshakes open at once", len(p.open))
			}
			for _, h := range p.open {
				if len(h.recs12) > maxRec12 {
					t.Fatalf("%d renegotiation records kept", len(h.recs12))
				}
			}
			if w := p.pha; w != nil && (len(w.serverRun) > maxRecords || len(w.clientRun) > maxRecords || w.left < 0) {
				t.Fatalf("post-handshake watch: %d server, %d client records kept, %d left", len(w.serverRun), len(w.clientRun), w.left)
			}
			hs = append(hs, p.Drain()...)
		}
		hs = append(hs, p.Close()...)
		// Every handshake started is handed out exactly once (in the order
		// outcomes became known, not necessarily by index).
		seen := make([]bool, p.started)
		for _, h := range hs {
			if h.Index < 0 || h.Index >= p.started || seen[h.Index] {
				t.Fatalf("handshake %d handed out twice or never started (%d started)", h.Index, p.started)
			}
			seen[h.Index] = true
		}
		if len(hs) != p.started {
			t.Fatalf("%d handshakes started, %d handed out", p.started, len(hs))
		}
		for _, h := range hs {
			if h.End == "" || h.Visibility == "" {
				t.Fatalf("handshake %d handed out without end/visibility", h.Index)
			}
			// Inferred means something was, and never beside what was read.
			if inf := h.Inferred; h.Visibility == VisibilityInferred && (inf == nil || !inf.Known() || h.decrypted) ||
				inf != nil && (inf.CertRequestMin > inf.CertRequestLen || inf.CertRequestMin < 0) {
				t.Fatalf("handshake %d: visibility %s, inferred %+v", h.Index, h.Visibility, inf)
			}
			if _, err := json.Marshal(h); err != nil {
				t.Fatal(err)
			}
		}
		_ = p.Observation()
	}
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(clientHello("a.test", 0x0304, 0x0303)[4:])
	for _, body := range transcriptMessages(f, FromClient, typeClientHello) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := parseClientHello(body); err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	f.Add(serverHello(0x0304)[4:])
	f.Add(serverHello(0x0303)[4:])
	for _, body := range transcriptMessages(f, FromServer, typeServerHello) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := parseServerHello(body); err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	f.Add(certificate12([]byte("leaf"), []byte("ca"))[4:], false)
	f.Add([]byte{0, 0, 0, 0}, true)
	for _, body := range transcriptMessages(f, FromServer, typeCertificate) {
		f.Add(body, false)
	}
	for _, body := range transcriptMessages(f, FromClient, typeCertificate) {
		f.Add(body, false)
	}
	f.Fuzz(func(t *testing.T, body []byte, tls13 bool) {
		m, err := parseCertificate(body, tls13)
		if err == nil && (m == nil || m.Chain == nil) {
			t.Fatal("nil chain without error")
		}
	})
}

func FuzzParseCertificateRequest(f *testing.F) {
	f.Add(certRequest12(dnDER(1), dnDER(2))[4:], false, true)
	f.Add([]byte{0, 0, 8, 0, 47, 0, 4, 0, 2, 0x30, 0}, true, true)
	for _, body := range transcriptMessages(f, FromServer, typeCertificateRequest) {
		f.Add(body, false, true)
	}
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

// transcriptConns loads the recorded real-peer transcripts as seeds, so that
// fuzzing starts from handshakes real stacks produced.
func transcriptConns(tb testing.TB) []*conn {
	tb.Helper()
	var out []*conn
	for _, rec := range loadTranscripts(tb) {
		out = append(out, rec.conn)
	}
	return out
}

// transcriptMessages returns the bodies of the clear handshake messages of
// type typ that the recorded transcripts carry from one side: everything a
// side sends in handshake records before its first other record (its
// ChangeCipherSpec), reassembled across records. Duplicates are dropped.
func transcriptMessages(tb testing.TB, from Direction, typ messageType) [][]byte {
	tb.Helper()
	var out [][]byte
	seen := map[string]bool{}
	for _, c := range transcriptConns(tb) {
		var stream []byte
		for _, ch := range *c {
			if ch.from == from {
				stream = append(stream, ch.data...)
			}
		}
		var hs []byte // the clear handshake bytes, record headers removed
		for len(stream) >= recordHeaderLen {
			n := int(stream[3])<<8 | int(stream[4])
			if ContentType(stream[0]) != ContentHandshake || len(stream) < recordHeaderLen+n {
				break
			}
			hs = append(hs, stream[recordHeaderLen:recordHeaderLen+n]...)
			stream = stream[recordHeaderLen+n:]
		}
		for len(hs) >= 4 {
			n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if len(hs) < 4+n {
				break
			}
			if body := hs[4 : 4+n]; messageType(hs[0]) == typ && !seen[string(body)] {
				seen[string(body)] = true
				out = append(out, body)
			}
			hs = hs[4+n:]
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no %s %s in the transcripts", from, typ)
	}
	return out
}
