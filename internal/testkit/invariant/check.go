package invariant

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// The invariants, by the name a Violation gives.
const (
	// A handshake in which the client's Certificate carried a chain cannot
	// end in "no certificate" (403.7).
	CertSentNot4037 = "client_cert.sent with verdict 403.7"
	// A server that answered the request with a success or a redirect did
	// not refuse it: no 403.x, no 500.0.
	AnsweredNotRefused = "http_status 2xx/3xx with a refusal verdict"
	// Record sizes never prove anything.
	InferredNotCertain = "verdict_certain with visibility inferred"
	// The connection comes to what its last handshake says, or to what
	// that handshake left pending (its finding's prediction, uncertain).
	ConnectionAgrees = "connection verdict disagrees with its handshakes"
	// The connection's verdict is decided when it closes: a handshake
	// written after that was left out of it.
	HandshakeBeforeClose = "handshake event after connection closed"
	// A handshake event never states a refusal that a later handshake on
	// the same connection disproves (DESIGN "Evidence and verdicts"): that
	// handshake's request was answered (ok, or HTTP 2xx/3xx), or, against
	// a 403.7, the later handshake carried the certificate. The earlier
	// one should have been held, or said unknown with the finding naming
	// what was expected next.
	LaterHandshakeDisproves = "handshake refusal disproved by a later handshake"
)

// refusals are the verdicts that say the server refused the request.
var refusals = map[string]bool{"403.7": true, "403.13": true, "403.16": true, "403.17": true, "500.0": true}

// Violation is one event that says what it must not.
type Violation struct {
	Invariant string
	Source    string // the test harness that collected it
	ConnID    string
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s conn %s: %s", v.Invariant, v.Source, v.ConnID, v.Detail)
}

// Summary is what Check read and found.
type Summary struct {
	Files, Sources, Events, Handshakes, Closed int
	// ByMode counts handshake events per mode; ByVerdict per verdict.
	ByMode, ByVerdict map[string]int
	Violations        []Violation
	// sources is each source's connections, by conn_id.
	sources map[string]map[string]*conn
}

// event is what the invariants read of an event.
type event struct {
	Msg            string `json:"msg"`
	ConnID         string `json:"conn_id"`
	Mode           string `json:"mode"`
	Index          int    `json:"handshake"`
	Visibility     string `json:"visibility"`
	Verdict        string `json:"verdict"`
	VerdictCertain *bool  `json:"verdict_certain"`
	HTTPStatus     int    `json:"http_status"`
	ClientCert     *struct {
		Sent bool `json:"sent"`
	} `json:"client_cert"`
	Findings []struct {
		ID       string `json:"id"`
		Predicts string `json:"predicts"`
	} `json:"findings"`
}

func (e *event) certain() bool { return e.VerdictCertain != nil && *e.VerdictCertain }

// conn is one connection's events so far.
type conn struct {
	handshakes []*event
	closed     bool
}

// CheckDir checks every collection file in dir.
func CheckDir(dir string) (*Summary, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	s := NewSummary()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = s.Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		s.Files++
	}
	return s, nil
}

// NewSummary is an empty Summary, for Read.
func NewSummary() *Summary {
	return &Summary{ByMode: map[string]int{}, ByVerdict: map[string]int{}, sources: map[string]map[string]*conn{}}
}

// Read checks the records of one collection file.
func (s *Summary) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		var e event
		if err := json.Unmarshal(rec.Event, &e); err != nil {
			return fmt.Errorf("line %d: event: %w", n, err)
		}
		s.add(rec.Source, &e)
	}
	return sc.Err()
}

func (s *Summary) add(source string, e *event) {
	if e.Msg != "handshake" && e.Msg != "connection closed" {
		return
	}
	s.Events++
	conns := s.sources[source]
	if conns == nil {
		conns = map[string]*conn{}
		s.sources[source] = conns
		s.Sources++
	}
	c := conns[e.ConnID]
	if c == nil {
		c = &conn{}
		conns[e.ConnID] = c
	}
	bad := func(invariant, format string, args ...any) {
		s.Violations = append(s.Violations, Violation{invariant, source, e.ConnID, fmt.Sprintf(format, args...)})
	}
	if e.Msg == "connection closed" {
		s.Closed++
		if c.closed {
			// The same conn_id again (analyze, after an idle timeout).
			c = &conn{}
			conns[e.ConnID] = c
		}
		s.closed(c, e, bad)
		return
	}
	s.Handshakes++
	s.ByMode[e.Mode]++
	s.ByVerdict[e.Verdict]++
	if c.closed {
		// analyze names a connection by its TCP stream: packets after an
		// idle timeout are a new connection under the same conn_id.
		if e.Mode != "analyze" {
			bad(HandshakeBeforeClose, "handshake %d (verdict %s)", e.Index, e.Verdict)
		}
		c = &conn{}
		conns[e.ConnID] = c
	}
	for _, h := range c.handshakes {
		if why := e.disproves(h); why != "" {
			bad(LaterHandshakeDisproves, "handshake %d said %s (certain %v, findings %v); handshake %d %s",
				h.Index, h.Verdict, h.certain(), h.findingIDs(), e.Index, why)
		}
	}
	c.handshakes = append(c.handshakes, e)
	if e.ClientCert != nil && e.ClientCert.Sent && e.Verdict == "403.7" {
		bad(CertSentNot4037, "handshake %d: findings %v", e.Index, e.findingIDs())
	}
	if e.refused() && e.HTTPStatus >= 200 && e.HTTPStatus < 400 {
		bad(AnsweredNotRefused, "handshake %d: HTTP %d, verdict %s, findings %v", e.Index, e.HTTPStatus, e.Verdict, e.findingIDs())
	}
	if e.certain() && e.Visibility == "inferred" {
		bad(InferredNotCertain, "handshake %d: verdict %s, findings %v", e.Index, e.Verdict, e.findingIDs())
	}
}

// closed checks a connection's verdict against its handshakes: equal to
// the last one's, or, when the last one is unknown, the verdict one of
// its findings predicts (what it left pending), never certain. A later
// handshake nobody could read makes the connection unknown again
// (rules.Connection): its request may have been asked anew.
func (s *Summary) closed(c *conn, e *event, bad func(string, string, ...any)) {
	c.closed = true
	if len(c.handshakes) == 0 {
		if e.Verdict != "" {
			bad(ConnectionAgrees, "verdict %s without a handshake", e.Verdict)
		}
		return
	}
	last := c.handshakes[len(c.handshakes)-1]
	switch {
	case e.Verdict == last.Verdict && e.certain() == last.certain():
	case last.Verdict == "unknown" && !e.certain() && slices.Contains(last.predictions(), e.Verdict):
	default:
		bad(ConnectionAgrees, "connection %s (certain %v), its last handshake (%d of %d) %s (certain %v, findings %v)",
			e.Verdict, e.certain(), last.Index, len(c.handshakes), last.Verdict, last.certain(), last.findingIDs())
	}
	if !refusals[e.Verdict] {
		return
	}
	for _, h := range c.handshakes {
		if h.HTTPStatus >= 200 && h.HTTPStatus < 400 {
			bad(ConnectionAgrees, "connection %s after handshake %d's request was answered HTTP %d", e.Verdict, h.Index, h.HTTPStatus)
		}
	}
}

// refused says whether the event's verdict is a refusal.
func (e *event) refused() bool {
	return refusals[e.Verdict] || strings.HasPrefix(e.Verdict, "403.")
}

// disproves says how e, a later handshake on earlier's connection, shows
// that earlier's refusal did not happen, or "" when it does not.
func (e *event) disproves(earlier *event) string {
	switch {
	case !earlier.refused():
		return ""
	case e.HTTPStatus >= 200 && e.HTTPStatus < 400:
		return fmt.Sprintf("was answered HTTP %d", e.HTTPStatus)
	case e.Verdict == "ok":
		return "says ok"
	case earlier.Verdict == "403.7" && e.ClientCert != nil && e.ClientCert.Sent:
		return "carried a certificate"
	}
	return ""
}

func (e *event) findingIDs() []string {
	var out []string
	for _, f := range e.Findings {
		out = append(out, f.ID)
	}
	return out
}

func (e *event) predictions() []string {
	var out []string
	for _, f := range e.Findings {
		if f.Predicts != "" {
			out = append(out, f.Predicts)
		}
	}
	return out
}

// Open counts the connections that logged a handshake but no "connection
// closed": harnesses that kill certlens, or stop reading, leave some.
func (s *Summary) Open() int {
	n := 0
	for _, conns := range s.sources {
		for _, c := range conns {
			if !c.closed && len(c.handshakes) > 0 {
				n++
			}
		}
	}
	return n
}
