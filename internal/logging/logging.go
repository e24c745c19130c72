// Package logging builds certlens's zap logger: JSON lines to stdout by
// default, console output for humans when asked (what `certlens view`
// prints of a JSON log), and an optional JSON file for `tail -f | jq`.
package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/report"
)

// Options say where and how to log.
type Options struct {
	Format string // "json", "console" or "ecs" (Elastic Common Schema)
	Level  string // debug, info, warn, error
	File   string // appended to as JSON lines, created 0600; "" for none
	Stdout io.Writer
	// Atomic, when set, is the level the logger obeys, set from Level: keep
	// it to change the level later (a config reload).
	Atomic *zap.AtomicLevel
	// Stderr receives the report of a log file that cannot be written; nil is os.Stderr.
	Stderr io.Writer
	// Hub, when set, receives the page's events (HubMessages) at the log's
	// level as the JSON lines the log writes: the very bytes of the JSON
	// stdout or log.file line, encoded once for both (with console or ecs
	// and no log.file, encoded for the hub alone).
	Hub *Hub
	// Cores are further destinations every entry is teed to (an exporter).
	// Each must not block: a slow destination drops, it never holds a
	// tunnel.
	Cores []zapcore.Core
}

// New returns the logger and a function that flushes and closes it.
func New(o Options) (*zap.Logger, func(), error) {
	level := zap.NewAtomicLevel()
	if o.Atomic != nil {
		level = *o.Atomic
	}
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	out := o.Stdout
	if out == nil {
		out = os.Stdout
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "", "json":
		enc = zapcore.NewJSONEncoder(jsonConfig())
	case "console":
		color := false
		if f, ok := out.(*os.File); ok {
			color = report.UseColor(f)
		}
		enc = newConsoleEncoder(ConsoleOptions(color))
	case "ecs":
		enc = newECSEncoder()
	default:
		return nil, nil, fmt.Errorf("log.format: %q is not json, console or ecs", o.Format)
	}
	// The first JSON destination also feeds the hub; hub is nil once one does.
	hub := o.Hub
	jsonCore := func(enc zapcore.Encoder, w zapcore.WriteSyncer) zapcore.Core {
		if hub == nil {
			return zapcore.NewCore(enc, w, level)
		}
		c := newSharingCore(enc, w, level, hub)
		hub = nil
		return c
	}
	var cores []zapcore.Core
	if o.Format == "" || o.Format == "json" {
		cores = append(cores, jsonCore(enc, zapcore.Lock(zapcore.AddSync(out))))
	} else {
		cores = append(cores, zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level))
	}
	var file *os.File
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log.file: %w", err)
		}
		file = f
		fw := &fileWriter{f: f, name: o.File, stderr: o.Stderr}
		if fw.stderr == nil {
			fw.stderr = os.Stderr
		}
		cores = append(cores, jsonCore(zapcore.NewJSONEncoder(jsonConfig()), zapcore.Lock(fw)))
	}
	if hub != nil { // no JSON destination to share
		cores = append(cores, hub.core(level))
	}
	cores = append(cores, o.Cores...)
	log := zap.New(zapcore.NewTee(cores...))
	closeFn := func() {
		_ = log.Sync()
		if file != nil {
			_ = file.Close()
		}
	}
	return log, closeFn, nil
}

func jsonConfig() zapcore.EncoderConfig {
	c := zap.NewProductionEncoderConfig()
	c.TimeKey = "ts"
	c.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	c.EncodeDuration = zapcore.MillisDurationEncoder
	c.NewReflectedEncoder = newReflectedEncoder
	return c
}

// preEncoded is a value that carries its JSON already encoded the way
// zap's JSON encoder would write it (event.PreEncodedJSON: an issuer list,
// encoded once per list instead of escaped again for every event).
type preEncoded interface{ PreEncodedJSON() []byte }

// reflectedEncoder is zap's default reflected encoder (encoding/json,
// without HTML escaping, as zap's own strings), except that it writes a
// preEncoded value as is: encoding/json would call its MarshalJSON and
// then scan and copy the 60 KB to check them.
type reflectedEncoder struct {
	w    io.Writer
	json *json.Encoder
}

func newReflectedEncoder(w io.Writer) zapcore.ReflectedEncoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &reflectedEncoder{w: w, json: enc}
}

func (r *reflectedEncoder) Encode(v any) error {
	if p, ok := v.(preEncoded); ok {
		_, err := r.w.Write(p.PreEncodedJSON())
		return err
	}
	return r.json.Encode(v)
}

// writeErrors counts events lost because the log file could not be written:
// process-wide, like the file itself, for /metrics.
var writeErrors atomic.Uint64

// WriteErrors reports how many events the log file lost.
func WriteErrors() uint64 { return writeErrors.Load() }

// fileWriter writes the log file. A full disk or a revoked file must not
// stop certlens: the tunnels keep relaying and stdout keeps its events, so
// a failed write is counted and reported on stderr (once, then at most
// every reportEvery), never returned to zap, which would print every one.
type fileWriter struct {
	f        *os.File
	name     string
	stderr   io.Writer
	reported time.Time
	lost     uint64 // since the last report
}

const reportEvery = 10 * time.Second

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err == nil {
		return n, nil
	}
	writeErrors.Add(1)
	w.lost++
	if now := time.Now(); now.Sub(w.reported) >= reportEvery {
		fmt.Fprintf(w.stderr, "certlens: log.file %s: %v: %d event(s) not written there (still on stdout; counted in certlens_log_write_errors_total)\n", w.name, err, w.lost)
		w.reported, w.lost = now, 0
	}
	return len(p), nil
}

func (w *fileWriter) Sync() error {
	_ = w.f.Sync()
	return nil
}
