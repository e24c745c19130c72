package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/certlens/certlens/rules"
)

// Verdicts are the values of an event's verdict, as DESIGN.md lists them:
// what `certlens view --verdict` accepts.
var Verdicts = []rules.Verdict{rules.VerdictOK, rules.Verdict4037, rules.Verdict40313, rules.Verdict40316,
	rules.Verdict40317, rules.Verdict5000, rules.VerdictHandshakeFailed, rules.VerdictUnknown}

// Filter selects the events `certlens view` shows; the zero Filter shows
// every one. Verdicts and Problems select together (either may match);
// Target and Since narrow what they select.
type Filter struct {
	// Verdicts shows the events whose verdict is one of these.
	Verdicts []string
	// Problems shows the events with a verdict other than ok and unknown,
	// and handshakes with an error finding (what makes analyze exit 1).
	Problems bool
	// Target is a piece of the target, SNI or HTTP host (any case), or a
	// pattern of path.Match (*.corp.example, 10.0.0.*:443).
	Target string
	// Since hides the events before it.
	Since time.Time
}

// Match reports whether the filter shows e.
func (f Filter) Match(e *Entry) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if len(f.Verdicts) > 0 || f.Problems {
		verdict := e.Str("verdict")
		if e.Handshake != nil {
			verdict = e.Handshake.Verdict
		}
		problem := verdict != "" && verdict != string(rules.VerdictOK) && verdict != string(rules.VerdictUnknown)
		if e.Handshake != nil {
			problem = Problem(e.Handshake)
		}
		if !(f.Problems && problem) && (verdict == "" || !slices.Contains(f.Verdicts, verdict)) {
			return false
		}
	}
	return f.Target == "" || f.matchTarget(e)
}

func (f Filter) matchTarget(e *Entry) bool {
	want := strings.ToLower(f.Target)
	pattern := strings.ContainsAny(want, "*?[")
	for _, key := range []string{"target", "sni", "host"} {
		v := strings.ToLower(e.Str(key))
		if v == "" {
			continue
		}
		if !pattern {
			if strings.Contains(v, want) {
				return true
			}
			continue
		}
		// A pattern names a host, or a host and port.
		if ok, _ := path.Match(want, v); ok {
			return true
		}
		if host, _, err := net.SplitHostPort(v); err == nil {
			if ok, _ := path.Match(want, host); ok {
				return true
			}
		}
	}
	return false
}

// View renders the lines of a JSON log for `certlens view`: each event
// the filter selects, as the console log format writes it. Lines that are
// not certlens events are counted, never fatal.
type View struct {
	out     *bufio.Writer
	w       *Writer
	filter  Filter
	lines   int
	skipped int
	first   int // line number of the first line skipped
}

// NewView writes to out.
func NewView(out io.Writer, opts Options, f Filter) *View {
	b := bufio.NewWriterSize(out, 64<<10)
	return &View{out: b, w: New(b, opts), filter: f}
}

// Line takes one line of the log, without its newline. The line is not
// kept.
func (v *View) Line(line []byte) {
	v.lines++
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	e, err := ParseEntry(line)
	if err != nil {
		v.skip()
		return
	}
	if !v.filter.Match(e) {
		return
	}
	_ = v.w.Entry(e)
	// Each event is shown as it comes: view -f is read as it happens.
	_ = v.out.Flush()
}

// Long counts a line too long to be kept: skipped, like one that is not
// an event.
func (v *View) Long() {
	v.lines++
	v.skip()
}

func (v *View) skip() {
	if v.skipped == 0 {
		v.first = v.lines
	}
	v.skipped++
}

// Err is the first error writing the output.
func (v *View) Err() error {
	if err := v.w.Err(); err != nil {
		return err
	}
	return v.out.Flush()
}

// Skipped says how many lines were not certlens events, and where the
// first was; "" when every line was one.
func (v *View) Skipped() string {
	switch v.skipped {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("skipped 1 line that is not a certlens JSON event (line %d)", v.first)
	}
	return fmt.Sprintf("skipped %d lines that are not certlens JSON events (the first is line %d)", v.skipped, v.first)
}
