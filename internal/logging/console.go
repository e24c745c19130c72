package logging

import (
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/report"
)

// issuerFold is how many CA names of a request the console shows before
// it says how many more there are: a 261-CA list is not read name by name
// at a terminal (the JSON log has them all).
const issuerFold = 10

// ConsoleOptions are the report options of the console format, which
// `certlens view` shares so that both print an event alike.
func ConsoleOptions(color bool) report.Options {
	return report.Options{Color: color, IssuerFold: issuerFold}
}

// consoleEncoder writes each event as internal/report renders a line of the
// JSON log: it builds that line with the JSON encoder and renders it, so
// the console and `certlens view` of the JSON log cannot differ.
type consoleEncoder struct {
	zapcore.Encoder // JSON; it also holds the logger's With fields
	opts            report.Options
}

// newConsoleEncoder returns the encoder of --log-format console.
func newConsoleEncoder(opts report.Options) zapcore.Encoder {
	return &consoleEncoder{Encoder: zapcore.NewJSONEncoder(jsonConfig()), opts: opts}
}

var consolePool = buffer.NewPool()

func (e *consoleEncoder) Clone() zapcore.Encoder {
	return &consoleEncoder{Encoder: e.Encoder.Clone(), opts: e.opts}
}

func (e *consoleEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	line, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	defer line.Free()
	out := consolePool.Get()
	entry, err := report.ParseEntry(line.Bytes())
	if err != nil {
		// Not expected of what zap just wrote; the event is not lost.
		out.Write(line.Bytes())
		return out, nil
	}
	if err := report.New(out, e.opts).Entry(entry); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}
