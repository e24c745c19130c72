package otlpexport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// benchEvents are a handshake (a request with three CA names, a client
// certificate, a finding) and its connection closed: what each tunnel of
// the load test writes.
func benchEvents() (*event.Handshake, *event.Closed) {
	leaf := event.Cert{Subject: "CN=alice,O=Contoso", Issuer: "CN=Contoso Client CA", Serial: "1f", NotBefore: "2026-01-01T00:00:00Z",
		NotAfter: "2027-01-01T00:00:00Z", KeyUsage: []string{"digitalSignature"}, ExtKeyUsage: []string{"clientAuth"}, PublicKey: "ECDSA P-256",
		SHA256: "ebec9b50e5af45894e7e32ab691629260e06066a4bb25074939fba8fbbe5e51d"}
	h := &event.Handshake{ConnID: "a1b2c3-1", Mode: event.ModeSidecar, ClientAddr: "10.0.0.1:50000", Target: "10.0.0.2:443",
		CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", SNI: "iis.example", Phase: "initial", TLSVersion: "TLS 1.2",
		CipherSuite: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", ALPN: "http/1.1", Visibility: "clear", End: "finished",
		ClientHello: &event.ClientHello{ALPN: []string{"h2", "http/1.1"}},
		CertRequest: &event.CertRequest{Phase: "initial", IssuerCount: 3, IssuerBytes: 339,
			Issuers:   []string{"CN=Contoso Root CA", "CN=Fabrikam Issuing CA 02", "CN=Contoso Client CA"},
			CertTypes: []string{"rsa_sign", "ecdsa_sign"}, SignatureSchemes: []string{"ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"}, Records: 1},
		ClientCert: &event.ClientCert{Sent: true, Chain: []event.Cert{leaf}},
		Findings:   []rules.Finding{{ID: "issuer-list-too-large", Severity: "info", Summary: "s", Detail: "d", Remedy: "r"}},
		Verdict:    "ok", VerdictCertain: true}
	certain := true
	c := &event.Closed{ConnID: "a1b2c3-1", Mode: event.ModeSidecar, ClientAddr: "10.0.0.1:50000", Target: "10.0.0.2:443",
		CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", BytesUp: 1000, BytesDown: 5000, DurationMS: 3.2, Reason: "client closed",
		Handshakes: 1, TLSVersion: "TLS 1.2", Verdict: "ok", VerdictCertain: &certain}
	return h, c
}

// BenchmarkEvents is one tunnel's two events written to a JSON log, with
// and without the OTLP export to a collector (an OTLP/HTTP receiver that
// takes everything): the difference is what export costs per tunnel,
// batching and protobuf encoding included (Shutdown waits for the last
// batch inside the timed loop's total).
func BenchmarkEvents(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	h, c := benchEvents()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	down := "http://" + ln.Addr().String() // nothing listens there
	ln.Close()
	grpcURL := discardGRPC(b)
	for _, tc := range []struct{ name, endpoint, protocol string }{{"json", "", ""}, {"json+otlp", srv.URL, HTTP},
		{"json+otlp-grpc", grpcURL, GRPC}, {"json+otlp-down", down, HTTP}} {
		export := tc.endpoint != ""
		b.Run(tc.name, func(b *testing.B) {
			cores := []zapcore.Core{zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)}
			var e *Exporter
			if export {
				var err error
				e, err = New(Options{Endpoint: tc.endpoint, Protocol: tc.protocol, Timeout: 10 * time.Second, QueueSize: 4096, MetricsInterval: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				cores = append(cores, e.Core())
			}
			log := zap.New(zapcore.NewTee(cores...))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				log.Info("handshake", zap.Inline(h))
				log.Info("connection closed", zap.Inline(c))
				// Paced like tunnels that do other work between events: a
				// loop faster than export would measure the drops instead.
				for e != nil && tc.endpoint != down && e.queued.Load() > 1024 {
					time.Sleep(time.Millisecond)
				}
			}
			if e != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				if err := e.Shutdown(ctx); err != nil && tc.endpoint != down {
					b.Fatal(err)
				}
				// A loop that writes faster than a collector takes (no
				// tunnel does) overflows the queue: counted, not waited for.
				if e.Dropped()+e.Exported() != uint64(2*b.N) {
					b.Fatalf("exported %d, dropped %d of %d", e.Exported(), e.Dropped(), 2*b.N)
				}
				b.ReportMetric(float64(e.Dropped())/float64(2*b.N), "dropped/event")
			}
			// The process's CPU, the background batches and GC included:
			// what certlens-bench's CPU per handshake column sees.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/tunnel")
		})
	}
}

// discardGRPC is an OTLP/gRPC receiver that takes every export without
// decoding it (as the HTTP one in BenchmarkEvents reads and drops the
// body): the benchmark's process CPU is the sender's, not a collector's.
func discardGRPC(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, s grpc.ServerStream) error {
		if err := s.RecvMsg(new(struct{})); err != nil {
			return err
		}
		return s.SendMsg(new(struct{})) // an empty ExportLogsServiceResponse
	}))
	go func() { _ = gs.Serve(ln) }()
	b.Cleanup(gs.Stop)
	return "http://" + ln.Addr().String()
}

// rawCodec neither decodes what it receives nor encodes anything to send.
type rawCodec struct{}

func (rawCodec) Marshal(any) (mem.BufferSlice, error) { return nil, nil }
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }
