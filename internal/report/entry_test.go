package report

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/capture"
	"github.com/certlens/certlens/internal/event"
)

const transcripts = "../../handshake/testdata/transcripts/"

// pcapHandshakes are the handshake events analyze makes of a transcript
// recorded from real peers.
func pcapHandshakes(t *testing.T, name string) []*event.Handshake {
	t.Helper()
	f, err := os.Open(transcripts + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hs []*event.Handshake
	if _, err := capture.Analyze(f, capture.Options{Name: name, WatchRenegotiation: true}, func(ev capture.Event) {
		if ev.Handshake != nil {
			hs = append(hs, ev.Handshake)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return hs
}

// logLine is an event as certlens's JSON log has it: level, ts and msg,
// then the event's fields.
func logLine(t *testing.T, level, msg string, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	head := `{"level":"` + level + `","ts":"2025-01-02T09:28:22.443Z","msg":` + strconv.Quote(msg)
	if string(b) == "{}" {
		return []byte(head + "}")
	}
	return []byte(head + "," + string(b[1:]))
}

// render parses a log line and writes it as the console does.
func render(t *testing.T, line []byte, opts Options) string {
	t.Helper()
	e, err := ParseEntry(line)
	if err != nil {
		t.Fatalf("ParseEntry(%s): %v", line, err)
	}
	var b strings.Builder
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if err := New(&b, opts).Entry(e); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestEntryHandshakeSummaryLine(t *testing.T) {
	for _, tc := range []struct {
		pcap  string
		index int
		want  string
	}{
		{"tls12-3ca-curl-nocert.pcap", 0, "2025-01-02 09:28:22.443 WARN  handshake  127.0.0.1:443 (localhost)  TLS 1.2 (clear)  3 CA names, 339 bytes  no certificate sent  verdict 403.7 (predicted)  conn tls12-3ca-curl-nocert.pcap#0\n"},
		{"tls12-260ca-curl-cert.pcap", 0, "  TLS 1.2 (clear)  261 CA names, 60,693 bytes  certificate sent: CN=certlens golden client,O=certlens test  verdict ok (certain)  conn "},
		{"tls13-3ca-curl-nocert.pcap", 0, "  TLS 1.3 (inferred)  certificate requested (inferred, request of 390 bytes)  no certificate sent (inferred)  verdict 403.7 (predicted)  conn "},
		{"tls12-norequest-curl.pcap", 0, "  TLS 1.2 (clear)  no certificate request  verdict ok (certain)  conn tls12-norequest-curl.pcap#0\n"},
		{"tls12-renegotiation-sclient.pcap", 1, "handshake  127.0.0.1:443  TLS 1.2 renegotiation (inferred)  certificate requested (inferred, request of 391 bytes)  certificate sent (inferred)  verdict ok (predicted)  conn tls12-renegotiation-sclient.pcap#0 #1\n"},
	} {
		t.Run(tc.pcap, func(t *testing.T) {
			h := pcapHandshakes(t, tc.pcap)[tc.index]
			out := render(t, logLine(t, h.Level(), "handshake", h), Options{IssuerFold: 10})
			first, _, _ := strings.Cut(out, "\n")
			if !strings.Contains(first+"\n", tc.want) {
				t.Errorf("summary line\n%q\nlacks\n%q", first, tc.want)
			}
		})
	}
}

// TestEntryIssuersFoldedAfterTen: the 261-CA list shows ten names and the
// count of the rest; a short list shows every name.
func TestEntryIssuersFoldedAfterTen(t *testing.T) {
	h := pcapHandshakes(t, "tls12-260ca-curl-cert.pcap")[0]
	out := render(t, logLine(t, h.Level(), "handshake", h), Options{IssuerFold: 10})
	numbered := regexp.MustCompile(`(?m)^ {6,7}\d+  CN=`).FindAllString(out, -1)
	if len(numbered) != 10 {
		t.Errorf("%d CA names shown, want 10:\n%s", len(numbered), out)
	}
	if !strings.Contains(out, "      10  "+h.CertRequest.Issuers[9]+"\n          ... and 251 more\n") {
		t.Errorf("no fold after the tenth name:\n%s", out)
	}
	if strings.Contains(out, h.CertRequest.Issuers[10]) {
		t.Error("the eleventh name is shown")
	}
	if n := strings.Count(out, "\n"); n > 40 {
		t.Errorf("%d lines for one handshake", n)
	}

	short := pcapHandshakes(t, "tls12-3ca-curl-nocert.pcap")[0]
	out = render(t, logLine(t, short.Level(), "handshake", short), Options{IssuerFold: 10})
	want := "    CA names asked for\n      1  " + short.CertRequest.Issuers[0] + "\n      2  " + short.CertRequest.Issuers[1] + "\n      3  " + short.CertRequest.Issuers[2] + "\n    Findings\n"
	if !strings.Contains(out, want) || strings.Contains(out, "more\n") {
		t.Errorf("three names, not folded:\n%s", out)
	}
}

// TestEntryFindingsAsAnalyze: below the summary line, the findings and
// remedies are exactly what analyze's report writes for the handshake.
func TestEntryFindingsAsAnalyze(t *testing.T) {
	for _, pcap := range []string{"tls12-3ca-curl-nocert.pcap", "tls12-260ca-curl-cert.pcap", "tls13-3ca-curl-nocert.pcap", "tls12-renegotiation-sclient.pcap"} {
		hs := pcapHandshakes(t, pcap)
		h := hs[len(hs)-1]
		var b strings.Builder
		if err := New(&b, Options{}).Connection(Connection{Heading: "x", Handshakes: []*event.Handshake{h}}); err != nil {
			t.Fatal(err)
		}
		_, findings, ok := strings.Cut(b.String(), "    Findings\n")
		findings, _, _ = strings.Cut(findings, "    Verdict: ")
		if !ok || !strings.Contains(findings, "Remedy: ") {
			t.Fatalf("%s: analyze's report has no findings with remedies:\n%s", pcap, b.String())
		}
		if out := render(t, logLine(t, h.Level(), "handshake", h), Options{IssuerFold: 10}); !strings.Contains(out, "    Findings\n"+findings) {
			t.Errorf("%s: console\n%s\nlacks analyze's findings\n%s", pcap, out, findings)
		}
	}
}

func TestEntryOtherEventsOneLine(t *testing.T) {
	for _, tc := range []struct {
		name, line, want string
	}{
		{"listening", `{"level":"info","ts":"2025-01-02T09:28:22.443Z","msg":"listening","addr":"127.0.0.1:8080","mode":"observe","allow_ports":"443,4443,8443","auth":false,"max_conns":1000}`,
			"2025-01-02 09:28:22.443 INFO  listening addr=127.0.0.1:8080 mode=observe allow_ports=443,4443,8443 auth=false max_conns=1000\n"},
		{"refused, with a reason to quote", `{"level":"warn","ts":"2025-01-02T09:28:22.443Z","msg":"connect refused","client_addr":"127.0.0.1:5","target":"127.0.0.1:25","reason":"port 25 is not in allow_ports (443)"}`,
			`2025-01-02 09:28:22.443 WARN  connect refused client_addr=127.0.0.1:5 target=127.0.0.1:25 reason="port 25 is not in allow_ports (443)"` + "\n"},
		{"closed, with an object", `{"level":"info","ts":"2025-01-02T09:28:22.443Z","msg":"connection closed","conn_id":"a#0","duration_ms":6.9,"reason":"client closed","pcap":{ "stream": 0 },"errors":["x y"]}`,
			`2025-01-02 09:28:22.443 INFO  connection closed conn_id=a#0 duration_ms=6.9 reason="client closed" pcap={"stream":0} errors=["x y"]` + "\n"},
		{"an escape sequence in a target is shown, not run", `{"level":"warn","ts":"2025-01-02T09:28:22.443Z","msg":"connect refused","target":"evil\u001b[2J:443","empty":""}`,
			`2025-01-02 09:28:22.443 WARN  connect refused target="evil\x1b[2J:443" empty=""` + "\n"},
		{"zap's epoch ts", `{"level":"error","ts":1735810102.443,"msg":"stopped"}`, "2025-01-02 09:28:22.443 ERROR stopped\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(t, []byte(tc.line), Options{}); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestEntryHandshakeTerminalSafe: strings a client chose (SNI, DNs) cannot
// send escape sequences to the terminal.
func TestEntryHandshakeTerminalSafe(t *testing.T) {
	h := pcapHandshakes(t, "tls12-3ca-curl-nocert.pcap")[0]
	h.SNI = "evil\x1b]0;owned\x07\u009b2J"
	h.CertRequest.Issuers[0] = "CN=\x1b[31mred"
	h.Findings[0].Remedy += "\x1b[2J"
	out := render(t, logLine(t, h.Level(), "handshake", h), Options{})
	if strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Errorf("control characters reach the terminal:\n%q", out)
	}
	if !strings.Contains(out, `(evil\x1b]0;owned\x07\x9b2J)`) || !strings.Contains(out, `CN=\x1b[31mred`) {
		t.Errorf("escaped strings not shown:\n%s", out)
	}
}

func TestEntryColour(t *testing.T) {
	h := pcapHandshakes(t, "tls12-3ca-curl-nocert.pcap")[0]
	out := render(t, logLine(t, h.Level(), "handshake", h), Options{Color: true})
	for _, want := range []string{yellow + "WARN " + reset, red + bold + "403.7" + reset + " (predicted)", yellow + "no certificate sent" + reset, red + bold + "ERROR  " + reset} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%q", want, out)
		}
	}
	if out := render(t, logLine(t, h.Level(), "handshake", h), Options{}); strings.Contains(out, "\x1b") {
		t.Error("colour without Options.Color")
	}
}

func TestParseEntryRejects(t *testing.T) {
	for _, line := range []string{
		"", "hello", "[1,2]", `"x"`, `{"a":1}`, `{"level":"info","msg":"m"}`,
		`{"level":"info","ts":"yesterday","msg":"m"}`,
		`{"level":"info","ts":"2025-01-02T09:28:22Z","msg":"m"} {"level":"info"}`,
		`{"level":"info","ts":"2025-01-02T09:28:22Z","msg":"m"`,
		`{"level":"info","ts":"2025-01-02T09:28:22Z","msg":"handshake","findings":"none"}`,
		`{"level":"info","ts":"2025-01-02T09:28:22Z","msg":"handshake","cert_request":{"issuers":[1]}}`,
		`{"level":7,"ts":"2025-01-02T09:28:22Z","msg":"m"}`,
	} {
		if e, err := ParseEntry([]byte(line)); err == nil {
			t.Errorf("ParseEntry(%s) = %+v, want an error", line, e)
		}
	}
}

func TestFilter(t *testing.T) {
	hs := pcapHandshakes(t, "tls12-3ca-curl-nocert.pcap")
	nocert := hs[0] // 403.7, to 127.0.0.1:443, SNI localhost
	ok := pcapHandshakes(t, "tls12-norequest-curl.pcap")[0]
	ok.Target, ok.SNI = "iis.corp.example:443", "iis.corp.example"
	warnOnly := pcapHandshakes(t, "tls12-renegotiation-sclient.pcap")[1] // ok (inferred), a warning
	entry := func(h *event.Handshake) *Entry {
		e, err := ParseEntry(logLine(t, h.Level(), "handshake", h))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	refused, _ := ParseEntry([]byte(`{"level":"warn","ts":"2025-01-02T09:28:22Z","msg":"connect refused","target":"db.corp.example:5432"}`))
	closed, _ := ParseEntry([]byte(`{"level":"info","ts":"2025-01-02T09:28:22Z","msg":"connection closed","target":"127.0.0.1:443","verdict":"403.16"}`))
	all := map[string]*Entry{"nocert": entry(nocert), "ok": entry(ok), "warnOnly": entry(warnOnly), "refused": refused, "closed": closed}
	for _, tc := range []struct {
		name string
		f    Filter
		want string
	}{
		{"none", Filter{}, "closed nocert ok refused warnOnly"},
		{"one verdict", Filter{Verdicts: []string{"403.7"}}, "nocert"},
		{"two verdicts, a closed event's too", Filter{Verdicts: []string{"403.7", "403.16"}}, "closed nocert"},
		{"problems", Filter{Problems: true}, "closed nocert"},
		{"problems or ok", Filter{Problems: true, Verdicts: []string{"ok"}}, "closed nocert ok warnOnly"},
		{"target substring, any case", Filter{Target: "CORP"}, "ok refused"},
		{"target pattern on the host", Filter{Target: "*.corp.example"}, "ok refused"},
		{"target pattern with a port", Filter{Target: "*:443"}, "closed nocert ok warnOnly"},
		{"SNI", Filter{Target: "localhost"}, "nocert"},
		{"target and verdict", Filter{Target: "corp", Verdicts: []string{"403.7"}}, ""},
		{"since after", Filter{Since: time.Date(2025, 1, 2, 9, 28, 23, 0, time.UTC)}, ""},
		{"since before", Filter{Since: time.Date(2025, 1, 2, 9, 28, 22, 0, time.UTC)}, "closed nocert ok refused warnOnly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, name := range []string{"closed", "nocert", "ok", "refused", "warnOnly"} {
				if tc.f.Match(all[name]) {
					got = append(got, name)
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("shows %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestViewSkipsAndCounts(t *testing.T) {
	h := pcapHandshakes(t, "tls12-3ca-curl-nocert.pcap")[0]
	var b strings.Builder
	v := NewView(&b, Options{}, Filter{Verdicts: []string{"403.7"}})
	v.Line([]byte("certlens starting"))
	v.Line(logLine(t, "info", "listening", map[string]string{"addr": "127.0.0.1:8080"}))
	v.Line(nil)
	v.Line(logLine(t, h.Level(), "handshake", h))
	v.Long()
	v.Line([]byte(`{"level":"info"}`))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "handshake  127.0.0.1:443"); n != 1 || strings.Contains(b.String(), "listening") {
		t.Errorf("output:\n%s", b.String())
	}
	if got, want := v.Skipped(), "skipped 3 lines that are not certlens JSON events (the first is line 1)"; got != want {
		t.Errorf("Skipped() = %q, want %q", got, want)
	}
}
