package rules

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// recordedHandshake parses a recorded connection and returns its first handshake.
func recordedHandshake(tb testing.TB, name string) *handshake.Handshake {
	tb.Helper()
	tr, err := transcript.ReadFile(filepath.Join("..", "handshake", "testdata", "transcripts", name+".transcript"))
	if err != nil {
		tb.Fatal(err)
	}
	p := handshake.NewParser(handshake.Options{})
	feedTranscript(p, tr)
	hs := append(p.Drain(), p.Close()...)
	if len(hs) == 0 || hs[0].CertRequest == nil {
		tb.Fatalf("%s: no handshake with a certificate request", name)
	}
	return hs[0]
}

// withClientChain is h answered by chain instead of what the client sent.
func withClientChain(h *handshake.Handshake, chain ...*pkitest.Cert) *handshake.Handshake {
	m := *h
	m.ClientCertificate = &handshake.CertificateMsg{}
	for _, c := range chain {
		m.ClientCertificate.Chain = append(m.ClientCertificate.Chain, c.DER)
	}
	return &m
}

// BenchmarkDiagnoseIssuerList runs the rules alone (the handshake already
// parsed, as it is by the time the rules run) over the recorded 3-CA and
// 261-CA requests, answered by a chain under a listed CA (as recorded) or
// by a leaf alone whose issuer is not listed: the case where every listed
// DN is looked at for a near miss.
func BenchmarkDiagnoseIssuerList(b *testing.B) {
	foreign := pkitest.NewCA(b, "certlens bench unlisted CA").NewClient(b, "bench leaf")
	opts := Options{Now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	for _, tc := range []struct{ name, transcript string }{{"3ca", "tls12-3ca-curl-cert"}, {"261ca", "tls12-260ca-curl-cert"}} {
		recorded := recordedHandshake(b, tc.transcript)
		for _, sent := range []struct {
			name string
			h    *handshake.Handshake
		}{{"listed-chain", recorded}, {"unlisted-leaf", withClientChain(recorded, foreign)}} {
			b.Run(tc.name+"/"+sent.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = Diagnose(sent.h, Evidence{}, opts)
				}
			})
		}
	}
}
