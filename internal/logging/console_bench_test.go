package logging

import (
	"io"
	"os"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/capture"
	"github.com/certlens/certlens/internal/event"
)

// BenchmarkConsole: what the console format costs per handshake event
// against JSON, for a 3-CA list and for a 261-CA list (60 KB of issuers).
func BenchmarkConsole(b *testing.B) {
	for _, pcap := range []string{"tls12-3ca-curl-nocert.pcap", "tls12-260ca-curl-cert.pcap"} {
		f, err := os.Open(transcripts + pcap)
		if err != nil {
			b.Fatal(err)
		}
		var h *event.Handshake
		_, err = capture.Analyze(f, capture.Options{Name: pcap}, func(ev capture.Event) {
			if ev.Handshake != nil {
				h = ev.Handshake
			}
		})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			enc  zapcore.Encoder
		}{{"json", zapcore.NewJSONEncoder(jsonConfig())}, {"console", newConsoleEncoder(ConsoleOptions(false))}} {
			b.Run(pcap+"/"+tc.name, func(b *testing.B) {
				log := zap.New(zapcore.NewCore(tc.enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
				b.ReportAllocs()
				for b.Loop() {
					log.Warn("handshake", zap.Inline(h))
				}
			})
		}
	}
}
