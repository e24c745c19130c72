package rules

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// BenchmarkParseAndDiagnose is the path every handshake takes: parse the
// recorded connection, then run every rule. The 260-CA case is the
// performance target "a 60 KB issuer list parsed and diagnosed".
func BenchmarkParseAndDiagnose(b *testing.B) {
	for _, name := range []string{"tls12-3ca-curl-cert", "tls12-260ca-curl-cert"} {
		b.Run(name, func(b *testing.B) {
			tr, err := transcript.ReadFile(filepath.Join("..", "handshake", "testdata", "transcripts", name+".transcript"))
			if err != nil {
				b.Fatal(err)
			}
			opts := Options{Now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
			b.ReportAllocs()
			for b.Loop() {
				p := handshake.NewParser(handshake.Options{})
				feedTranscript(p, tr)
				for _, h := range append(p.Drain(), p.Close()...) {
					_ = Diagnose(h, Evidence{}, opts)
				}
			}
		})
	}
}

// feedTranscript gives a recorded connection's chunks to the parser, in order.
func feedTranscript(p *handshake.Parser, tr *transcript.Transcript) {
	for _, c := range tr.Chunks {
		dir := handshake.FromClient
		if c.Dir == transcript.ServerToClient {
			dir = handshake.FromServer
		}
		p.Feed(dir, c.Data)
	}
}
