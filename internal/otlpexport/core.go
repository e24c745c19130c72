package otlpexport

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/event"
)

// Core is the zap core (logging.Options.Cores) that turns each handshake
// and connection closed event into an OTLP log record. Other entries
// (listening, config reloaded, its own warnings) are not exported.
func (e *Exporter) Core() zapcore.Core { return core{e} }

type core struct{ e *Exporter }

var _ zapcore.Core = core{}

func (c core) Enabled(zapcore.Level) bool        { return true }
func (c core) With([]zapcore.Field) zapcore.Core { return c }
func (c core) Sync() error                       { return nil }

func (c core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if ent.Message == "handshake" || ent.Message == "connection closed" {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write never blocks: the record goes to the batch processor's queue, or
// is dropped and counted when otlp.queue_size events already wait.
func (c core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	var (
		name string
		emit func(event.Dialect, event.Attrs)
	)
	for _, f := range fields {
		if f.Type != zapcore.InlineMarshalerType {
			continue
		}
		switch v := f.Interface.(type) {
		case *event.Handshake:
			name, emit = "certlens.handshake", v.Attributes
		case *event.Closed:
			name, emit = "certlens.connection_closed", v.Attributes
		}
	}
	if name == "" {
		return nil
	}
	e := c.e
	// Admitted before anything is built: while the collector is away, a
	// dropped event costs a counter, not its attributes.
	if !e.admit(ent.Time) {
		return nil
	}
	attrs := attrPool.Get().(*attrs)
	defer func() {
		clear(*attrs) // the strings it holds belong to the event
		*attrs = (*attrs)[:0]
		attrPool.Put(attrs)
	}()
	emit(event.OTel, attrs)
	var r otellog.Record
	r.SetEventName(name)
	r.SetTimestamp(ent.Time)
	r.SetObservedTimestamp(time.Now())
	r.SetSeverity(severity(ent.Level))
	r.SetSeverityText(ent.Level.String())
	r.SetBody(attribute.StringValue(ent.Message))
	// The attributes go by context to attach, not into r: the API record
	// would copy them and the SDK copy them again one at a time (a slice
	// grown some six times per event); attach sets them in one copy.
	e.logger.Emit(context.WithValue(context.Background(), attrsKey{}, attrs), r)
	return nil
}

type attrsKey struct{}

// attach is the processor in front of the batch processor: it gives the
// SDK's record the attributes Write passes in the context. Emit calls it
// synchronously, so the pooled buffer is still Write's.
type attach struct{ sdklog.Processor }

func (p attach) OnEmit(ctx context.Context, r *sdklog.Record) error {
	if a, ok := ctx.Value(attrsKey{}).(*attrs); ok {
		r.SetAttributes(*a...)
	}
	return p.Processor.OnEmit(ctx, r)
}

// probeEvery is how often, while exports fail, one event is let through
// to find out whether the collector is back; the others are dropped
// without being built. A collector that refuses connections fails an
// export at once (the HTTP exporter does not retry that), so without this
// every event would be built, encoded and sent for nothing.
const probeEvery = time.Second

func (e *Exporter) admit(now time.Time) bool {
	if e.failing.Load() {
		at := e.probeAt.Load()
		if now.UnixNano() < at || !e.probeAt.CompareAndSwap(at, now.Add(probeEvery).UnixNano()) {
			e.drop(1, nil)
			return false
		}
	}
	if e.queued.Add(1) > int64(e.opts.QueueSize) {
		e.queued.Add(-1)
		e.drop(1, errQueueFull)
		return false
	}
	return true
}

func severity(l zapcore.Level) otellog.Severity {
	switch l {
	case zapcore.DebugLevel:
		return otellog.SeverityDebug
	case zapcore.InfoLevel:
		return otellog.SeverityInfo
	case zapcore.WarnLevel:
		return otellog.SeverityWarn
	}
	return otellog.SeverityError
}

// attrs collects an event's attributes (event.Attrs) as OTel values.
type attrs []attribute.KeyValue

// attrPool keeps the attribute buffers: the SDK copies a record's
// attributes when it is emitted, so one buffer serves event after event
// instead of growing a new one for each (a third of export's allocations).
var attrPool = sync.Pool{New: func() any { a := make(attrs, 0, 64); return &a }}

func (a *attrs) Str(k, v string)           { *a = append(*a, attribute.String(k, v)) }
func (a *attrs) Int(k string, v int64)     { *a = append(*a, attribute.Int64(k, v)) }
func (a *attrs) Float(k string, v float64) { *a = append(*a, attribute.Float64(k, v)) }
func (a *attrs) Bool(k string, v bool)     { *a = append(*a, attribute.Bool(k, v)) }

// Strs copies: the SDK keeps the slice past the event.
func (a *attrs) Strs(k string, v []string) { *a = append(*a, attribute.StringSlice(k, v)) }

func (a *attrs) Objects(k string, each []func(event.Attrs)) {
	vals := make([]attribute.Value, len(each))
	for i, f := range each {
		// An object is built in the buffer's spare capacity, not in a
		// slice of its own grown from nothing: MapValue copies it out.
		o := (*a)[len(*a):]
		f(&o)
		vals[i] = attribute.MapValue(o...)
		clear(o)
	}
	*a = append(*a, attribute.Slice(k, vals...))
}
