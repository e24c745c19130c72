package logging

import (
	"encoding/json"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/event"
)

// ECSVersion is the Elastic Common Schema release --log-format ecs
// follows (its field reference is internal/logging/testdata/ecs_fields.yml).
const ECSVersion = "9.4.0"

// ecsEncoder writes --log-format ecs: one ECS JSON document a line for
// Filebeat or Elastic Agent. Handshake and connection events are written
// under the names of event.FieldNames; any other entry (listening, config
// reloaded, ...) keeps its fields under certlens.*.
type ecsEncoder struct {
	zapcore.Encoder // JSON, for other entries; it also holds With fields
}

func newECSEncoder() zapcore.Encoder {
	c := zap.NewProductionEncoderConfig()
	c.TimeKey, c.LevelKey, c.MessageKey, c.NameKey = "@timestamp", "log.level", "message", "log.logger"
	c.CallerKey, c.StacktraceKey = "", "error.stack_trace"
	c.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	c.EncodeDuration = zapcore.MillisDurationEncoder
	return &ecsEncoder{Encoder: zapcore.NewJSONEncoder(c)}
}

func (e *ecsEncoder) Clone() zapcore.Encoder { return &ecsEncoder{Encoder: e.Encoder.Clone()} }

var ecsPool = buffer.NewPool()

func (e *ecsEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	for _, f := range fields {
		if f.Type != zapcore.InlineMarshalerType {
			continue
		}
		switch v := f.Interface.(type) {
		case *event.Handshake:
			doc := ecsDoc(ent, "tls-handshake", "certlens.handshake", []string{"connection", "protocol"}, v.Verdict, v.ClientAddr, v.TLSVersion != "")
			v.Attributes(event.ECS, doc)
			return doc.encode()
		case *event.Closed:
			doc := ecsDoc(ent, "connection-closed", "certlens.connection", []string{"connection", "end"}, v.Verdict, v.ClientAddr, v.TLSVersion != "")
			v.Attributes(event.ECS, doc)
			return doc.encode()
		}
	}
	all := make([]zapcore.Field, 0, len(fields)+2)
	all = append(all, zap.String("ecs.version", ECSVersion), zap.Namespace("certlens"))
	return e.Encoder.EncodeEntry(ent, append(all, fields...))
}

// ecsDoc starts an event's document with what ECS asks of every event.
func ecsDoc(ent zapcore.Entry, action, dataset string, types []string, verdict, client string, isTLS bool) tree {
	t := tree{}
	t.Str("@timestamp", ent.Time.UTC().Format(time.RFC3339Nano))
	t.Str("message", ent.Message)
	t.Str("log.level", ent.Level.String())
	t.Str("ecs.version", ECSVersion)
	t.Str("event.kind", "event")
	t.Strs("event.category", []string{"network"})
	t.Strs("event.type", types)
	t.Str("event.action", action)
	t.Str("event.module", "certlens")
	t.Str("event.dataset", dataset)
	t.Str("event.outcome", event.Outcome(verdict))
	t.Str("network.transport", "tcp")
	if isTLS {
		t.Str("network.protocol", "tls")
	}
	if host, _, err := net.SplitHostPort(client); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			if ip.To4() != nil {
				t.Str("network.type", "ipv4")
			} else {
				t.Str("network.type", "ipv6")
			}
		}
	}
	return t
}

// tree is an ECS document: dotted names become nested objects, as
// Elasticsearch maps them.
type tree map[string]any

func (t tree) put(key string, v any) {
	m := t
	for {
		head, rest, ok := strings.Cut(key, ".")
		if !ok {
			m[key] = v
			return
		}
		next, ok := m[head].(tree)
		if !ok {
			next = tree{}
			m[head] = next
		}
		m, key = next, rest
	}
}

func (t tree) Str(key, v string)           { t.put(key, v) }
func (t tree) Int(key string, v int64)     { t.put(key, v) }
func (t tree) Float(key string, v float64) { t.put(key, v) }
func (t tree) Bool(key string, v bool)     { t.put(key, v) }
func (t tree) Strs(key string, v []string) { t.put(key, list(v)) }

// Objects' own keys are DESIGN.md's, without dots: flat.
func (t tree) Objects(key string, each []func(event.Attrs)) { t.put(key, objects(each)) }

type flat map[string]any

func (f flat) Str(key, v string)                            { f[key] = v }
func (f flat) Int(key string, v int64)                      { f[key] = v }
func (f flat) Float(key string, v float64)                  { f[key] = v }
func (f flat) Bool(key string, v bool)                      { f[key] = v }
func (f flat) Strs(key string, v []string)                  { f[key] = list(v) }
func (f flat) Objects(key string, each []func(event.Attrs)) { f[key] = objects(each) }

// list is v as the document holds it: not a copy, as the document is
// encoded and dropped before EncodeEntry returns (an issuer list of
// hundreds of names would be copied for nothing on every event); nil is
// [], as the JSON log writes an empty list.
func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func objects(each []func(event.Attrs)) []any {
	list := make([]any, len(each))
	for i, g := range each {
		o := flat{}
		g(o)
		list[i] = o
	}
	return list
}

func (t tree) encode() (*buffer.Buffer, error) {
	out := ecsPool.Get()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}
