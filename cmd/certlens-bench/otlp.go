package main

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// otlpSink is an OTLP/HTTP receiver that takes every export and keeps
// nothing: the certlens-otlp path measures what exporting costs certlens,
// not what a collector costs (a collector is another process, and it is
// certlens's CPU the bench reads).
type otlpSink struct {
	url      string
	requests atomic.Int64
	stop     func()
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		// An empty ExportLogsServiceResponse / ExportMetricsServiceResponse.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	s.stop = func() { _ = srv.Close() }
	return s, nil
}

// otlpEnv exports to url over http/protobuf.
func otlpEnv(url string) []string {
	return []string{"CERTLENS_OTLP_ENDPOINT=" + url, "CERTLENS_OTLP_PROTOCOL=http/protobuf", "CERTLENS_OTLP_METRICS_INTERVAL=5s"}
}
