package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/certlens/certlens/internal/event"
)

// Entry is one line of certlens's JSON log: an event with its time, level
// and message, and its other fields in the order they were written.
type Entry struct {
	Time   time.Time
	Level  string
	Msg    string
	Fields []Field
	// Handshake is the event of a "handshake" line, nil for other messages.
	Handshake *event.Handshake
}

// Field is one key of an event and its JSON value.
type Field struct {
	Key   string
	Value json.RawMessage
}

// ErrNotEvent says a line is JSON but not an event of certlens's log.
var ErrNotEvent = errors.New("not a certlens event (no ts, level and msg)")

// ParseEntry reads one line of the JSON log. Strings that could drive a
// terminal (control characters: a hostile SNI, an escape sequence in a
// CONNECT target) come out escaped, as the rendering prints them as text.
func ParseEntry(line []byte) (*Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	e := &Entry{}
	var hasTime, hasLevel, hasMsg bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		switch key {
		case "ts":
			e.Time, hasTime = parseTime(raw)
		case "level":
			hasLevel = json.Unmarshal(raw, &e.Level) == nil
		case "msg":
			hasMsg = json.Unmarshal(raw, &e.Msg) == nil
		default:
			e.Fields = append(e.Fields, Field{Key: printable(key), Value: raw})
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value on the line")
	}
	if !hasTime || !hasLevel || !hasMsg {
		return nil, ErrNotEvent
	}
	e.Level, e.Msg = printable(e.Level), printable(e.Msg)
	if e.Msg == "handshake" {
		h := &event.Handshake{}
		if err := json.Unmarshal(line, h); err != nil {
			return nil, fmt.Errorf("handshake event: %w", err)
		}
		e.Handshake = printableCopy(h)
	}
	return e, nil
}

// parseTime reads ts as certlens writes it (RFC 3339), or as zap's
// production default does (seconds since the epoch).
func parseTime(raw json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && f > 0 && f < math.MaxInt64/1e9 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	return time.Time{}, false
}

// Str is the string value of key, "" when absent or not a string.
func (e *Entry) Str(key string) string {
	for _, f := range e.Fields {
		if f.Key == key {
			var s string
			_ = json.Unmarshal(f.Value, &s)
			return s
		}
	}
	return ""
}

// printable escapes the characters a terminal would act on: C0 and C1
// controls and DEL.
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, `\x%02x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// printableCopy returns *p with every string reachable through exported
// fields printable, so a hostile server's DN or SNI cannot drive the
// reader's terminal; the caller's value is left as it was. Only what holds
// a string to change is copied: an event of printable strings (every
// event but a hostile one, with its hundreds of issuer names) is p itself.
// The result is for reading: it may share what it did not change with p.
func printableCopy[T any](p *T) *T {
	if p == nil {
		return nil
	}
	if n, changed := printableValue(reflect.ValueOf(p)); changed {
		return n.Interface().(*T)
	}
	return p
}

// printableValue returns v with its strings printable, and whether that
// changed anything; when not, v itself.
func printableValue(v reflect.Value) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v, false
		}
		e, changed := printableValue(v.Elem())
		if !changed {
			return v, false
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(e)
		return n, true
	case reflect.Struct:
		var n reflect.Value
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			f, changed := printableValue(v.Field(i))
			if !changed {
				continue
			}
			if !n.IsValid() {
				n = reflect.New(v.Type()).Elem()
				n.Set(v)
			}
			n.Field(i).Set(f)
		}
		if n.IsValid() {
			return n, true
		}
		return v, false
	case reflect.Slice, reflect.Array:
		var n reflect.Value
		for i := range v.Len() {
			e, changed := printableValue(v.Index(i))
			if !changed {
				continue
			}
			if !n.IsValid() {
				if v.Kind() == reflect.Slice {
					n = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
					reflect.Copy(n, v)
				} else {
					n = reflect.New(v.Type()).Elem()
					n.Set(v)
				}
			}
			n.Index(i).Set(e)
		}
		if n.IsValid() {
			return n, true
		}
		return v, false
	case reflect.Map:
		changed := false
		for it := v.MapRange(); it.Next() && !changed; {
			_, kc := printableValue(it.Key())
			_, vc := printableValue(it.Value())
			changed = kc || vc
		}
		if !changed {
			return v, false
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			k, _ := printableValue(it.Key())
			e, _ := printableValue(it.Value())
			n.SetMapIndex(k, e)
		}
		return n, true
	case reflect.String:
		if s := v.String(); strings.ContainsFunc(s, isControl) {
			return reflect.ValueOf(printable(s)).Convert(v.Type()), true
		}
	}
	return v, false
}

// Entry writes one event as a person reads it at a terminal: a handshake
// as one summary line, then its CA names (folded after Options.IssuerFold),
// alerts and findings with their remedies, indented, as analyze and probe
// write them; any other event as one line of key=value.
func (w *Writer) Entry(e *Entry) error {
	head := w.stamp(e.Time) + " " + w.level(e.Level) + " " + w.style(e.Msg, bold)
	if h := e.Handshake; h != nil {
		w.printf("%s  %s\n", head, strings.Join(w.summary(h), "  "))
		if h.CertRequest != nil && len(h.CertRequest.Issuers) > 0 {
			w.printf("    CA names asked for\n")
			w.issuers(h.CertRequest.Issuers)
		}
		w.outcome(h)
		return w.err
	}
	var b strings.Builder
	b.WriteString(head)
	for _, f := range e.Fields {
		b.WriteString(" " + w.style(f.Key+"=", dim) + fieldValue(f.Value))
	}
	w.printf("%s\n", b.String())
	return w.err
}

// stamp is the time of day, with the date when it is not today's.
func (w *Writer) stamp(t time.Time) string {
	loc := w.opts.Location
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	if y, m, d := t.Date(); !sameDay(y, m, d, time.Now().In(loc)) {
		return t.Format("2006-01-02 15:04:05.000")
	}
	return t.Format("15:04:05.000")
}

func sameDay(y int, m time.Month, d int, t time.Time) bool {
	ty, tm, td := t.Date()
	return y == ty && m == tm && d == td
}

func (w *Writer) level(l string) string {
	label := fmt.Sprintf("%-5s", strings.ToUpper(l))
	switch l {
	case "warn":
		return w.style(label, yellow)
	case "error", "dpanic", "panic", "fatal":
		return w.style(label, red+bold)
	case "debug":
		return w.style(label, dim)
	}
	return label
}

// summary is a handshake's summary line, in the order a person asks:
// where, which TLS and how well seen, what was asked, what was sent, and
// the verdict.
func (w *Writer) summary(h *event.Handshake) []string {
	var parts []string
	where := h.Target
	if host, _, err := net.SplitHostPort(h.Target); h.SNI != "" && (err != nil || host != h.SNI) {
		where += " (" + h.SNI + ")"
	}
	if where != "" {
		parts = append(parts, where)
	}
	tls := h.TLSVersion
	if h.Phase != "" && h.Phase != "initial" {
		tls += " " + h.Phase
	}
	parts = append(parts, strings.TrimSpace(tls+" ("+h.Visibility+")"))
	parts = append(parts, w.asked(h))
	if sent := w.sent(h); sent != "" {
		parts = append(parts, sent)
	}
	parts = append(parts, "verdict "+w.verdictShort(h))
	if h.HTTPStatus != 0 {
		status := "HTTP " + strconv.Itoa(h.HTTPStatus)
		if h.HTTPSubstatus != "" {
			status += " (IIS " + h.HTTPSubstatus + ")"
		}
		parts = append(parts, status)
	}
	conn := "conn " + h.ConnID
	if h.Index > 0 {
		conn += " #" + strconv.Itoa(h.Index)
	}
	return append(parts, w.style(conn, dim))
}

// asked says what the server asked for: the list's count and size, or
// what the visibility allows to say.
func (w *Writer) asked(h *event.Handshake) string {
	if cr := h.CertRequest; cr != nil {
		names := "CA names"
		if cr.IssuerCount == 1 {
			names = "CA name"
		}
		s := fmt.Sprintf("%d %s, %s bytes", cr.IssuerCount, names, thousands(int64(cr.IssuerBytes)))
		switch limit := w.opts.IssuerLimit; {
		case cr.IssuerBytes > limit:
			return w.style(s, red)
		case cr.IssuerBytes*4 >= limit*3:
			return w.style(s, yellow)
		}
		return s
	}
	if inf := h.Inferred; inf != nil {
		switch inf.CertRequested {
		case "yes":
			if inf.CertRequestBytes > 0 {
				return fmt.Sprintf("certificate requested (inferred, request of %s bytes)", thousands(int64(inf.CertRequestBytes)))
			}
			return "certificate requested (inferred)"
		case "no":
			return "no certificate request (inferred)"
		}
	}
	switch h.Visibility {
	case "encrypted", "inferred":
		return "request not visible"
	case "partial":
		return "no request seen (incomplete)"
	}
	return "no certificate request"
}

// sent says what the client answered, "" when nothing can be said.
func (w *Writer) sent(h *event.Handshake) string {
	if cc := h.ClientCert; cc != nil {
		if !cc.Sent {
			return w.style("no certificate sent", yellow)
		}
		if len(cc.Chain) > 0 {
			return "certificate sent: " + cc.Chain[0].Subject
		}
		return "certificate sent"
	}
	if inf := h.Inferred; inf != nil {
		switch inf.CertSent {
		case "yes":
			return "certificate sent (inferred)"
		case "no":
			return w.style("no certificate sent", yellow) + " (inferred)"
		}
	}
	if h.CertRequest != nil && (h.Visibility == "clear" || h.Visibility == "decrypted") {
		return "no Certificate message"
	}
	return ""
}

// verdictShort is the verdict and how sure it is, for a summary line.
func (w *Writer) verdictShort(h *event.Handshake) string {
	how := " (predicted)"
	if h.VerdictCertain {
		how = " (certain)"
	}
	switch h.Verdict {
	case "ok":
		return w.style("ok", green) + how
	case "unknown", "":
		return w.style("unknown", dim)
	}
	return w.style(h.Verdict, red+bold) + how
}

// fieldValue is a value as key=value shows it: a plain string bare, one
// with spaces, quotes or controls quoted, anything else as compact JSON.
func fieldValue(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		if q := strconv.Quote(s); s == "" || strings.ContainsAny(s, " =") || q[1:len(q)-1] != s {
			return q
		}
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return strconv.Quote(string(raw))
	}
	return printable(b.String())
}
