package handshake

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// This file reads a recorded connection the way a passive observer with the
// client's key log does, using only recordCipher and the message decoders:
// the reference the parser's own decryption is compared with.

type rawRecord struct {
	typ     ContentType
	version uint16
	body    []byte
}

func splitRecords(tb testing.TB, b []byte) []rawRecord {
	tb.Helper()
	var out []rawRecord
	for len(b) >= recordHeaderLen {
		n := int(b[3])<<8 | int(b[4])
		if len(b) < recordHeaderLen+n {
			break // a connection cut mid-record: what came before still counts
		}
		out = append(out, rawRecord{ContentType(b[0]), uint16(b[1])<<8 | uint16(b[2]), b[recordHeaderLen : recordHeaderLen+n]})
		b = b[recordHeaderLen+n:]
	}
	return out
}

type plainMsg struct {
	from Direction
	typ  messageType
	body []byte
}

// walked is what one direction showed once decrypted.
type walked struct {
	msgs    []plainMsg
	alerts  []Alert
	opened  int // records decrypted
	skipped int // application-data records counted, not decrypted
	errs    []error
}

func (w *walked) find(typ messageType) *plainMsg {
	for i := range w.msgs {
		if w.msgs[i].typ == typ {
			return &w.msgs[i]
		}
	}
	return nil
}

func (w *walked) count(typ messageType) int {
	n := 0
	for _, m := range w.msgs {
		if m.typ == typ {
			n++
		}
	}
	return n
}

// msgReader reassembles handshake messages across records.
type msgReader struct {
	from Direction
	buf  []byte
	out  *walked
}

func (r *msgReader) add(b []byte, onMsg func(plainMsg)) {
	r.buf = append(r.buf, b...)
	for len(r.buf) >= 4 {
		n := int(r.buf[1])<<16 | int(r.buf[2])<<8 | int(r.buf[3])
		if len(r.buf) < 4+n {
			return
		}
		m := plainMsg{r.from, messageType(r.buf[0]), bytes.Clone(r.buf[4 : 4+n])}
		r.out.msgs = append(r.out.msgs, m)
		r.buf = r.buf[4+n:]
		onMsg(m)
	}
}

// walkConn decrypts the handshake records of both directions of one
// connection with the secrets in kl. TLS 1.3 stops a direction at its first
// application data; TLS 1.2 counts application data and decrypts the
// handshake and alert records around it (renegotiation) until the
// direction's second ChangeCipherSpec.
func walkConn(tb testing.TB, client, server []byte, kl SecretSource) (c, s *walked, sh *ServerHello) {
	tb.Helper()
	cr, sr := splitRecords(tb, client), splitRecords(tb, server)
	if len(cr) == 0 || len(sr) == 0 || cr[0].typ != ContentHandshake || sr[0].typ != ContentHandshake {
		tb.Fatalf("walk: no hellos (%d client, %d server records)", len(cr), len(sr))
	}
	ch, err := parseClientHello(cr[0].body[4:])
	if err != nil {
		tb.Fatalf("walk: %v", err)
	}
	sh, err = parseServerHello(sr[0].body[4:])
	if err != nil {
		tb.Fatalf("walk: %v", err)
	}
	secrets, ok := kl.Lookup([32]byte(ch.Random))
	if !ok {
		tb.Fatalf("walk: no secrets for client_random %x", ch.Random)
	}
	c, s = &walked{}, &walked{}
	if sh.Version == VersionTLS13 {
		walk13(tb, FromClient, cr, sh.CipherSuite, secrets.ClientHandshake, secrets.ClientTraffic, c)
		walk13(tb, FromServer, sr, sh.CipherSuite, secrets.ServerHandshake, secrets.ServerTraffic, s)
		return c, s, sh
	}
	cc, sc, err := newTLS12Ciphers(tls12Params{Suite: sh.CipherSuite, Master: secrets.Master,
		ClientRandom: ch.Random, ServerRandom: sh.Random, EncryptThenMAC: slices.Contains(sh.Extensions, 22)})
	if err != nil {
		tb.Fatalf("walk: %v", err)
	}
	walk12(FromClient, cr, cc, c)
	walk12(FromServer, sr, sc, s)
	return c, s, sh
}

func walk13(tb testing.TB, from Direction, recs []rawRecord, suite CipherSuite, hsSecret, trafficSecret Secret, w *walked) {
	tb.Helper()
	rc, err := newTLS13Cipher(suite, hsSecret)
	if err != nil {
		tb.Fatalf("walk %s: %v", from, err)
	}
	r := &msgReader{from: from, out: w}
	var plain []byte
	for _, rec := range recs {
		switch rec.typ {
		case ContentHandshake, ContentChangeCipherSpec:
			continue // the hellos, and the middlebox-compatibility CCS
		case ContentAlert:
			w.alerts = append(w.alerts, Alert{From: from, Encrypted: true})
			continue
		}
		typ, ok := r.open(rc, rec, &plain, func(m plainMsg) {
			if m.typ == typeFinished && trafficSecret != nil {
				// The next record is under the application traffic key.
				var err error
				if rc, err = newTLS13Cipher(suite, trafficSecret); err != nil {
					tb.Fatalf("walk %s: %v", from, err)
				}
			}
		})
		if !ok || typ == ContentApplicationData {
			return
		}
	}
}

// open decrypts one record, keeps an alert, and hands handshake bytes to
// the reassembly; false when the record does not open.
func (r *msgReader) open(rc *recordCipher, rec rawRecord, plain *[]byte, onMsg func(plainMsg)) (ContentType, bool) {
	typ, pt, err := rc.Open((*plain)[:0], rec.typ, rec.version, rec.body)
	if err != nil {
		r.out.errs = append(r.out.errs, err)
		return 0, false
	}
	*plain = pt
	r.out.opened++
	switch typ {
	case ContentAlert:
		if len(pt) == 2 {
			r.out.alerts = append(r.out.alerts, Alert{From: r.from, Level: AlertLevel(pt[0]), Description: AlertDescription(pt[1])})
		}
	case ContentHandshake:
		r.add(pt, onMsg)
	}
	return typ, true
}

func walk12(from Direction, recs []rawRecord, rc *recordCipher, w *walked) {
	r := &msgReader{from: from, out: w}
	protected, ccs := false, 0
	var plain []byte
	for _, rec := range recs {
		if rec.typ == ContentChangeCipherSpec {
			ccs++
			protected = ccs == 1
			continue
		}
		if !protected {
			if rec.typ == ContentHandshake && ccs == 0 {
				r.add(rec.body, func(plainMsg) {})
			}
			continue
		}
		if rec.typ == ContentApplicationData {
			rc.Skip()
			w.skipped++
			continue
		}
		if _, ok := r.open(rc, rec, &plain, func(plainMsg) {}); !ok {
			return
		}
	}
}

// errDecryptFailed is returned by helpers that want one error per direction.
var errDecryptFailed = errors.New("direction did not decrypt")

func (w *walked) err() error {
	if len(w.errs) > 0 {
		return errors.Join(errDecryptFailed, w.errs[0])
	}
	return nil
}

func readKeyLogLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}
