package handshake

import (
	"path/filepath"
	"testing"

	"github.com/certlens/certlens/internal/testkit/transcript"
)

// benchTranscript parses a recorded connection once per iteration, the way
// the proxy does: a new Parser, the recorded chunks as read, Drain after
// each, Close at the end.
func benchTranscript(b *testing.B, name string) {
	c := loadTranscript(b, name).conn
	total := 0
	for _, ch := range *c {
		total += len(ch.data)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p := NewParser(Options{})
		for _, ch := range *c {
			p.Feed(ch.from, ch.data)
			n += len(p.Drain())
		}
		n += len(p.Close())
	}
	if n != b.N {
		b.Fatalf("%d handshakes in %d iterations", n, b.N)
	}
}

// BenchmarkTLS12MutualAuth: a TLS 1.2 handshake with a 3-CA request and a
// client certificate.
func BenchmarkTLS12MutualAuth(b *testing.B) { benchTranscript(b, "tls12-3ca-curl-cert") }

// BenchmarkIssuerList260: a 261-DN (60 KB) CertificateRequest over 4 records.
func BenchmarkIssuerList260(b *testing.B) { benchTranscript(b, "tls12-260ca-curl-cert") }

// BenchmarkHeaderScan measures what the parser costs once a TLS 1.2
// handshake is over and it only reads record headers (watching for
// renegotiation): full-size application-data records fed in 32 KiB reads, the
// size of the proxy's copy buffer, so records straddle reads.
func BenchmarkHeaderScan(b *testing.B) {
	const (
		body      = 16384 + 8 + 16 // AES-GCM: plaintext, explicit nonce, tag
		readSize  = 32 << 10
		totalSize = 4 << 20
	)
	p := NewParser(Options{})
	for _, ch := range *loadTranscript(b, "tls12-3ca-curl-cert").conn {
		p.Feed(ch.from, ch.data)
		if len(p.Drain()) > 0 {
			break // the handshake is over; the rest is the HTTP exchange
		}
	}
	s := &p.streams[FromServer]
	if p.Done() || !s.protected || s.hdrN != 0 || s.need != 0 {
		b.Fatalf("after the handshake: done %v protected %v header %d need %d", p.Done(), s.protected, s.hdrN, s.need)
	}
	var data []byte
	for len(data)+recordHeaderLen+body <= totalSize {
		data = append(data, record(ContentApplicationData, make([]byte, body))...)
	}
	records := p.Observation().ServerRecord
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for rest := data; len(rest) > 0; {
			n := min(readSize, len(rest))
			p.Feed(FromServer, rest[:n])
			rest = rest[n:]
		}
	}
	b.StopTimer()
	perLoop := len(data) / (recordHeaderLen + body)
	if got := p.Observation().ServerRecord - records; got != perLoop*b.N || len(p.Drain()) != 0 {
		b.Fatalf("scanned %d records, want %d", got, perLoop*b.N)
	}
}

// benchDecrypt measures what decryption adds per handshake: deriving the
// keys from the key log's secrets and opening every handshake record of a
// recorded connection, both directions.
func benchDecrypt(b *testing.B, name string) {
	rec := loadTranscript(b, name)
	kl := readKeyLogFile(b, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"]))
	client, server := rec.tr.Stream(transcript.ClientToServer), rec.tr.Stream(transcript.ServerToClient)
	b.SetBytes(int64(len(client) + len(server)))
	b.ReportAllocs()
	for b.Loop() {
		c, s, _ := walkConn(b, client, server, kl)
		if c.opened == 0 || s.opened == 0 {
			b.Fatal("nothing decrypted")
		}
	}
}

// BenchmarkDecryptTLS13: TLS_AES_256_GCM_SHA384, 3-CA request, client certificate.
func BenchmarkDecryptTLS13(b *testing.B) { benchDecrypt(b, "tls13-3ca-curl-cert") }

// BenchmarkDecryptTLS12Renegotiation: the renegotiation's records under the
// first handshake's keys, application data counted between.
func BenchmarkDecryptTLS12Renegotiation(b *testing.B) {
	benchDecrypt(b, "tls12-renegotiation-sclient")
}
