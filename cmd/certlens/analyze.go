package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/capture"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/report"
	"github.com/certlens/certlens/internal/report/page"
	"github.com/certlens/certlens/rules"
)

func newAnalyzeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analyze FILE...",
		Short: "Diagnose the TLS client-certificate handshakes in a packet capture (pcap, pcapng)",
		Long: `Read packet captures and diagnose every TLS handshake in them, as certlens
serve would have had it been in the path: the issuer list the server asked
with (count and bytes against Windows' 16 KB limit), the client certificate
sent, the alerts, and whether IIS answers 403.7 (or 403.13/403.16/403.17).

FILE is a pcap (tcpdump) or pcapng (Wireshark, dumpcap) file, optionally
gzip-compressed, or - for standard input. A Windows netsh trace or pktmon
.etl file must be converted first (pktmon etl2pcap, or etl2pcapng). TLS is
found by content on any port; TCP connections are numbered as Wireshark
numbers them, and each event names the frames to look at
(tcp.stream eq N, frame.number == F).

The default output is a report for people; --json writes the events of
certlens serve (one "handshake" line per handshake and one "connection
closed" line per TCP connection), with a "pcap" field, for jq.

Exit status: 0 when no handshake has a problem, 1 when one predicts a 403
(or another failure) or has an error finding, 2 when an input cannot be read
(the message names the file and the byte offset) or the command line or
configuration is wrong.`,
		Example: `  certlens analyze trace.pcapng
  certlens analyze --json capture.pcap.gz | jq 'select(.msg=="handshake") | {target, verdict}'
  certlens analyze --filter 'port 443 and host 10.0.0.5' --expect-cert alice.pem trace.pcapng
  tcpdump -i any -w - 'tcp port 443' | certlens analyze -`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("analyze needs at least one capture file (or - for standard input)")}
			}
			return nil
		},
		RunE: runAnalyze,
	}
	fs := cmd.Flags()
	fs.Bool("json", false, "write the events as JSON lines, those of certlens serve's log (README.md, \"Reading an event\"), instead of a report")
	fs.String("html", "", "also write the handshakes as one self-contained HTML `FILE` (the live page's views, no network needed) to attach to a ticket")
	fs.String("filter", "", `analyze only matching connections: host ADDR, port N, net CIDR, sni NAME (or a bare 10.0.0.5, 443, 10.0.0.5:443, *.corp.example), joined with and, or, not, ( )`)
	fs.String("config", "", `config file (YAML) for the rules.* keys; without it certlens reads ./certlens.yaml or $XDG_CONFIG_HOME/certlens/certlens.yaml if one exists [CERTLENS_CONFIG]`)
	fs.StringArray("expect-cert", nil, "client certificate file (PEM, DER or PKCS#12 without a password) you expect the client to send, or store:nss[:DIR], store:windows, store:macos for every certificate of a store; findings then say why it was not offered; repeat for several [expect_certs, CERTLENS_EXPECT_CERTS, comma separated]")
	fs.String("decrypt-keylog", "", "the client's key log (NSS format: SSLKEYLOGFILE, openssl -keylogfile, certlens --keylog) to decrypt TLS 1.3 and renegotiation handshakes [decrypt.keylog_file, CERTLENS_DECRYPT_KEYLOG_FILE]")
	fs.StringArray("client-cert-host", nil, "host (or pattern) known to want a client certificate, so a TLS 1.3 connection to it that cannot get one is flagged; repeat for several [rules.client_cert_hosts, CERTLENS_RULES_CLIENT_CERT_HOSTS, comma separated]")
	return cmd
}

// exitError carries the exit status a command chose: main exits with code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func runAnalyze(cmd *cobra.Command, files []string) error {
	cfg, err := config.Load(cmd.Flags())
	if err != nil {
		return err
	}
	printWarnings(cmd.ErrOrStderr(), cfg)
	expect, err := loadExpectCerts(cfg.ExpectCerts)
	if err != nil {
		return err
	}
	asJSON, _ := cmd.Flags().GetBool("json")
	var filter *capture.Filter
	if text, _ := cmd.Flags().GetString("filter"); text != "" {
		if filter, err = capture.ParseFilter(text); err != nil {
			return usageError{fmt.Errorf("--filter: %w", err)}
		}
	}
	opts := capture.Options{
		Rules:              rulesOptions(cfg, expect),
		WatchRenegotiation: cfg.Tunnel.WatchRenegotiation,
		Filter:             filter,
	}
	if cfg.Decrypt.KeylogFile != "" {
		kl, err := readKeylog(cfg.Decrypt.KeylogFile)
		if err != nil {
			return usageError{err}
		}
		opts.Secrets = kl
	}
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	stderr := cmd.ErrOrStderr()
	var sink analyzeSink
	if asJSON {
		sink = &jsonSink{w: out}
	} else {
		color := false
		if f, ok := cmd.OutOrStdout().(*os.File); ok {
			color = report.UseColor(f)
		}
		sink = &reportSink{opts: report.Options{Color: color, IssuerLimit: cfg.Rules.IssuerListErrorBytes}, out: out}
	}
	htmlFile, _ := cmd.Flags().GetString("html")
	var lines *lineSink
	if htmlFile != "" {
		lines = &lineSink{}
		sink = teeSink{sink, lines}
	}
	var inputErrs []error
	problems := 0
	for _, name := range files {
		r, closeFile, err := openInput(name, cmd.InOrStdin())
		if err != nil {
			inputErrs = append(inputErrs, err)
			if len(files) > 1 {
				fmt.Fprintln(stderr, "certlens:", err)
			}
			continue
		}
		sink.fileStart(name)
		o := opts
		o.Name = name
		st, err := capture.Analyze(r, o, func(ev capture.Event) {
			if ev.Handshake != nil && report.Problem(ev.Handshake) {
				problems++
			}
			sink.event(ev)
		})
		closeFile()
		// What was read is reported even when the file is damaged further on.
		sink.fileDone(name, st)
		if err != nil {
			inputErrs = append(inputErrs, err)
			if len(files) > 1 {
				// Say which file failed where its output ends; the command
				// then returns a count.
				_ = out.Flush()
				fmt.Fprintln(stderr, "certlens:", err)
			}
		}
		warnings(stderr, name, st)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if lines != nil {
		if err := writeHTMLReport(htmlFile, "certlens analyze "+strings.Join(files, " "), lines.events(), expect); err != nil {
			return exitError{2, err}
		}
		fmt.Fprintf(stderr, "certlens: report written to %s\n", htmlFile)
		if lines.left > 0 {
			fmt.Fprintf(stderr, "certlens: the report holds the first %d connections; %d more are in the --json output only\n", maxReportConns, lines.left)
		}
	}
	switch {
	case len(inputErrs) == 1:
		return exitError{2, inputErrs[0]}
	case len(inputErrs) > 1:
		return exitError{2, fmt.Errorf("%d of %d capture files could not be read to the end", len(inputErrs), len(files))}
	case problems == 1:
		return exitError{1, errors.New("1 handshake predicts a failure or has an error finding")}
	case problems > 1:
		return exitError{1, fmt.Errorf("%d handshakes predict a failure or have an error finding", problems)}
	}
	return nil
}

// openInput opens a capture file, "-" being standard input.
func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// warnings says on stderr what the capture hid from the analysis.
func warnings(w io.Writer, name string, st capture.Stats) {
	if st.UnknownLink > 0 {
		fmt.Fprintf(w, "certlens: %s: %d frames of link types certlens cannot decode (%s) were skipped\n", name, st.UnknownLink, strings.Join(st.UnknownLinkTypes, ", "))
	}
	if st.FragmentsLost > 0 {
		fmt.Fprintf(w, "certlens: %s: %d of %d IP fragments were not read: their datagrams never came whole in the capture\n", name, st.FragmentsLost, st.Fragments)
	}
	names := make([]string, 0, len(st.Tunnels))
	for n := range st.Tunnels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "certlens: %s: %s in %s not read: certlens cannot see inside it\n", name, plural(st.Tunnels[n], "packet"), n)
	}
	if st.StreamsForgotten > 0 {
		fmt.Fprintf(w, "certlens: %s: %d ended TCP connections were too many to remember: a later packet on their ports starts a new tcp.stream, so later stream numbers may be higher than Wireshark's\n", name, st.StreamsForgotten)
	}
	if st.Truncated > 0 {
		fmt.Fprintf(w, "certlens: %s: %d TCP segments were cut short by the capture's snap length; capture again with the full packet size (tcpdump -s 0)\n", name, st.Truncated)
	}
}

type analyzeSink interface {
	fileStart(name string)
	event(capture.Event)
	fileDone(name string, st capture.Stats)
}

// jsonSink writes each event as soon as it is known, as the proxy logs it:
// level, ts (the capture time) and msg, then the event's fields.
type jsonSink struct {
	w   *bufio.Writer
	err error
}

func (s *jsonSink) event(ev capture.Event) {
	var v any
	msg, level := "connection closed", "info"
	if ev.Handshake != nil {
		v, msg, level = ev.Handshake, "handshake", ev.Handshake.Level()
	} else {
		v = ev.Closed
	}
	if s.err == nil {
		s.err = writeEventLine(s.w, level, ev.Time, msg, v)
	}
}

// writeEventLine writes one event as certlens serve logs it: level, ts and
// msg, then the event's fields.
func writeEventLine(w *bufio.Writer, level string, ts time.Time, msg string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.WriteString(`{"level":"` + level + `","ts":"` + ts.UTC().Format("2006-01-02T15:04:05.999999999Z07:00") + `","msg":` + strconv.Quote(msg) + ",")
	w.Write(b[1:])
	return w.WriteByte('\n')
}

// lineSink keeps the JSON lines for an HTML report, the handshakes of
// the first maxReportConns connections: a report is for a person, and a
// capture of a busy server would not open in a browser.
type lineSink struct {
	buf   bytes.Buffer
	js    *jsonSink
	conns map[string]bool // conn_ids kept
	left  int             // connections left out
}

const maxReportConns = 20000

func (s *lineSink) event(ev capture.Event) {
	if s.js == nil {
		s.js = &jsonSink{w: bufio.NewWriter(&s.buf)}
		s.conns = map[string]bool{}
	}
	var id string
	if ev.Handshake != nil {
		id = ev.Handshake.ConnID
	} else {
		id = ev.Closed.ConnID
	}
	if !s.conns[id] {
		if len(s.conns) >= maxReportConns {
			if ev.Handshake == nil {
				s.left++
			}
			return
		}
		s.conns[id] = true
	}
	s.js.event(ev)
}

func (s *lineSink) fileStart(string)               {}
func (s *lineSink) fileDone(string, capture.Stats) {}

// events are the lines written so far.
func (s *lineSink) events() [][]byte {
	if s.js != nil {
		_ = s.js.w.Flush()
	}
	all := bytes.TrimSpace(s.buf.Bytes())
	if len(all) == 0 {
		return nil
	}
	return bytes.Split(all, []byte("\n"))
}

// teeSink hands every call to both sinks.
type teeSink [2]analyzeSink

func (t teeSink) fileStart(name string) {
	t[0].fileStart(name)
	t[1].fileStart(name)
}

func (t teeSink) event(ev capture.Event) {
	t[0].event(ev)
	t[1].event(ev)
}

func (t teeSink) fileDone(name string, st capture.Stats) {
	t[0].fileDone(name, st)
	t[1].fileDone(name, st)
}

// writeHTMLReport writes events (JSON lines) as one HTML file.
func writeHTMLReport(file, title string, events [][]byte, expect []rules.ExpectedCert) error {
	var b bytes.Buffer
	if err := page.WriteReport(&b, page.Report{Title: title, Events: events, Written: time.Now(), Expected: page.NewExpected(expect)}); err != nil {
		return err
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--html: %w; give a file certlens may write", err)
	}
	return nil
}

func (s *jsonSink) fileStart(string)               {}
func (s *jsonSink) fileDone(string, capture.Stats) {}

// reportSink holds a connection's handshakes until it ends, then writes
// its section of the report.
type reportSink struct {
	opts report.Options
	w    *report.Writer // of the current file
	out  *bufio.Writer
	open map[int][]*event.Handshake
}

// maxHeld bounds the handshakes held for one connection's section: a
// connection renegotiating endlessly must not grow memory without bound.
const maxHeld = 64

func (s *reportSink) fileStart(name string) {
	s.w = report.New(s.out, s.opts)
	s.open = map[int][]*event.Handshake{}
	s.w.Heading(displayFile(name))
}

func displayFile(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

func (s *reportSink) event(ev capture.Event) {
	if ev.Handshake != nil {
		if hs := s.open[ev.Stream]; len(hs) < maxHeld {
			s.open[ev.Stream] = append(hs, ev.Handshake)
		}
		return
	}
	hs := s.open[ev.Stream]
	delete(s.open, ev.Stream)
	if len(hs) == 0 && (ev.Closed.NotTLS != "" || ev.Closed.Handshakes == 0) {
		// Not TLS, or no handshake: counted in the file's summary only.
		return
	}
	s.w.Connection(report.Connection{Heading: "tcp.stream " + strconv.Itoa(ev.Stream), Handshakes: hs, Closed: ev.Closed})
}

func (s *reportSink) fileDone(name string, st capture.Stats) {
	name = displayFile(name)
	span := ""
	if !st.First.IsZero() {
		span = fmt.Sprintf(", %s to %s", st.First.UTC().Format("2006-01-02 15:04:05"), st.Last.UTC().Format("15:04:05 MST"))
	}
	fmt.Fprintf(s.out, "%s: %s%s; %s, %d analysed, %d with TLS\n",
		name, plural(st.Frames, "frame"), span, plural(st.Streams, "TCP connection"), st.Connections, st.TLSConnections)
	s.w.Summary()
	fmt.Fprintln(s.out)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
