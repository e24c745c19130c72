package logging

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// trickyDNs are DNs whose RFC 4514 strings hold what a JSON encoder must
// escape: quotes, backslashes, control characters, non-ASCII, U+2028,
// a T61String (read as Latin-1), HTML's <>&; and a DN that does not parse,
// shown as such.
func trickyDNs(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, cn := range []string{`Plain CA`, `Quote " and \ backslash`, "Tab\tand\nnewline\x01", "Café Ünïcödé 🔐", "Line\u2028separator", "<b>&amp;</b>"} {
		der, err := asn1.Marshal(pkix.Name{Organization: []string{"certlens"}, CommonName: cn}.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, der)
	}
	t61, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: mustMarshal(t, struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}{asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagT61String, Bytes: []byte("caf\xe9 \xff")}})}})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, t61, []byte{0x30, 0x03, 0x01})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timestamps: the JSON line's ts and the console line's time.
var timestamps = regexp.MustCompile(`"ts":"[^"]*",|(?m)^\d\d:\d\d:\d\d\.\d{3} `)

// TestPreEncodedIssuersAsZapWritesThem: an event's issuer list, encoded
// once per list and written as is, is byte for byte what zap writes when
// it encodes the names itself, in the JSON log, in the console format,
// and through a zap encoder that does not know it is pre-encoded.
func TestPreEncodedIssuersAsZapWritesThem(t *testing.T) {
	dns := trickyDNs(t)
	var vector []byte
	for _, dn := range dns {
		vector = append(vector, byte(len(dn)>>8), byte(len(dn)))
		vector = append(vector, dn...)
	}
	body := append([]byte{1, 64, 0, 2, 4, 3, byte(len(vector) >> 8), byte(len(vector))}, vector...)
	cr, err := handshake.ParseCertificateRequest(body, false, true)
	if err != nil {
		t.Fatal(err)
	}
	h := &handshake.Handshake{Phase: handshake.PhaseInitial, Visibility: handshake.VisibilityClear, End: handshake.EndEOF, CertRequest: cr}
	pre := event.NewHandshake(event.Meta{ConnID: "a-1", Mode: "observe"}, h, rules.Report{Findings: []rules.Finding{}, Verdict: "unknown"})
	// The same event with names of its own: zap encodes them one by one.
	own := *pre
	ownCR := *pre.CertRequest
	ownCR.Issuers = slices.Clone(ownCR.Issuers)
	own.CertRequest = &ownCR

	write := func(format string, e *event.Handshake) string {
		var buf bytes.Buffer
		log, closeLog, err := New(Options{Format: format, Level: "info", Stdout: &buf})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("handshake", zap.Inline(e))
		closeLog()
		return timestamps.ReplaceAllString(buf.String(), "")
	}
	for _, format := range []string{"json", "console"} {
		if got, want := write(format, pre), write(format, &own); got != want {
			t.Errorf("%s: pre-encoded\n%s\nencoded by zap\n%s", format, got, want)
		}
	}
	plain := func(e *event.Handshake) string {
		var buf bytes.Buffer
		log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"}), zapcore.AddSync(&buf), zapcore.InfoLevel))
		log.Info("handshake", zap.Inline(e))
		return buf.String()
	}
	if got, want := plain(pre), plain(&own); got != want {
		t.Errorf("zap's default encoder: pre-encoded\n%s\nencoded by zap\n%s", got, want)
	}
	if line := write("json", pre); !strings.Contains(line, `"CN=café ÿ"`) || !strings.Contains(line, `Quote \\\" and`) || !strings.Contains(line, `"<unparsed DN 3 bytes`) {
		t.Errorf("the tricky names are not in the line:\n%s", write("json", pre))
	}
}
