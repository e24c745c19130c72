package event_test

import (
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/logging"
	"github.com/certlens/certlens/internal/testkit/transcript"
	"github.com/certlens/certlens/rules"
)

// BenchmarkHandshakeEvent measures what a handshake event costs beyond the
// rules, for the recorded 3-CA and 261-CA (60 KB) requests: building it
// from the parsed handshake, and writing it with serve's JSON logger (zap)
// and with encoding/json (analyze --json).
func BenchmarkHandshakeEvent(b *testing.B) {
	for _, name := range []string{"tls12-3ca-curl-cert", "tls12-260ca-curl-cert"} {
		tr, err := transcript.ReadFile(filepath.Join("..", "..", "handshake", "testdata", "transcripts", name+".transcript"))
		if err != nil {
			b.Fatal(err)
		}
		p := handshake.NewParser(handshake.Options{})
		for _, c := range tr.Chunks {
			dir := handshake.FromClient
			if c.Dir == transcript.ServerToClient {
				dir = handshake.FromServer
			}
			p.Feed(dir, c.Data)
		}
		h := append(p.Drain(), p.Close()...)[0]
		r := rules.Diagnose(h, rules.Evidence{}, rules.Options{Now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
		m := event.Meta{ConnID: "bench-1", Mode: "observe", ClientAddr: "127.0.0.1:50000", Target: "iis.example.test:443"}
		e := event.NewHandshake(m, h, r)
		b.Run(name+"/build", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = event.NewHandshake(m, h, r)
			}
		})
		b.Run(name+"/zap-json", func(b *testing.B) {
			log, closeLog, err := logging.New(logging.Options{Format: "json", Level: "info", Stdout: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer closeLog()
			b.ReportAllocs()
			for b.Loop() {
				log.Info("handshake", zap.Inline(e))
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
