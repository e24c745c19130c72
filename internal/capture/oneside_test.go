package capture

import (
	"strings"
	"testing"
)

// TestLoneServerFlight: a capture that holds only the server's side of a
// connection (one direction captured, the capture started after the
// client's SYN) is read: the request is reported, but whether a
// certificate was sent is unknown, never a certain "ok"; both events say
// the client's side is missing, and the bytes are counted the right way.
func TestLoneServerFlight(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-nocert") // the client sends no certificate: 403.7
	server := tr.Stream('S')
	for _, synAck := range []bool{false, true} {
		name := "from mid-stream"
		if synAck {
			name = "from the SYN+ACK"
		}
		t.Run(name, func(t *testing.T) {
			s := newScript(t)
			c := s.conn("10.1.0.1:40000", "10.1.0.2:443", 1000, 5000)
			c.hideClient, c.hideServer = true, !synAck
			c.open()
			c.hideServer = false
			c.replay(tr.Chunks)
			c.close()
			path := s.write()
			evs, st := analyzeFile(t, path, Options{})
			if len(evs) != 2 || evs[0].Handshake == nil || evs[1].Closed == nil {
				t.Fatalf("events: %s", jsonOf(t, evs))
			}
			h, closed := evs[0].Handshake, evs[1].Closed
			if h.Verdict == "ok" || h.VerdictCertain || h.Visibility != "partial" || h.CertRequest == nil || h.CertRequest.IssuerCount != 3 {
				t.Errorf("handshake: verdict %s certain %v visibility %s request %v", h.Verdict, h.VerdictCertain, h.Visibility, h.CertRequest != nil)
			}
			const missing = "the client's side of this connection is missing from the capture"
			if !strings.Contains(strings.Join(h.Errors, "\n"), missing) || !strings.Contains(strings.Join(closed.Errors, "\n"), missing) {
				t.Errorf("errors %q / %q do not say the client's side is missing", h.Errors, closed.Errors)
			}
			if h.ClientAddr != "10.1.0.1:40000" || closed.BytesUp != 0 || closed.BytesDown != int64(len(server)) || closed.NotTLS != "" {
				t.Errorf("closed: %s", jsonOf(t, closed))
			}
			if closed.Verdict == "ok" || closed.VerdictCertain != nil && *closed.VerdictCertain {
				t.Errorf("connection verdict %s certain %v", closed.Verdict, *closed.VerdictCertain)
			}
			if n := matchTshark(t, path, evs, st); n != 1 {
				t.Errorf("tshark shows %d CertificateRequests", n)
			}
		})
	}
}

// TestFramerEndScan: a record the scan found at the end of the stream,
// with no next header to confirm it, is read when the stream ends.
func TestFramerEndScan(t *testing.T) {
	r := rec(22, 2, 300)
	f := framer{state: stateScan}
	got := collect(t, &f, func(f *framer) {
		f.push(append([]byte{0x17, 0x99}, r...)) // the tail of a record before it
		f.endScan()
	})
	if string(got) != string(r) {
		t.Errorf("emitted %x, want the record", got)
	}
}

// sslv2Hello is an SSL 2.0-format CLIENT-HELLO offering TLS 1.2 with the
// cipher suite the recorded server chose, as old clients and scanners
// open a TLS session.
func sslv2HelloFor(suite uint16) []byte {
	specs := []byte{0, byte(suite >> 8), byte(suite), 0x07, 0x00, 0xc0, 0, 0x00, 0x2f}
	challenge := []byte("certlens-sslv2-challenge")
	body := []byte{1, 3, 3, 0, byte(len(specs)), 0, 0, 0, byte(len(challenge))}
	body = append(append(body, specs...), challenge...)
	return append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
}

// TestSSLv2ClientHelloFirst: a TLS 1.2 session opened with an
// SSLv2-format ClientHello is read whole, the request and the client's
// answer as in the recording, and as tshark reads it.
func TestSSLv2ClientHelloFirst(t *testing.T) {
	tr := readTranscript(t, "tls12-3ca-curl-nocert")
	s := newScript(t)
	c := s.conn("10.1.0.1:40000", "10.1.0.2:443", 1000, 5000)
	c.open()
	c.send(true, sslv2HelloFor(0xc02c)) // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, as recorded
	c.replay(tr.Chunks[1:])
	c.close()
	path := s.write()
	evs, st := analyzeFile(t, path, Options{})
	if len(evs) != 2 || evs[0].Handshake == nil {
		t.Fatalf("events: %s", jsonOf(t, evs))
	}
	h := evs[0].Handshake
	if h.Verdict != "403.7" || h.CertRequest == nil || h.CertRequest.IssuerCount != 3 || h.ClientCert == nil || h.ClientCert.Sent || h.Visibility != "clear" {
		t.Errorf("handshake: %s", jsonOf(t, h))
	}
	if evs[1].Closed.NotTLS != "" || evs[1].Closed.BytesUp != int64(len(tr.Stream('C'))-len(tr.Chunks[0].Data)+len(sslv2HelloFor(0xc02c))) {
		t.Errorf("closed: %s", jsonOf(t, evs[1].Closed))
	}
	if n := matchTshark(t, path, evs, st); n != 1 {
		t.Errorf("tshark shows %d CertificateRequests", n)
	}
}
