package handshake

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/certlens/certlens/internal/testkit/transcript"
)

// FuzzParseKeyLogLine: any line either parses to a full-size client_random
// and a bounded secret, is ignored, or is an ErrKeyLog; never a panic.
func FuzzParseKeyLogLine(f *testing.F) {
	for _, rec := range loadTranscripts(f) {
		kl := readKeyLogLines(f, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"]))
		for _, l := range kl {
			f.Add(l)
		}
	}
	f.Add("RSA 2ef027344c7c9475 0303")
	f.Add("# comment")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := ParseKeyLogLine(line)
		switch {
		case err != nil:
			if ok || !errors.Is(err, ErrKeyLog) {
				t.Fatalf("ok %v with error %v", ok, err)
			}
		case ok:
			if len(e.Secret) == 0 || len(e.Secret) > maxSecretLen || !usedLabel(e.Label) {
				t.Fatalf("entry %s with a %d-byte secret", e.Label, len(e.Secret))
			}
		}
	})
}

// FuzzRecordOpen feeds arbitrary record bodies to every kind of record
// cipher, keyed from a recorded key log: errors, never panics, never a
// plaintext longer than the record allows.
func FuzzRecordOpen(f *testing.F) {
	rec := loadTranscript(f, "tls13-3ca-curl-cert")
	for _, r := range splitRecords(f, rec.tr.Stream(transcript.ServerToClient))[1:6] {
		f.Add(byte(r.typ), r.body)
	}
	f.Add(byte(23), []byte{})
	f.Add(byte(22), make([]byte, 64))
	secret := make(Secret, 48)
	random := make([]byte, 32)
	var ciphers []func() *recordCipher
	for suite := range suites13 {
		ciphers = append(ciphers, func() *recordCipher {
			c, err := newTLS13Cipher(suite, secret[:suites13[suite].hash().Size()])
			if err != nil {
				f.Fatal(err)
			}
			return c
		})
	}
	for suite := range suites12 {
		for _, etm := range []bool{false, true} {
			ciphers = append(ciphers, func() *recordCipher {
				c, _, err := newTLS12Ciphers(tls12Params{Suite: suite, Master: secret, ClientRandom: random, ServerRandom: random, EncryptThenMAC: etm})
				if err != nil {
					f.Fatal(err)
				}
				return c
			})
		}
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		for _, mk := range ciphers {
			c := mk()
			_, pt, err := c.Open(nil, ContentType(typ), 0x0303, body)
			if err == nil && len(pt) > maxPlaintext+256 {
				t.Fatalf("%d-byte plaintext", len(pt))
			}
			if err != nil && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			if c.Seq() != 1 {
				t.Fatalf("seq %d after one record", c.Seq())
			}
		}
	})
}
