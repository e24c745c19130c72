package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/capture"
	"github.com/certlens/certlens/internal/report"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const transcripts = "../../handshake/testdata/transcripts/"

// logSession logs what a serve session logs, the way the proxy logs it
// (zap.Inline of the event types, typed fields for the rest): a listener,
// a refused CONNECT, a plain-HTTP request, a reload, and the handshake and
// connection-closed events analyze makes of transcripts recorded from real
// peers (a 261-CA list, no certificate sent, TLS 1.3 inferred, a
// renegotiation).
func logSession(t *testing.T, log *zap.Logger) {
	t.Helper()
	log.Info("listening", zap.String("addr", "127.0.0.1:8080"), zap.String("mode", "observe"),
		zap.String("allow_ports", "443,4443,8443"), zap.Bool("auth", false), zap.Int("max_conns", 1000))
	log.Warn("connect refused", zap.String("client_addr", "127.0.0.1:50412"), zap.String("target", "127.0.0.1:25"),
		zap.String("reason", "port 25 is not in allow_ports (443,4443,8443)"))
	log.Info("http", zap.String("client_addr", "127.0.0.1:50414"), zap.String("method", "GET"),
		zap.String("host", "intranet.corp.example"), zap.String("path", "/"), zap.Int("status", 200))
	log.Info("config reloaded", zap.String("trigger", "SIGHUP"), zap.String("file", "/etc/certlens/certlens.yaml"))
	for _, name := range []string{"tls12-260ca-curl-cert.pcap", "tls12-3ca-curl-nocert.pcap", "tls13-3ca-curl-nocert.pcap", "tls12-renegotiation-sclient.pcap"} {
		f, err := os.Open(transcripts + name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = capture.Analyze(f, capture.Options{Name: name, WatchRenegotiation: true}, func(ev capture.Event) {
			if h := ev.Handshake; h != nil {
				switch h.Level() {
				case "error":
					log.Error("handshake", zap.Inline(h))
				case "warn":
					log.Warn("handshake", zap.Inline(h))
				default:
					log.Info("handshake", zap.Inline(h))
				}
				return
			}
			log.Info("connection closed", zap.Inline(ev.Closed))
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fixedClock gives every entry the same time, on a day that is not today:
// the console shows the date.
type fixedClock struct{}

func (fixedClock) Now() time.Time                         { return time.Date(2025, 1, 2, 9, 28, 22, 443e6, time.UTC) }
func (fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// TestConsoleGolden is the console format of a session: one summary line
// per handshake with the CA names folded after ten, the findings with their
// remedies below it; one key=value line per other event.
func TestConsoleGolden(t *testing.T) {
	var out bytes.Buffer
	opts := ConsoleOptions(false)
	opts.Location = time.UTC
	log := zap.New(zapcore.NewCore(newConsoleEncoder(opts), zapcore.AddSync(&out), zapcore.DebugLevel), zap.WithClock(fixedClock{}))
	logSession(t, log)
	got := out.String()
	for _, want := range []string{
		"2025-01-02 09:28:22.443 INFO  listening addr=127.0.0.1:8080 mode=observe allow_ports=443,4443,8443 auth=false max_conns=1000\n",
		`2025-01-02 09:28:22.443 WARN  connect refused client_addr=127.0.0.1:50412 target=127.0.0.1:25 reason="port 25 is not in allow_ports (443,4443,8443)"` + "\n",
		"2025-01-02 09:28:22.443 INFO  handshake  127.0.0.1:443 (localhost)  TLS 1.2 (clear)  261 CA names, 60,693 bytes  certificate sent: CN=certlens golden client,O=certlens test  verdict ok (certain)  conn tls12-260ca-curl-cert.pcap#0\n",
		"          ... and 251 more\n    Findings\n      WARNING issuer-list-too-large: ",
		"              Remedy: Remove roots the site does not need",
		"2025-01-02 09:28:22.443 WARN  handshake  127.0.0.1:443 (localhost)  TLS 1.2 (clear)  3 CA names, 339 bytes  no certificate sent  verdict 403.7 (predicted)  conn tls12-3ca-curl-nocert.pcap#0\n",
		"2025-01-02 09:28:22.443 INFO  connection closed conn_id=tls12-3ca-curl-nocert.pcap#0 mode=analyze ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(got, `"level":`) || strings.Contains(got, "\n{") {
		t.Error("JSON left in the console output")
	}
	path := filepath.Join("testdata", "console.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/logging -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("console output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestConsoleIsViewOfTheJSONLog: with --log-format console and a log
// file, the file holds JSON lines (as with --log-format json), and
// rendering it as certlens view does gives the console's output exactly.
func TestConsoleIsViewOfTheJSONLog(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "handshakes.jsonl")
	var console bytes.Buffer
	log, closeLog, err := New(Options{Format: "console", Level: "info", File: file, Stdout: &console})
	if err != nil {
		t.Fatal(err)
	}
	logSession(t, log.With(zap.String("component", "test")))
	closeLog()

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["ts"] == nil || m["component"] != "test" {
			t.Fatalf("log file line %q: %v", line, err)
		}
	}
	var viewed bytes.Buffer
	v := report.NewView(&viewed, ConsoleOptions(false), report.Filter{})
	for _, line := range lines {
		v.Line([]byte(line))
	}
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	if v.Skipped() != "" {
		t.Errorf("view skipped lines of the log: %s", v.Skipped())
	}
	if console.String() != viewed.String() {
		t.Errorf("console and view differ:\n--- console\n%s\n--- view\n%s", console.String(), viewed.String())
	}
	if n := strings.Count(console.String(), " handshake  "); n != 5 {
		t.Errorf("%d handshake lines, want 5", n)
	}
}

// TestConsoleColourOnlyOnATerminal: a console log written to a file (or a
// pipe) has no colour codes; UseColor decides, NO_COLOR included.
func TestConsoleColourOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	log, closeLog, err := New(Options{Format: "console", Level: "info", Stdout: f})
	if err != nil {
		t.Fatal(err)
	}
	logSession(t, log)
	closeLog()
	f.Close()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("\x1b[")) || !bytes.Contains(data, []byte("verdict 403.7 (predicted)")) {
		t.Errorf("console output in a file:\n%q", data)
	}

	var coloured bytes.Buffer
	clog := zap.New(zapcore.NewCore(newConsoleEncoder(ConsoleOptions(true)), zapcore.AddSync(&coloured), zapcore.InfoLevel))
	logSession(t, clog)
	if !bytes.Contains(coloured.Bytes(), []byte("\x1b[31m\x1b[1m403.7\x1b[0m (predicted)")) {
		t.Error("no colour on the verdict with colour on")
	}
}

// TestJSONUnchanged: the JSON format is what tools parse; the console
// encoder shares its configuration but must not change it.
func TestJSONUnchanged(t *testing.T) {
	var out bytes.Buffer
	log, closeLog, err := New(Options{Format: "json", Level: "info", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("shutting down", zap.Duration("grace", 10*time.Second), zap.String("x", "y"))
	closeLog()
	line := out.String()
	if !strings.HasPrefix(line, `{"level":"info","ts":"`) || !strings.HasSuffix(line, `","msg":"shutting down","grace":10000,"x":"y"}`+"\n") {
		t.Errorf("JSON line %q", line)
	}
	if _, _, err := New(Options{Format: "text", Level: "info"}); err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), `log.format: "text" is not json, console or ecs`) {
		t.Errorf("unknown format: %v", err)
	}
}
