package proxy

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/logging"
)

// metrics are the Prometheus series /metrics shows. Each Server has its own
// registry: tests and embedders never share global state.
type metrics struct {
	reg         *prometheus.Registry
	handshakes  *prometheus.CounterVec
	findings    *prometheus.CounterVec
	active      prometheus.Gauge
	connections prometheus.Counter
	spliced     prometheus.Counter
	bytesUp     prometheus.Counter
	bytesDown   prometheus.Counter
	parseErrors prometheus.Counter
	issuerBytes prometheus.Histogram
	hsDuration  prometheus.Histogram
	refused     *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certlens_handshakes_total", Help: "TLS handshakes seen, by verdict and TLS version.",
		}, []string{"verdict", "tls_version"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certlens_findings_total", Help: "Findings reported, by rule id.",
		}, []string{"id"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certlens_tunnels_active", Help: "Tunnels (CONNECT or sidecar connections) open now.",
		}),
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "certlens_tunnels_total", Help: "Tunnels opened.",
		}),
		spliced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "certlens_tunnels_spliced_total", Help: "Tunnel directions handed to the kernel (splice) once the parser needed no more bytes.",
		}),
		parseErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "certlens_parse_errors_total", Help: "Handshakes or connections the parser could not read in full.",
		}),
		issuerBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "certlens_issuer_list_bytes", Help: "Size of the CertificateRequest's issuer list on the wire.",
			Buckets: []float64{0, 1024, 4096, 8192, 12288, 16384, 32768, 65536},
		}),
		hsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "certlens_handshake_duration_seconds", Help: "From the tunnel's start to the initial handshake's outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certlens_connect_refused_total", Help: "Client connections and requests refused, by reason (port, host, auth, client_not_allowed, max_conns, bad_request, bad_target).",
		}, []string{"reason"}),
	}
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certlens_bytes_relayed_total", Help: "Bytes relayed through tunnels, by direction.",
	}, []string{"direction"})
	// Resolved once: the copy loop adds to them on every read and write.
	m.bytesUp = bytes.WithLabelValues("client_to_server")
	m.bytesDown = bytes.WithLabelValues("server_to_client")
	logErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "certlens_log_write_errors_total", Help: "Events the log file (log.file) could not take: full disk, revoked file.",
	}, func() float64 { return float64(logging.WriteErrors()) })
	m.reg.MustRegister(logErrors)
	m.reg.MustRegister(m.handshakes, m.findings, m.active, m.connections, m.spliced, bytes, m.parseErrors, m.issuerBytes,
		m.hsDuration, m.refused, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer is what /metrics shows, for the OTLP exporter to send the same.
func (s *Server) Gatherer() prometheus.Gatherer { return s.metrics.reg }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) observe(e *event.Handshake, issuerBytes int, hasRequest, parseError bool) {
	m.handshakes.WithLabelValues(e.Verdict, e.TLSVersion).Inc()
	for _, f := range e.Findings {
		m.findings.WithLabelValues(f.ID).Inc()
	}
	if hasRequest {
		m.issuerBytes.Observe(float64(issuerBytes))
	}
	if parseError {
		m.parseErrors.Inc()
	}
}
