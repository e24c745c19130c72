// Package otlpexport sends certlens's handshake and connection events, as
// OpenTelemetry log records, and its Prometheus metrics, as OTLP metrics, to
// an OpenTelemetry Collector, with the OpenTelemetry Go SDK (a batching
// processor and the official OTLP exporters, gRPC or HTTP).
//
// A tunnel never waits for the collector: an event is handed to a bounded
// queue or dropped and counted (certlens_export_dropped_total); a batch the
// collector does not take within otlp.timeout (retries with backoff
// included) is dropped and counted too; a warning says so at most once a
// minute.
package otlpexport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	promb "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"github.com/prometheus/client_golang/prometheus"
)

// Protocols of Options.Protocol.
const (
	GRPC = "grpc"
	HTTP = "http/protobuf"
)

// Options say where to send and who is sending. Validate them with
// Validate (config does) before New.
type Options struct {
	// Endpoint is the collector's base URL: http:// plaintext, https:// TLS.
	Endpoint string
	Protocol string // GRPC or HTTP
	Headers  map[string]string
	// CAFile signs the collector's certificate ("" is the system roots);
	// CertFile and KeyFile are certlens's client certificate for it.
	CAFile, CertFile, KeyFile string
	// Timeout bounds one export, retries included.
	Timeout time.Duration
	// QueueSize bounds the events waiting for the collector.
	QueueSize int
	// MetricsInterval is how often ExportMetrics sends.
	MetricsInterval time.Duration

	// The resource: which certlens this is.
	InstanceID, Version, Mode, Upstream string
}

// Validate checks what New needs.
func (o Options) Validate() error {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("otlp: endpoint %q is not an http:// or https:// URL", o.Endpoint)
	}
	if o.Protocol != GRPC && o.Protocol != HTTP {
		return fmt.Errorf("otlp: protocol %q is not grpc or http/protobuf", o.Protocol)
	}
	if o.Timeout <= 0 || o.QueueSize <= 0 || o.MetricsInterval <= 0 {
		return errors.New("otlp: timeout, queue size and metrics interval must be positive")
	}
	return nil
}

// Exporter is the OTLP destination of the events (Core) and metrics
// (ExportMetrics).
type Exporter struct {
	opts     Options
	res      *resource.Resource
	tls      *tls.Config // nil for http://
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
	meters   *sdkmetric.MeterProvider

	// queued counts events handed to the SDK's batch processor and not yet
	// to the exporter: the bound is kept here, below the processor's own
	// queue (which would drop its oldest records without telling).
	queued   atomic.Int64
	exported atomic.Uint64
	dropped  atomic.Uint64
	// failing is set by a failed export and cleared by a good one; while
	// set, one event a probeEvery (probeAt, Unix ns) is admitted.
	failing atomic.Bool
	probeAt atomic.Int64
	warn    warner
}

// New builds the log pipeline: records are batched and sent in the
// background from now on.
func New(o Options) (*Exporter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Exporter{opts: o, warn: warner{every: time.Minute, endpoint: o.Endpoint}}
	u, _ := url.Parse(o.Endpoint)
	if u.Scheme == "https" {
		c, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		e.tls = c
	}
	e.res = resource.NewSchemaless(resourceAttrs(o)...)
	exp, err := e.logExporter(u)
	if err != nil {
		return nil, fmt.Errorf("otlp: %w", err)
	}
	// The SDK reports export failures through the global error handler,
	// which prints every one; the warner folds them into one line a minute.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(e.warn.noteError))
	const batch = 512
	proc := sdklog.NewBatchProcessor(&counting{Exporter: exp, e: e},
		sdklog.WithMaxQueueSize(o.QueueSize+batch),
		sdklog.WithExportMaxBatchSize(batch),
		sdklog.WithExportInterval(time.Second),
		sdklog.WithExportTimeout(o.Timeout))
	// Every name is written once per event (event.FieldNames, tested):
	// the SDK's duplicate check, a map per record, is not needed. No
	// event nests deeper than a list of objects holding lists, so the
	// depth limit's walk of every list and object finds nothing to cut.
	e.provider = sdklog.NewLoggerProvider(sdklog.WithResource(e.res), sdklog.WithProcessor(attach{proc}),
		sdklog.WithAllowKeyDuplication(), sdklog.WithAttributeValueDepthLimit(-1))
	e.logger = e.provider.Logger("github.com/certlens/certlens", otellog.WithInstrumentationVersion(o.Version))
	return e, nil
}

func resourceAttrs(o Options) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", "certlens"),
		attribute.String("service.instance.id", o.InstanceID),
	}
	if o.Version != "" {
		attrs = append(attrs, attribute.String("service.version", o.Version))
	}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, attribute.String("host.name", host))
	}
	if o.Mode != "" {
		attrs = append(attrs, attribute.String("certlens.mode", o.Mode))
	}
	if o.Upstream != "" {
		attrs = append(attrs, attribute.String("certlens.upstream", o.Upstream))
	}
	return attrs
}

func tlsConfig(o Options) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("otlp.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("otlp.tls.ca: %s holds no PEM certificate", o.CAFile)
		}
		c.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("otlp.tls.cert: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// retry: backoff between attempts, all within one export's timeout.
func (e *Exporter) retry() (initial, maxInterval, elapsed time.Duration) {
	return min(500*time.Millisecond, e.opts.Timeout/4), min(5*time.Second, e.opts.Timeout/2), e.opts.Timeout
}

func (e *Exporter) logExporter(u *url.URL) (sdklog.Exporter, error) {
	ctx := context.Background()
	initial, maxInterval, elapsed := e.retry()
	if e.opts.Protocol == HTTP {
		opts := []otlploghttp.Option{otlploghttp.WithEndpoint(u.Host), otlploghttp.WithURLPath(joinPath(u.Path, "/v1/logs")),
			otlploghttp.WithHeaders(e.opts.Headers), otlploghttp.WithTimeout(e.opts.Timeout),
			otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: true, InitialInterval: initial, MaxInterval: maxInterval, MaxElapsedTime: elapsed})}
		if e.tls == nil {
			opts = append(opts, otlploghttp.WithInsecure())
		} else {
			opts = append(opts, otlploghttp.WithTLSClientConfig(e.tls))
		}
		return otlploghttp.New(ctx, opts...)
	}
	opts := []otlploggrpc.Option{otlploggrpc.WithEndpoint(u.Host), otlploggrpc.WithHeaders(e.opts.Headers),
		otlploggrpc.WithTimeout(e.opts.Timeout), otlploggrpc.WithDialOption(reconnect),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: true, InitialInterval: initial, MaxInterval: maxInterval, MaxElapsedTime: elapsed})}
	if e.tls == nil {
		opts = append(opts, otlploggrpc.WithInsecure())
	} else {
		opts = append(opts, otlploggrpc.WithTLSCredentials(credentials.NewTLS(e.tls)))
	}
	return otlploggrpc.New(ctx, opts...)
}

func (e *Exporter) metricExporter(u *url.URL) (sdkmetric.Exporter, error) {
	ctx := context.Background()
	initial, maxInterval, elapsed := e.retry()
	if e.opts.Protocol == HTTP {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(u.Host), otlpmetrichttp.WithURLPath(joinPath(u.Path, "/v1/metrics")),
			otlpmetrichttp.WithHeaders(e.opts.Headers), otlpmetrichttp.WithTimeout(e.opts.Timeout),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: true, InitialInterval: initial, MaxInterval: maxInterval, MaxElapsedTime: elapsed})}
		if e.tls == nil {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		} else {
			opts = append(opts, otlpmetrichttp.WithTLSClientConfig(e.tls))
		}
		return otlpmetrichttp.New(ctx, opts...)
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(u.Host), otlpmetricgrpc.WithHeaders(e.opts.Headers),
		otlpmetricgrpc.WithTimeout(e.opts.Timeout), otlpmetricgrpc.WithDialOption(reconnect),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: true, InitialInterval: initial, MaxInterval: maxInterval, MaxElapsedTime: elapsed})}
	if e.tls == nil {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	} else {
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(e.tls)))
	}
	return otlpmetricgrpc.New(ctx, opts...)
}

// reconnect caps gRPC's reconnection backoff (two minutes by default) at
// five seconds: a collector that restarts gets the events again within
// seconds, not minutes of drops.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
	MinConnectTimeout: time.Second,
})

func joinPath(base, suffix string) string {
	return strings.TrimSuffix(base, "/") + suffix
}

// ExportMetrics sends what g gathers (the /metrics registry) every
// MetricsInterval, through the Prometheus bridge: the same series, as OTLP
// metrics with the exporter's resource.
func (e *Exporter) ExportMetrics(g prometheus.Gatherer) error {
	u, _ := url.Parse(e.opts.Endpoint)
	exp, err := e.metricExporter(u)
	if err != nil {
		return fmt.Errorf("otlp: %w", err)
	}
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(e.opts.MetricsInterval), sdkmetric.WithTimeout(e.opts.Timeout),
		sdkmetric.WithProducer(promb.NewMetricProducer(promb.WithGatherer(g))))
	e.meters = sdkmetric.NewMeterProvider(sdkmetric.WithResource(e.res), sdkmetric.WithReader(reader))
	return nil
}

// SetLogger is where the once-a-minute warnings go: the logger this
// exporter's Core is part of (so it is set after the logger is built).
func (e *Exporter) SetLogger(l *zap.Logger) { e.warn.setLogger(l) }

// Dropped is how many events were not delivered: the queue full, or a
// batch the collector did not take in time.
func (e *Exporter) Dropped() uint64 { return e.dropped.Load() }

// Exported is how many events the collector took.
func (e *Exporter) Exported() uint64 { return e.exported.Load() }

// DroppedCounter is certlens_export_dropped_total for /metrics (and so
// for the OTLP metrics too, when the collector is back).
func (e *Exporter) DroppedCounter() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "certlens_export_dropped_total",
		Help: "Events the OTLP exporter did not deliver: its queue (otlp.queue_size) full, or the collector not taking a batch within otlp.timeout.",
	}, func() float64 { return float64(e.dropped.Load()) })
}

// Shutdown sends what is queued (within ctx) and stops.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.provider.Shutdown(ctx)
	if e.meters != nil {
		err = errors.Join(err, e.meters.Shutdown(ctx))
	}
	e.warn.flush()
	return err
}

func (e *Exporter) drop(n int, err error) {
	if n <= 0 {
		return
	}
	e.dropped.Add(uint64(n))
	e.warn.dropped(uint64(n), err)
}

// errQueueFull is why an event was dropped without being offered.
var errQueueFull = errors.New("export queue full (otlp.queue_size): the collector is not keeping up or not reachable")

// counting is the innermost exporter: what reaches it has left the
// queue; what it fails to send is lost.
type counting struct {
	sdklog.Exporter
	e *Exporter
}

func (c *counting) Export(ctx context.Context, records []sdklog.Record) error {
	if len(records) == 0 {
		return c.Exporter.Export(ctx, records)
	}
	c.e.queued.Add(-int64(len(records)))
	err := c.Exporter.Export(ctx, records)
	if err != nil {
		c.e.failing.Store(true)
		c.e.drop(len(records), err)
		return err
	}
	c.e.failing.Store(false)
	c.e.exported.Add(uint64(len(records)))
	c.e.warn.ok()
	return nil
}

// warner says that events are being dropped, once a minute at most, and
// that export resumed after it said so.
type warner struct {
	mu       sync.Mutex
	every    time.Duration
	endpoint string
	log      *zap.Logger
	last     time.Time
	pending  uint64 // dropped since the last warning
	lastErr  string
	warned   bool // a warning went out and no export has succeeded since
}

func (w *warner) setLogger(l *zap.Logger) {
	w.mu.Lock()
	w.log = l
	w.mu.Unlock()
}

func (w *warner) noteError(err error) {
	w.mu.Lock()
	w.lastErr = err.Error()
	w.mu.Unlock()
}

func (w *warner) dropped(n uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending += n
	if err != nil {
		w.lastErr = err.Error()
	}
	if now := time.Now(); w.log != nil && now.Sub(w.last) >= w.every {
		w.log.Warn("otlp export dropping events", zap.String("endpoint", w.endpoint), zap.Uint64("dropped", w.pending),
			zap.String("error", w.lastErr), zap.String("note", "tunnels are not affected; counted in certlens_export_dropped_total; next report in a minute at most"))
		w.last, w.pending, w.warned = now, 0, true
	}
}

func (w *warner) ok() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.warned && w.log != nil {
		w.log.Info("otlp export resumed", zap.String("endpoint", w.endpoint), zap.Uint64("dropped_since_last_report", w.pending))
		w.warned, w.pending = false, 0
	}
}

// flush reports drops not yet reported, at shutdown.
func (w *warner) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending > 0 && w.log != nil {
		w.log.Warn("otlp export dropping events", zap.String("endpoint", w.endpoint), zap.Uint64("dropped", w.pending), zap.String("error", w.lastErr))
		w.pending = 0
	}
}
