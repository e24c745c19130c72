// Package rules diagnoses client-certificate authentication from what the
// handshake parser saw: findings with the evidence and the remedy, and a
// verdict on whether IIS will answer 403.7 (or 403.13/16/17, or 500.0). It is
// pure: no network, no logger, no files, no clock but the one in Options.
package rules

import (
	"crypto/x509"
	"path"
	"strings"
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
	// VerdictNone is a finding that predicts nothing.
	VerdictNone Verdict = ""
)

// Finding is one diagnosis: a stable id, what it predicts, the evidence read
// and what the operator should change.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Predicts Verdict  `json:"predicts,omitempty"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail"`
	Remedy   string   `json:"remedy,omitempty"`
	// Certain: the finding states what the wire (or decrypted bytes, or the
	// HTTP answer) shows, not a prediction.
	Certain bool `json:"-"`
}

// Report is the diagnosis of one handshake.
type Report struct {
	Findings []Finding `json:"findings"`
	Verdict  Verdict   `json:"verdict"`
	// Certain is true when the wire proves the verdict, false when it is
	// predicted (an empty Certificate means 403.7 only if the site requires one).
	Certain bool `json:"verdict_certain"`
	// Rank is the evidence the verdict came from.
	Rank Rank `json:"-"`
	// Pending is what the connection comes to if no later handshake on it
	// answers the request (a TLS 1.2 handshake without a certificate
	// request to a host that requires one: a renegotiation should follow).
	// The verdict is then unknown: the next handshake decides.
	Pending Verdict `json:"-"`
}

// ExpectedCert is a certificate the user expects the client to send, with
// the chain a browser would build from its store (leaf first).
type ExpectedCert struct {
	Name  string // where it came from, e.g. the file name or the store's nickname
	Chain []*x509.Certificate
	// Store names the certificate store it was read from ("" for a file):
	// the certificates of one store are judged together, and the finding
	// names the one the user most likely meant.
	Store string
	Key   Key // what the store says of its private key
}

// Options carry configuration and the clock.
type Options struct {
	IssuerListWarnBytes  int
	IssuerListErrorBytes int
	ExpectCerts          []ExpectedCert
	// ClientCertHosts are host patterns (path.Match syntax, e.g. *.corp.example)
	// the user says require a client certificate.
	ClientCertHosts []string
	// Now is the time validity is judged at; zero means time.Now().
	Now time.Time
}

// Evidence is what a mode saw around a handshake, beyond its bytes.
type Evidence struct {
	// HTTP is the answer to the request the connection carried (intercept
	// mode, probe), nil when unknown.
	HTTP *HTTPOutcome
	// KeylogSet: a key log was configured, yet this handshake stayed encrypted.
	KeylogSet bool
	// ResetAfterRequest: the server reset the connection after the client's
	// first request without answering it (IIS on Server 2022 over TLS 1.3).
	ResetAfterRequest bool
	// Host names the server when the ClientHello carried no SNI (the CONNECT target's host).
	Host string
	// NoCertToSend: the client had no certificate it could present (certlens
	// probe without a key), so an empty answer says nothing about a browser's
	// store; only whether the server goes on without one matters.
	NoCertToSend bool
	// OwnClientNoPHA: the handshake is certlens's own client's (intercept
	// mode's upstream connection), which cannot answer a TLS 1.3
	// post-handshake CertificateRequest (Go's crypto/tls offers no
	// post_handshake_auth), while the client it stands in for offered it: a
	// server that refuses certlens's client for want of it would have asked
	// that client instead.
	OwnClientNoPHA bool
}

// HTTPOutcome is the HTTP answer seen for a request.
type HTTPOutcome struct {
	Status int
	// Substatus is IIS's, as named in the error page body ("403.7"), or "".
	Substatus string
	// Body is the start of the response body, for the rules to read
	// (e.g. 0x80070032, "Cannot perform Post-Handshake Authentication").
	Body string
}

// Answered reports whether the server answered the request with something
// other than an error: it went on without the certificate it asked for.
func (o *HTTPOutcome) Answered() bool { return o != nil && o.Status >= 200 && o.Status < 400 }

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

// input is what every rule reads.
type input struct {
	h     *handshake.Handshake
	chain []*x509.Certificate // the client's certificates that parsed, leaf first
	ev    Evidence
	opts  Options
}

// host is the server's name as the user would write it in client_cert_hosts.
func (in *input) host() string {
	if in.h.ClientHello != nil && in.h.ClientHello.ServerName != "" {
		return in.h.ClientHello.ServerName
	}
	return in.ev.Host
}

// hostWantsCert reports whether the user listed this host in client_cert_hosts.
func (in *input) hostWantsCert() bool {
	host := strings.ToLower(in.host())
	if host == "" {
		return false
	}
	for _, p := range in.opts.ClientCertHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// readable: the handshake's messages were read, in clear or decrypted.
func (in *input) readable() bool { return in.h.Readable() }

// inferred is what the record sizes showed of a TLS 1.3 handshake, or nil
// unless that is how it was read: a partial handshake carries the server's
// side of an inference too (client-abandoned-after-request reads it), but
// no other rule may.
func (in *input) inferred() *handshake.Inference {
	if in.h.Visibility != handshake.VisibilityInferred {
		return nil
	}
	return in.h.Inferred
}

// completed: the handshake ended with both Finished messages (or
// application data that proves them).
func completed(h *handshake.Handshake) bool { return h.Completed() }

// Diagnose runs every rule over one handshake, with what the mode saw
// around it, and decides the verdict.
func Diagnose(h *handshake.Handshake, ev Evidence, opts Options) Report {
	in := &input{h: h, ev: ev, opts: opts.withDefaults()}
	if h.ClientCertificate != nil {
		in.chain = parseChain(h.ClientCertificate.Chain)
	}
	r := Report{Findings: []Finding{}}
	for _, rule := range catalogue {
		r.Findings = append(r.Findings, rule.check(in, rule)...)
	}
	r.decide(in)
	return r
}

// parseChain parses the certificates that parse; one that does not is
// skipped, not fatal: the rest is still evidence.
func parseChain(ders [][]byte) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(ders))
	for _, der := range ders {
		if c, err := x509.ParseCertificate(der); err == nil {
			out = append(out, c)
		}
	}
	return out
}
