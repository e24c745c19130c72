// Package rules diagnoses client-certificate authentication from what the
// handshake parser saw: findings with the evidence and the remedy, and a
// verdict on whether IIS will answer 403.7 (or 403.13/16/17). It is pure:
// no network, no logger, no clock but the one in Options.
package rules

import (
	"crypto/x509"
	"time"

	"github.com/certlens/certlens/handshake"
)

// Severity of a finding.
type Severity string

const (
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Verdict is the predicted or observed outcome of a handshake for the request it carries.
type Verdict string

const (
	VerdictOK              Verdict = "ok"
	Verdict4037            Verdict = "403.7"
	Verdict40313           Verdict = "403.13"
	Verdict40316           Verdict = "403.16"
	Verdict40317           Verdict = "403.17"
	Verdict5000            Verdict = "500.0"
	VerdictHandshakeFailed Verdict = "handshake_failed"
	VerdictUnknown         Verdict = "unknown"
)

// Finding is one diagnosis: a stable id, what it predicts, the evidence read
// and what the operator should change.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Predicts string   `json:"predicts,omitempty"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail"`
	Remedy   string   `json:"remedy,omitempty"`
}

// Report is the diagnosis of one handshake.
type Report struct {
	Findings []Finding `json:"findings"`
	Verdict  Verdict   `json:"verdict"`
	// Certain is true when the wire proves the verdict, false when it is
	// predicted (an empty Certificate means 403.7 only if the site requires one).
	Certain bool `json:"verdict_certain"`
}

// Options carry configuration and the clock.
type Options struct {
	IssuerListWarnBytes  int
	IssuerListErrorBytes int
	// Now is the time validity is judged at; zero means time.Now().
	Now time.Time
}

// Defaults are the documented thresholds (FACTS.md: Windows' 16 KB list limit).
const (
	DefaultIssuerListWarnBytes  = 12 << 10
	DefaultIssuerListErrorBytes = 16 << 10
)

func (o Options) withDefaults() Options {
	if o.IssuerListWarnBytes <= 0 {
		o.IssuerListWarnBytes = DefaultIssuerListWarnBytes
	}
	if o.IssuerListErrorBytes <= 0 {
		o.IssuerListErrorBytes = DefaultIssuerListErrorBytes
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// input is what every rule reads: the handshake and its parsed client chain.
type input struct {
	h     *handshake.Handshake
	chain []*x509.Certificate // the client's certificates that parsed, leaf first
	opts  Options
}

// rule is one entry of the catalogue: a small pure function.
type rule func(in *input) []Finding

// catalogue runs in this order; findings keep it.
var catalogue = []rule{
	tls13Hidden,
	renegotiation,
	issuerListEmpty,
	issuerListTooLarge,
	clientCertNotSent,
	clientCertValidity,
	clientCertKeyUsage,
	clientCertExtKeyUsage,
	clientCertIssuerNotListed,
	serverRejectedCert,
}

// Diagnose runs every rule over one handshake and decides the verdict.
func Diagnose(h *handshake.Handshake, opts Options) Report {
	in := &input{h: h, opts: opts.withDefaults()}
	if h.ClientCertificate != nil {
		in.chain = ParseChain(h.ClientCertificate.Chain)
	}
	r := Report{Findings: []Finding{}}
	for _, rule := range catalogue {
		r.Findings = append(r.Findings, rule(in)...)
	}
	r.Verdict, r.Certain = verdict(in, r.Findings)
	return r
}

// ParseChain parses the certificates that parse; one that does not is
// skipped, not fatal: the rest is still evidence.
func ParseChain(ders [][]byte) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(ders))
	for _, der := range ders {
		if c, err := x509.ParseCertificate(der); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// substatusRank orders predictions: the most specific cause IIS checks wins.
var substatusRank = map[string]int{"403.7": 1, "403.16": 2, "403.13": 3, "403.17": 4}

func verdict(in *input, findings []Finding) (Verdict, bool) {
	h := in.h
	for _, a := range h.Alerts {
		if a.Fatal() && h.End == handshake.EndAlert {
			return VerdictHandshakeFailed, true
		}
	}
	switch {
	case h.Visibility == handshake.VisibilityPartial || h.Unparsed:
		return VerdictUnknown, false
	case h.Visibility == handshake.VisibilityEncrypted || h.Visibility == handshake.VisibilityInferred:
		return VerdictUnknown, false
	}
	best := ""
	for _, f := range findings {
		if substatusRank[f.Predicts] > substatusRank[best] {
			best = f.Predicts
		}
	}
	if best != "" {
		return Verdict(best), false
	}
	return VerdictOK, h.End == handshake.EndFinished || h.End == handshake.EndApplicationData
}
