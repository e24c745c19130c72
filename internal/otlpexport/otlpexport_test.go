package otlpexport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

// syncBuf is a log destination the exporter's goroutine and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logger tees a JSON log into buf with the exporter's core, as serve does.
func logger(e *Exporter, buf *syncBuf) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewTee(zapcore.NewCore(enc, zapcore.AddSync(buf), zapcore.InfoLevel), e.Core()))
	e.SetLogger(log)
	return log
}

// TestNeverBlocksAndCountsDrops: with nothing listening at the endpoint,
// writing events costs no waiting; beyond the queue they are dropped and
// counted at once, the rest when their export fails; one warning says so.
func TestNeverBlocksAndCountsDrops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e, err := New(Options{Endpoint: "http://" + addr, Protocol: GRPC, Timeout: 300 * time.Millisecond, QueueSize: 10,
		MetricsInterval: time.Second, InstanceID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	log := logger(e, &buf)
	const n = 2000
	start := time.Now()
	for i := range n {
		log.Info("handshake", zap.Inline(&event.Handshake{ConnID: "c-" + string(rune('a'+i%26)), Mode: event.ModeSidecar, Verdict: "ok"}))
		log.Info("listening") // not an event: never exported, never counted
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("%d events took %v to write with the collector unreachable", n, el)
	}
	if d := e.Dropped(); d < n-10 {
		t.Errorf("dropped %d right away, want at least %d (queue of 10)", d, n-10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.Shutdown(ctx)
	if d, x := e.Dropped(), e.Exported(); d != n || x != 0 {
		t.Errorf("after shutdown: dropped %d, exported %d; want %d, 0", d, x, n)
	}
	if w := strings.Count(buf.String(), "otlp export dropping events"); w < 1 || w > 2 {
		// One within the minute, and one at shutdown for the rest.
		t.Errorf("%d drop warnings:\n%s", w, buf.String())
	}
}

// TestHTTPWithTLSHeadersAndClientCert: http/protobuf to an https
// collector that wants a client certificate: the CA of otlp.tls.ca
// verifies it, the client certificate is presented, the headers are sent,
// the path is the endpoint's plus /v1/logs.
func TestHTTPWithTLSHeadersAndClientCert(t *testing.T) {
	ca := pkitest.NewCA(t, "otlp collector CA")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pkitest.WritePEM(t, caFile, ca)
	certFile, keyFile := ca.NewClient(t, "certlens sidecar").WriteFiles(t, dir, "client")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())

	type req struct{ path, tenant, peer string }
	got := make(chan req, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		got <- req{r.URL.Path, r.Header.Get("X-Tenant"), peer}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.NewServer(t, "127.0.0.1").TLSCertificate()},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	e, err := New(Options{Endpoint: srv.URL + "/otlp/", Protocol: HTTP, Headers: map[string]string{"X-Tenant": "fleet-a"},
		CAFile: caFile, CertFile: certFile, KeyFile: keyFile, Timeout: 5 * time.Second, QueueSize: 100, MetricsInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	log := logger(e, &buf)
	log.Warn("connection closed", zap.Inline(&event.Closed{ConnID: "c-1", Mode: event.ModeSidecar, Reason: "client closed"}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (log %s)", err, buf.String())
	}
	select {
	case r := <-got:
		if r.path != "/otlp/v1/logs" || r.tenant != "fleet-a" || r.peer != "certlens sidecar" {
			t.Errorf("request %+v", r)
		}
	default:
		t.Fatal("the collector got no request")
	}
	if e.Exported() != 1 || e.Dropped() != 0 {
		t.Errorf("exported %d, dropped %d", e.Exported(), e.Dropped())
	}
}

// logsServer is an OTLP/gRPC logs receiver that reports each export's
// metadata, peer certificate and records.
type logsServer struct {
	collogs.UnimplementedLogsServiceServer
	got chan grpcReq
}

type grpcReq struct {
	tenant, peer string
	records      int
	attrs        map[string]string
}

func (s *logsServer) Export(ctx context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	r := grpcReq{attrs: map[string]string{}}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("x-tenant")) > 0 {
		r.tenant = md.Get("x-tenant")[0]
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			r.peer = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				r.records++
				for _, kv := range lr.Attributes {
					r.attrs[kv.Key] = kv.Value.GetStringValue()
				}
			}
		}
	}
	s.got <- r
	return &collogs.ExportLogsServiceResponse{}, nil
}

// TestGRPCWithTLSHeadersAndClientCert: the gRPC exporter over TLS to a
// receiver that requires a client certificate: otlp.tls.ca verifies the
// receiver, the client certificate is presented, the headers arrive as
// metadata, and the record carries the event's attributes.
func TestGRPCWithTLSHeadersAndClientCert(t *testing.T) {
	ca := pkitest.NewCA(t, "otlp collector CA")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pkitest.WritePEM(t, caFile, ca)
	certFile, keyFile := ca.NewClient(t, "certlens sidecar").WriteFiles(t, dir, "client")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.NewServer(t, "127.0.0.1").TLSCertificate()},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(creds))
	ls := &logsServer{got: make(chan grpcReq, 10)}
	collogs.RegisterLogsServiceServer(gs, ls)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	e, err := New(Options{Endpoint: "https://" + ln.Addr().String(), Protocol: GRPC, Headers: map[string]string{"X-Tenant": "fleet-a"},
		CAFile: caFile, CertFile: certFile, KeyFile: keyFile, Timeout: 5 * time.Second, QueueSize: 100, MetricsInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	log := logger(e, &buf)
	log.Info("handshake", zap.Inline(&event.Handshake{ConnID: "c-7", Mode: event.ModeSidecar, TLSVersion: "TLS 1.3",
		CommunityID: "1:x", Verdict: "ok", VerdictCertain: true}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (log %s)", err, buf.String())
	}
	select {
	case r := <-ls.got:
		if r.tenant != "fleet-a" || r.peer != "certlens sidecar" || r.records != 1 || r.attrs["certlens.conn_id"] != "c-7" ||
			r.attrs["tls.protocol.version"] != "1.3" || r.attrs["network.community_id"] != "1:x" {
			t.Errorf("export %+v", r)
		}
	default:
		t.Fatal("the receiver got no export")
	}
}

// TestRecordCarriesEventAttributes: what the receiver decodes of a
// handshake (two certificates, two findings: objects built one after the
// other in the same buffer) and its connection closed is, attribute for
// attribute and in order, what the event writes under the OTel names, with
// the event's name, body and severity.
func TestRecordCarriesEventAttributes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rs := &recordServer{got: make(chan *logspb.LogRecord, 10)}
	collogs.RegisterLogsServiceServer(gs, rs)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	e, err := New(Options{Endpoint: "http://" + ln.Addr().String(), Protocol: GRPC, Timeout: 5 * time.Second, QueueSize: 100, MetricsInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h, c := benchEvents()
	second := h.ClientCert.Chain[0]
	second.Subject, second.Issuer, second.Serial, second.KeyUsage, second.ExtKeyUsage = "CN=Contoso Client CA", "CN=Contoso Root CA", "2a", []string{"certSign", "crlSign"}, nil
	h.ClientCert.Chain = append(h.ClientCert.Chain, second)
	h.Findings = append(h.Findings, rules.Finding{ID: "client-cert-expiring", Severity: "warn", Predicts: "403.17", Summary: "s2", Detail: "d2"})
	var buf syncBuf
	log := logger(e, &buf)
	log.Info("handshake", zap.Inline(h))
	log.Warn("connection closed", zap.Inline(c))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (log %s)", err, buf.String())
	}
	for _, want := range []struct {
		name, body string
		sev        logspb.SeverityNumber
		ev         interface {
			Attributes(event.Dialect, event.Attrs)
		}
	}{{"certlens.handshake", "handshake", logspb.SeverityNumber_SEVERITY_NUMBER_INFO, h},
		{"certlens.connection_closed", "connection closed", logspb.SeverityNumber_SEVERITY_NUMBER_WARN, c}} {
		var r *logspb.LogRecord
		select {
		case r = <-rs.got:
		default:
			t.Fatalf("no record for %s", want.name)
		}
		if r.EventName != want.name || r.Body.GetStringValue() != want.body || r.SeverityNumber != want.sev {
			t.Errorf("record %q body %q severity %v, want %q %q %v", r.EventName, r.Body.GetStringValue(), r.SeverityNumber, want.name, want.body, want.sev)
		}
		var wantAttrs kvs
		want.ev.Attributes(event.OTel, &wantAttrs)
		var got kvs
		for _, kv := range r.Attributes {
			got = append(got, kv2{kv.Key, anyValue(kv.Value)})
		}
		if len(wantAttrs) < 15 || !reflect.DeepEqual(got, wantAttrs) {
			t.Errorf("%s attributes\n got %v\nwant %v", want.name, got, wantAttrs)
		}
	}
}

// recordServer is an OTLP/gRPC logs receiver that passes on each record.
type recordServer struct {
	collogs.UnimplementedLogsServiceServer
	got chan *logspb.LogRecord
}

func (s *recordServer) Export(_ context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				s.got <- lr
			}
		}
	}
	return &collogs.ExportLogsServiceResponse{}, nil
}

// kvs is an event's attributes as plain Go values, in order: what the
// event writes (as event.Attrs) or what the receiver decoded (anyValue).
type kvs []kv2

type kv2 struct {
	key   string
	value any
}

func (a *kvs) Str(k, v string)           { *a = append(*a, kv2{k, v}) }
func (a *kvs) Int(k string, v int64)     { *a = append(*a, kv2{k, v}) }
func (a *kvs) Float(k string, v float64) { *a = append(*a, kv2{k, v}) }
func (a *kvs) Bool(k string, v bool)     { *a = append(*a, kv2{k, v}) }
func (a *kvs) Strs(k string, v []string) {
	l := []any{}
	for _, s := range v {
		l = append(l, s)
	}
	*a = append(*a, kv2{k, l})
}

func (a *kvs) Objects(k string, each []func(event.Attrs)) {
	l := []any{}
	for _, f := range each {
		var o kvs
		f(&o)
		l = append(l, o.sorted())
	}
	*a = append(*a, kv2{k, l})
}

// sorted: an object's keys are a set (attribute.MapValue sorts them).
func (a kvs) sorted() kvs {
	slices.SortFunc(a, func(x, y kv2) int { return strings.Compare(x.key, y.key) })
	return a
}

func anyValue(v *commonpb.AnyValue) any {
	switch v := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return v.StringValue
	case *commonpb.AnyValue_IntValue:
		return v.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return v.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return v.BoolValue
	case *commonpb.AnyValue_ArrayValue:
		l := []any{}
		for _, e := range v.ArrayValue.Values {
			l = append(l, anyValue(e))
		}
		return l
	case *commonpb.AnyValue_KvlistValue:
		var o kvs
		for _, kv := range v.KvlistValue.Values {
			o = append(o, kv2{kv.Key, anyValue(kv.Value)})
		}
		return o.sorted()
	}
	return fmt.Sprintf("unexpected %T", v.Value)
}
