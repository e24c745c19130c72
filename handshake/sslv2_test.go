package handshake

import (
	"bytes"
	"testing"
)

// sslv2Hello builds an SSL 2.0-format CLIENT-HELLO offering version with
// the given 3-byte cipher specs and a 16-byte challenge.
func sslv2Hello(version uint16, specs []byte, sid []byte) []byte {
	challenge := bytes.Repeat([]byte{0xc5}, 16)
	body := []byte{1, byte(version >> 8), byte(version), 0, byte(len(specs)), 0, byte(len(sid)), 0, byte(len(challenge))}
	body = append(append(append(body, specs...), sid...), challenge...)
	return append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
}

// TestSSLv2ClientHello: the rewritten record is read by the parser as the
// ClientHello the SSLv2 one stands for; what is not one is refused.
func TestSSLv2ClientHello(t *testing.T) {
	specs := []byte{0, 0xc0, 0x2c, 0x07, 0x00, 0xc0, 0, 0x00, 0x2f} // ECDHE-ECDSA-AES256-GCM, an SSLv2-only cipher, AES128-SHA
	v2 := sslv2Hello(0x0303, specs, nil)
	rec, n := SSLv2ClientHello(append(v2, 0x16, 3, 3))
	if n != len(v2) || rec == nil {
		t.Fatalf("n %d, record %x", n, rec)
	}
	p := NewParser(Options{})
	p.Feed(FromClient, rec)
	ch := p.ClientHello()
	if ch == nil {
		t.Fatalf("the parser read no ClientHello from %x (%s)", rec, p.NotTLS())
	}
	if len(ch.CipherSuites) != 2 || ch.CipherSuites[0] != 0xc02c || ch.CipherSuites[1] != 0x002f {
		t.Errorf("cipher suites %v", ch.CipherSuites)
	}
	for name, b := range map[string][]byte{
		"a TLS record":         {0x16, 3, 1, 0, 4, 1, 0, 0, 0},
		"SSL 2.0 itself":       sslv2Hello(0x0002, specs, nil),
		"cut short":            v2[:len(v2)-1],
		"a cipher spec cut":    sslv2Hello(0x0301, specs[:8], nil),
		"a 40-byte session id": sslv2Hello(0x0301, specs, make([]byte, 40)),
	} {
		if rec, n := SSLv2ClientHello(b); rec != nil || n != 0 {
			t.Errorf("%s: rewritten as %x", name, rec)
		}
	}
}

// FuzzSSLv2ClientHello: any input either is refused or becomes a record
// the parser reads as a ClientHello, and never reads past the SSLv2 record.
func FuzzSSLv2ClientHello(f *testing.F) {
	f.Add(sslv2Hello(0x0303, []byte{0, 0xc0, 0x2c, 0x07, 0x00, 0xc0}, nil))
	f.Add(sslv2Hello(0x0300, []byte{0, 0, 0x0a}, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n := SSLv2ClientHello(b)
		if rec == nil {
			return
		}
		if n > len(b) || n < 11 {
			t.Fatalf("took %d of %d bytes", n, len(b))
		}
		p := NewParser(Options{})
		p.Feed(FromClient, rec)
		if p.ClientHello() == nil {
			t.Fatalf("record %x is not read as a ClientHello: %s", rec, p.NotTLS())
		}
	})
}
