// Package report writes certlens's events for a person to read: per
// connection the endpoints and TLS version, for each handshake the issuer
// list the server sent (numbered, with its count and size against Windows'
// 16 KiB limit), the client certificate, the findings with their remedies
// and the verdict. `certlens analyze` and `certlens probe` print it; the
// console log format and `certlens view` print each event of the log with
// the same pieces (entry.go), and view.go filters and follows a log for
// `certlens view`. It reads the same event types the JSON output carries,
// so the two can never say different things.
package report

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// Options tune the output.
type Options struct {
	// Color adds ANSI colours: see UseColor.
	Color bool
	// IssuerLimit is the issuer list size the table is measured against
	// (rules.issuer_list_error_bytes); 0 means 16 KiB.
	IssuerLimit int
	// Width is where text is wrapped; 0 means 100 columns.
	Width int
	// IssuerFold lists at most this many CA names of a request, then how
	// many more there are; 0 lists them all.
	IssuerFold int
	// Location is the time zone of event times (Entry); nil is local time.
	Location *time.Location
}

// UseColor reports whether f is a terminal and the user did not ask for no
// colour (https://no-color.org: NO_COLOR set and not empty).
func UseColor(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Connection is what the report shows of one connection.
type Connection struct {
	// Heading names it first, e.g. "tcp.stream 3" or the probed URL.
	Heading    string
	Handshakes []*event.Handshake
	// Closed ends it; nil when the connection is still open.
	Closed *event.Closed
	// Probe is what certlens probe knows as the client; nil elsewhere.
	Probe *Probe
}

// Probe is what a probe connection adds to its events: the server as the
// client saw it, the HTTP answer, and whether the user's certificate would
// be offered for each request.
type Probe struct {
	// Server is the server's leaf certificate; Chain how many it sent.
	Server *event.Cert
	Chain  int
	// Untrusted says why the server's certificate did not verify, "" when it did.
	Untrusted string
	// Request is what was asked ("GET /secure/"); Status the answer's status
	// line ("403 Forbidden"), "" when none came; Substatus IIS's.
	Request, Status, Substatus string
	// Stopped says why the connection ended early, "" when it did not.
	Stopped string
	// Offers judge the user's certificate against each handshake's request.
	Offers []Offer
}

// Offer is whether a browser would offer the user's certificate for the
// request of handshake Handshake: every reason it would not, none when it would.
type Offer struct {
	Handshake int
	Name      string
	Reasons   []string
}

// Writer writes connections and keeps a tally of the verdicts for Summary.
type Writer struct {
	w     io.Writer
	opts  Options
	err   error
	tally map[string][]string // verdict -> headings of the handshakes
	count int
}

// New returns a Writer to w.
func New(w io.Writer, opts Options) *Writer {
	if opts.IssuerLimit <= 0 {
		opts.IssuerLimit = rules.DefaultIssuerListErrorBytes
	}
	if opts.Width <= 0 {
		opts.Width = 100
	}
	return &Writer{w: w, opts: opts, tally: map[string][]string{}}
}

// Err is the first write error.
func (w *Writer) Err() error { return w.err }

// ANSI styles.
const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
)

func (w *Writer) style(s, code string) string {
	if !w.opts.Color || s == "" {
		return s
	}
	return code + s + reset
}

func (w *Writer) printf(format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, format, args...)
	}
}

// wrapped writes label and text wrapped at the width: the first line
// indented by indent, the next ones by hang.
func (w *Writer) wrapped(indent, hang, label, text string) {
	width := max(w.opts.Width, 60)
	line, n, atStart := indent+label, len(indent)+visibleLen(label), label == ""
	for _, word := range strings.Fields(text) {
		if !atStart && n+1+visibleLen(word) > width {
			w.printf("%s\n", line)
			line, n, atStart = hang, len(hang), true
		}
		if !atStart {
			line += " "
			n++
		}
		line += word
		n += visibleLen(word)
		atStart = false
	}
	w.printf("%s\n", line)
}

// visibleLen is the length of s on screen, colour codes aside.
func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case r == 0x1b:
			esc = true
		case esc:
			esc = r != 'm'
		default:
			n++
		}
	}
	return n
}

// Heading writes a title line, e.g. the capture file's name.
func (w *Writer) Heading(title string) {
	w.printf("%s\n\n", w.style(title, bold))
}

// Note writes a line of its own, e.g. a probe attempt that had nothing to show.
func (w *Writer) Note(text string) {
	w.wrapped("", "  ", "", text)
	w.printf("\n")
}

// Connection writes one connection.
func (w *Writer) Connection(c Connection) error {
	c.Heading = printable(c.Heading)
	hs := make([]*event.Handshake, len(c.Handshakes))
	for i, h := range c.Handshakes {
		hs[i] = printableCopy(h)
	}
	c.Handshakes, c.Closed, c.Probe = hs, printableCopy(c.Closed), printableCopy(c.Probe)
	client, target, sni, version := "", "", "", ""
	for _, h := range c.Handshakes {
		client, target = h.ClientAddr, h.Target
		if sni == "" {
			sni = h.SNI
		}
		if version == "" {
			version = h.TLSVersion
		}
	}
	if c.Closed != nil {
		client, target = c.Closed.ClientAddr, c.Closed.Target
		if c.Closed.TLSVersion != "" {
			version = c.Closed.TLSVersion
		}
	}
	head := w.style(c.Heading, bold)
	if client != "" || target != "" {
		head += "  " + client + " -> " + target
	}
	if sni != "" {
		head += "  (" + sni + ")"
	}
	if version != "" {
		head += "  " + version
	}
	w.printf("%s\n", head)
	w.probe(c.Probe)
	for _, h := range c.Handshakes {
		w.handshake(c.Heading, h, c.Probe)
	}
	if cl := c.Closed; cl != nil {
		s := fmt.Sprintf("Closed: %s after %s ms; %s bytes from the client, %s from the server", cl.Reason,
			strconv.FormatFloat(cl.DurationMS, 'f', -1, 64), thousands(cl.BytesUp), thousands(cl.BytesDown))
		w.wrapped("  ", "    ", "", w.style(s, dim))
		if cl.NotTLS != "" {
			w.wrapped("    ", "      ", "Not TLS:", cl.NotTLS)
		}
		for _, e := range cl.Errors {
			w.wrapped("    ", "      ", "Note:", e)
		}
	}
	w.printf("\n")
	return w.err
}

func (w *Writer) handshake(heading string, h *event.Handshake, p *Probe) {
	w.count++
	w.tally[h.Verdict] = append(w.tally[h.Verdict], heading)
	parts := []string{h.Phase, h.Visibility}
	if end := endWords[h.End]; end != "" {
		parts = append(parts, end)
	}
	w.printf("  %s\n", w.style(fmt.Sprintf("Handshake %d (%s)", h.Index, strings.Join(parts, ", ")), bold))
	var neg []string
	if h.CipherSuite != "" {
		neg = append(neg, h.CipherSuite)
	}
	if h.ALPN != "" {
		neg = append(neg, "ALPN "+h.ALPN)
	}
	if h.ClientHello != nil && h.ClientHello.PostHandshakeAuth {
		neg = append(neg, "client offers post-handshake auth")
	}
	if len(neg) > 0 {
		w.printf("    %s\n", strings.Join(neg, ", "))
	}
	w.certRequest(h)
	w.clientCert(h)
	if p != nil {
		w.offers(h.Index, p.Offers)
	}
	w.outcome(h)
	w.printf("    Verdict: %s\n", w.verdict(h))
}

// outcome writes what a handshake came to, below its heading or summary
// line: the alerts, the findings with their remedies, the parse errors.
func (w *Writer) outcome(h *event.Handshake) {
	for _, a := range h.Alerts {
		w.printf("    Alert from the %s: %s %s\n", a.From, a.Level, a.Description)
	}
	if len(h.Findings) > 0 {
		w.printf("    Findings\n")
		for _, f := range h.Findings {
			w.finding(f)
		}
	}
	for _, e := range h.Errors {
		w.wrapped("      ", "        ", "Error:", e)
	}
}

// endWords says how a handshake ended (handshake.End), for people.
var endWords = map[string]string{
	"finished":         "completed",
	"alert":            "ended by an alert",
	"application_data": "ended by application data",
	"eof":              "the connection ended mid-handshake",
	"server_not_tls":   "the server did not answer in TLS",
	"error":            "unparsable",
}

func frame(h *event.Handshake, which string) string {
	if h.PCAP == nil || h.PCAP.Frames == nil {
		return ""
	}
	n := h.PCAP.Frames.CertRequest
	if which == "client" {
		n = h.PCAP.Frames.ClientCert
	}
	if n == 0 {
		return ""
	}
	return " (frame " + strconv.Itoa(n) + ")"
}

func (w *Writer) certRequest(h *event.Handshake) {
	cr := h.CertRequest
	if cr == nil {
		switch {
		case h.Visibility == "encrypted" || h.Visibility == "inferred":
			w.printf("    Certificate request: not visible (encrypted)\n")
		case h.Visibility == "partial":
			w.printf("    Certificate request: not seen (incomplete handshake)\n")
		default:
			w.printf("    Certificate request: none (the server did not ask for a client certificate)\n")
		}
		return
	}
	limit := w.opts.IssuerLimit
	size := fmt.Sprintf("%s bytes of the %s-byte limit", thousands(int64(cr.IssuerBytes)), thousands(int64(limit)))
	switch {
	case cr.IssuerBytes > limit:
		size = w.style(fmt.Sprintf("%s bytes, %s over the %s-byte limit", thousands(int64(cr.IssuerBytes)),
			thousands(int64(cr.IssuerBytes-limit)), thousands(int64(limit))), red)
	case cr.IssuerBytes*4 >= limit*3:
		size = w.style(size, yellow)
	}
	names := "CA names"
	if cr.IssuerCount == 1 {
		names = "CA name"
	}
	line := fmt.Sprintf("Certificate request%s: %d %s, %s", frame(h, "request"), cr.IssuerCount, names, size)
	if cr.Records > 1 {
		line += fmt.Sprintf(", in %d records", cr.Records)
	}
	w.wrapped("    ", "      ", "", line)
	if cr.IssuerCount == 0 {
		w.printf("      (empty list: the client may offer any certificate)\n")
	}
	w.issuers(cr.Issuers)
	if len(cr.CertTypes) > 0 {
		w.printf("      certificate types: %s\n", strings.Join(cr.CertTypes, ", "))
	}
	if len(cr.SignatureSchemes) > 0 {
		w.wrapped("      ", "        ", "signature algorithms:", strings.Join(cr.SignatureSchemes, ", "))
	}
}

// issuers writes the CA names numbered, folded after Options.IssuerFold.
func (w *Writer) issuers(names []string) {
	shown := names
	if fold := w.opts.IssuerFold; fold > 0 && len(names) > fold {
		shown = names[:fold]
	}
	width := len(strconv.Itoa(len(shown)))
	for i, dn := range shown {
		w.printf("      %*d  %s\n", width, i+1, dn)
	}
	if more := len(names) - len(shown); more > 0 {
		w.printf("      %*s  ... and %s more\n", width, "", thousands(int64(more)))
	}
}

func (w *Writer) clientCert(h *event.Handshake) {
	cc := h.ClientCert
	if cc == nil {
		if h.CertRequest != nil && (h.Visibility == "clear" || h.Visibility == "decrypted") {
			w.printf("    Client certificate: no Certificate message\n")
		}
		return
	}
	if !cc.Sent {
		w.printf("    Client certificate%s: %s\n", frame(h, "client"), w.style("none sent (empty Certificate message)", yellow))
		return
	}
	w.printf("    Client certificate%s: sent, chain of %d\n", frame(h, "client"), len(cc.Chain))
	for i, c := range cc.Chain {
		w.printf("      %d  %s\n", i+1, c.Subject)
		w.printf("           issuer   %s\n", c.Issuer)
		w.printf("           valid    %s to %s\n", c.NotBefore, c.NotAfter)
		key := c.PublicKey
		if len(c.KeyUsage) > 0 {
			key += "; key usage " + strings.Join(c.KeyUsage, ", ")
		}
		if len(c.ExtKeyUsage) > 0 {
			key += "; EKU " + strings.Join(c.ExtKeyUsage, ", ")
		}
		w.printf("           key      %s\n", key)
		w.printf("           sha256   %s\n", c.SHA256)
	}
}

// probe writes the server's side as a probe saw it.
func (w *Writer) probe(p *Probe) {
	if p == nil {
		return
	}
	if c := p.Server; c != nil {
		trust := w.style("trusted", green)
		if p.Untrusted != "" {
			trust = w.style("not trusted: "+p.Untrusted, yellow)
		}
		w.wrapped("  ", "    ", "Server certificate:", fmt.Sprintf("%s, issued by %s, valid to %s, %s (chain of %d); %s",
			c.Subject, c.Issuer, c.NotAfter, c.PublicKey, p.Chain, trust))
	}
	if p.Request != "" {
		switch {
		case p.Status != "":
			status := p.Status
			if p.Substatus != "" {
				status += " (IIS " + p.Substatus + ")"
			}
			if !strings.HasPrefix(status, "2") && !strings.HasPrefix(status, "3") {
				status = w.style(status, red+bold)
			}
			w.printf("  HTTP: %s -> %s\n", p.Request, status)
		case p.Stopped != "":
			w.wrapped("  ", "    ", "HTTP:", p.Request+" -> no answer: "+p.Stopped)
		}
	}
	if p.Stopped != "" && p.Request == "" {
		w.wrapped("  ", "    ", "Stopped:", p.Stopped)
	}
}

// offers says, for handshake index, whether the user's certificates would
// be offered.
func (w *Writer) offers(index int, offers []Offer) {
	for _, o := range offers {
		if o.Handshake != index {
			continue
		}
		if len(o.Reasons) == 0 {
			w.wrapped("    ", "      ", "", fmt.Sprintf("%s: a browser would %s it for this request", o.Name, w.style("offer", green)))
			continue
		}
		w.wrapped("    ", "      ", "", fmt.Sprintf("%s: a browser would %s it for this request:", o.Name, w.style("not offer", red+bold)))
		for _, r := range o.Reasons {
			w.wrapped("      - ", "        ", "", r)
		}
	}
}

func (w *Writer) finding(f rules.Finding) {
	sev := strings.ToUpper(string(f.Severity))
	switch f.Severity {
	case rules.SeverityError:
		sev = w.style(fmt.Sprintf("%-7s", sev), red+bold)
	case rules.SeverityWarning:
		sev = w.style(fmt.Sprintf("%-7s", sev), yellow)
	default:
		sev = w.style(fmt.Sprintf("%-7s", sev), cyan)
	}
	line := f.ID + ": " + f.Summary
	if f.Predicts != "" {
		line += " [predicts " + string(f.Predicts) + "]"
	}
	w.wrapped("      ", "              ", sev, line)
	w.wrapped("              ", "              ", "", f.Detail)
	if f.Remedy != "" {
		w.wrapped("              ", "                      ", w.style("Remedy:", bold), f.Remedy)
	}
}

func (w *Writer) verdict(h *event.Handshake) string {
	v := h.Verdict
	how := "predicted"
	if h.VerdictCertain {
		how = "certain"
	}
	switch rules.Verdict(v) {
	case rules.VerdictOK:
		return w.style("ok", green) + " (" + how + ")"
	case rules.VerdictUnknown:
		return w.style("unknown", dim) + " (the evidence is encrypted or incomplete)"
	}
	return w.style(v, red+bold) + " (" + how + ")"
}

// Problem reports whether a handshake event predicts a 403 (or 500.0, a
// failed handshake) or carries an error finding: what makes analyze exit 1.
func Problem(h *event.Handshake) bool {
	switch rules.Verdict(h.Verdict) {
	case rules.VerdictOK, rules.VerdictUnknown:
	default:
		return true
	}
	for _, f := range h.Findings {
		if f.Severity == rules.SeverityError {
			return true
		}
	}
	return false
}

// Summary writes the verdict tally of every handshake written so far.
func (w *Writer) Summary() error {
	if w.count == 0 {
		w.printf("No TLS handshake found.\n")
		return w.err
	}
	hs := "handshakes"
	if w.count == 1 {
		hs = "handshake"
	}
	w.printf("%s\n", w.style(fmt.Sprintf("%d %s:", w.count, hs), bold))
	verdicts := make([]string, 0, len(w.tally))
	for v := range w.tally {
		verdicts = append(verdicts, v)
	}
	// Problems first, then ok, then unknown.
	rank := func(v string) int {
		switch rules.Verdict(v) {
		case rules.VerdictOK:
			return 1
		case rules.VerdictUnknown:
			return 2
		}
		return 0
	}
	sort.Slice(verdicts, func(i, j int) bool {
		if rank(verdicts[i]) != rank(verdicts[j]) {
			return rank(verdicts[i]) < rank(verdicts[j])
		}
		return verdicts[i] < verdicts[j]
	})
	for _, v := range verdicts {
		where := uniq(w.tally[v])
		label := v
		switch rank(v) {
		case 0:
			label = w.style(v, red+bold)
		case 1:
			label = w.style(v, green)
		}
		list := strings.Join(where[:min(len(where), 10)], ", ")
		if len(where) > 10 {
			list += fmt.Sprintf(", and %d more", len(where)-10)
		}
		w.printf("  %s %d  (%s)\n", pad(label, v, 16), len(w.tally[v]), list)
	}
	return w.err
}

func uniq(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// thousands formats n with thousands separators: sizes read at a glance.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pad pads a (possibly coloured) label whose visible text is plain to n
// columns: fmt's widths count colour codes.
func pad(label, plain string, n int) string {
	return label + strings.Repeat(" ", max(0, n-len(plain)))
}
