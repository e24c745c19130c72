// Package page is certlens's page for people: the live list of handshakes
// the admin server serves (Handler, fed by a logging.Hub over Server-Sent
// Events), and the same views written as one self-contained HTML file for
// what is not live (WriteReport: analyze --html, probe --html).
//
// Every DN, subject, SAN and SNI on it is attacker-controlled: page.js
// puts text into the DOM with textContent only, and the Content-Security-
// Policy allows no inline script in the live page and only the page's own
// script (by its hash) in a report.
package page

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/logging"
	"github.com/certlens/certlens/rules"
)

//go:embed assets/body.html assets/page.css assets/page.js
var assets embed.FS

func asset(name string) []byte {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic("page: embedded asset missing: " + name)
	}
	return b
}

var (
	body   = asset("body.html")
	css    = asset("page.css")
	script = asset("page.js")
)

// liveCSP lets the page load its own script and style and open its event
// stream, nothing else: no inline script, no other origin, no framing.
const liveCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// head is the document up to <body>: policy goes before anything it
// governs, extra after the title.
func head(title, policy, extra string) string {
	return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" + policy +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
		"<meta name=\"referrer\" content=\"no-referrer\">\n" +
		// No icon to fetch: a browser's request for /favicon.ico is an error in its console.
		"<link rel=\"icon\" href=\"data:,\">\n" +
		"<title>" + html.EscapeString(title) + "</title>\n" + extra + "</head>\n<body>\n"
}

// Expected is a certificate the user expects the client to send
// (--expect-cert): the page shows, for each request, whether it was sent
// or why not.
type Expected struct {
	Name string     `json:"name"` // where it came from, the file name
	Cert event.Cert `json:"cert"` // its leaf
}

// NewExpected describes the expected certificates for the page.
func NewExpected(certs []rules.ExpectedCert) []Expected {
	out := make([]Expected, 0, len(certs))
	for _, c := range certs {
		if len(c.Chain) > 0 {
			out = append(out, Expected{Name: c.Name, Cert: event.DescribeCert(c.Chain[0].Raw)})
		}
	}
	return out
}

// Handler serves the live page: / and its script and style, /events, the
// hub's events as Server-Sent Events, and /expected, the certificates
// expected now (expected may be nil; a reload may change them). Mount it
// at the admin server's root; it answers only those paths.
func Handler(hub *logging.Hub, expected func() []Expected) http.Handler {
	mux := http.NewServeMux()
	index := []byte(head("certlens: live handshakes", "", "<link rel=\"stylesheet\" href=\"page.css\">\n<script src=\"page.js\" defer></script>\n") +
		string(body) + "</body>\n</html>\n")
	mux.HandleFunc("GET /{$}", static(index, "text/html; charset=utf-8"))
	mux.HandleFunc("GET /page.js", static(script, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /page.css", static(css, "text/css; charset=utf-8"))
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) { stream(w, r, hub) })
	mux.HandleFunc("GET /expected", func(w http.ResponseWriter, _ *http.Request) {
		list := []Expected{}
		if expected != nil {
			list = expected()
		}
		secure(w.Header())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	return mux
}

func static(b []byte, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		secure(w.Header())
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(b)
	}
}

func secure(h http.Header) {
	h.Set("Content-Security-Policy", liveCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

// How often the stream tells the page what was dropped, and sends a
// comment so that an idle connection is seen alive by proxies and the
// browser.
const (
	statsEvery     = time.Second
	heartbeatEvery = 15 * time.Second
	writeTimeout   = 10 * time.Second
)

type stats struct {
	Evicted uint64 `json:"evicted"`
	Missed  uint64 `json:"missed"`
}

// stream sends the kept events newer than Last-Event-ID, then each new
// one. The browser's EventSource reconnects by itself and resumes there.
func stream(w http.ResponseWriter, r *http.Request, hub *logging.Hub) {
	after, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	backlog, sub := hub.Subscribe(after)
	defer sub.Close()
	secure(w.Header())
	w.Header().Set("Content-Type", "text/event-stream")
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), hub: hub, sub: sub, lists: newSharedLists()}
	sw.begin()
	sw.write([]byte("retry: 2000\n\n"))
	for _, l := range backlog {
		sw.line(l)
	}
	sw.stats(true)
	if !sw.end() {
		return
	}
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	window := time.NewTimer(batchWindow)
	window.Stop()
	quiet := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-sub.C():
			sw.begin()
			sw.line(l)
			// Take what follows within batchWindow too: under load, one
			// write and one flush for many events.
			window.Reset(batchWindow)
		batch:
			for n := 0; n < maxBatch; n++ {
				select {
				case l := <-sub.C():
					sw.line(l)
				case <-window.C:
					break batch
				case <-r.Context().Done():
					return
				}
			}
			window.Stop()
			sw.stats(false)
			quiet = 0
		case <-tick.C:
			sw.begin()
			if !sw.stats(false) {
				if quiet++; quiet*int(statsEvery) < int(heartbeatEvery) {
					continue
				}
				sw.write([]byte(": alive\n\n"))
			}
			quiet = 0
		}
		if !sw.end() {
			return
		}
	}
}

// maxBatch bounds how many events one flush carries, and batchWindow how
// long the first of them waits for the others: a page that is 50 ms
// behind is still live, and a busy proxy writes to it 20 times a second
// instead of once per event.
const (
	maxBatch    = 512
	batchWindow = 50 * time.Millisecond
)

// sseWriter writes the stream, a batch at a time: the events (their long
// issuer lists sent once, lists.go) are gathered in buf and written with
// one call.
type sseWriter struct {
	buf   bytes.Buffer
	w     http.ResponseWriter
	rc    *http.ResponseController
	hub   *logging.Hub
	sub   *logging.Subscription
	last  stats
	hdr   []byte
	err   error
	lists *sharedLists
}

// begin starts a batch: a browser that stops reading ends its own stream
// after writeTimeout, never the hub's publishers.
func (s *sseWriter) begin() { _ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }

func (s *sseWriter) write(b []byte) { s.buf.Write(b) }

// line copies the event l into the batch, and releases l: the hub may
// reuse its bytes.
func (s *sseWriter) line(l logging.Line) {
	defer s.sub.Release(l)
	start, end, ok := issuersArray(l.JSON)
	if ok && end-start >= minSharedList {
		id, fresh := s.lists.id(l.JSON[start:end])
		if fresh {
			s.hdr = strconv.AppendInt(append(s.hdr[:0], "event: list\ndata: {\"id\":"...), int64(id), 10)
			s.write(append(s.hdr, `,"issuers":`...))
			s.write(l.JSON[start:end])
			s.write([]byte("}\n\n"))
		}
		s.header(l.ID)
		s.write(l.JSON[:start])
		s.hdr = strconv.AppendInt(append(s.hdr[:0], `{"list":`...), int64(id), 10)
		s.write(append(s.hdr, '}'))
		s.write(l.JSON[end:])
		s.write([]byte("\n\n"))
		return
	}
	s.header(l.ID)
	s.write(l.JSON)
	s.write([]byte("\n\n"))
}

func (s *sseWriter) header(id uint64) {
	s.hdr = append(s.hdr[:0], "id: "...)
	s.hdr = strconv.AppendUint(s.hdr, id, 10)
	s.write(append(s.hdr, "\ndata: "...))
}

// stats writes what the ring and this stream dropped, when it changed
// (or always): it reports whether it wrote.
func (s *sseWriter) stats(always bool) bool {
	cur := stats{Evicted: s.hub.Evicted(), Missed: s.sub.Dropped()}
	if cur == s.last && !always {
		return false
	}
	s.last = cur
	b, _ := json.Marshal(cur)
	s.write([]byte("event: stats\ndata: "))
	s.write(b)
	s.write([]byte("\n\n"))
	return true
}

// end flushes the batch; false when the stream is over.
func (s *sseWriter) end() bool {
	if s.err == nil {
		_, s.err = s.w.Write(s.buf.Bytes())
	}
	if s.err == nil {
		s.err = s.rc.Flush()
	}
	// A batch that held a new 60 KB list need not keep its buffer.
	if s.buf.Cap() > 1<<20 {
		s.buf = bytes.Buffer{}
	}
	s.buf.Reset()
	return s.err == nil
}

// Report is what a static report shows.
type Report struct {
	// Title says where the events came from ("certlens analyze trace.pcapng").
	Title string
	// Events are the JSON lines certlens serve would have logged
	// (analyze --json, probe --json), one per element.
	Events [][]byte
	// Written is when the report was made.
	Written time.Time
	// Expected are the certificates the user expected the client to send.
	Expected []Expected
}

// WriteReport writes r as one HTML file with its script, style and events
// inside, which opens without a network: the page's views, not live. Its
// Content-Security-Policy allows that script and style by their hashes
// and nothing else.
func WriteReport(w io.Writer, r Report) error {
	var data bytes.Buffer
	data.WriteString(`{"title":`)
	t, _ := json.Marshal(r.Title)
	data.Write(t)
	exp, err := json.Marshal(r.Expected)
	if err != nil {
		return err
	}
	data.WriteString(`,"written":"` + r.Written.UTC().Format(time.RFC3339) + `","expected":`)
	data.Write(exp)
	data.WriteString(`,"events":[`)
	for i, e := range r.Events {
		e = bytes.TrimSpace(e)
		if !json.Valid(e) {
			return fmt.Errorf("report: event %d is not JSON", i+1)
		}
		if i > 0 {
			data.WriteByte(',')
		}
		data.Write(e)
	}
	data.WriteString("]}")
	csp := "default-src 'none'; script-src " + hash(script) + "; style-src " + hash(css) +
		"; img-src data:; base-uri 'none'; form-action 'none'"
	var b bytes.Buffer
	// The policy comes first, so that it covers the style after it.
	b.WriteString(head(r.Title, "<meta http-equiv=\"Content-Security-Policy\" content=\""+csp+"\">\n", "<style>"+string(css)+"</style>\n"))
	b.Write(body)
	// JSON in a script element that is never run: only "</script" could
	// end it early, so every < is written as the escape JSON allows.
	b.WriteString(`<script id="certlens-data" type="application/json">`)
	b.Write(bytes.ReplaceAll(data.Bytes(), []byte("<"), []byte(`\u003c`)))
	b.WriteString("</script>\n<script>")
	b.Write(script)
	b.WriteString("</script>\n</body>\n</html>\n")
	_, err = w.Write(b.Bytes())
	return err
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
