package rules

import (
	"fmt"

	"github.com/certlens/certlens/handshake"
)

// Rank orders the evidence a verdict can come from (DESIGN.md, "Evidence
// and verdicts"). The verdict comes from the highest rank present; a lower
// rank adds findings but never a verdict a higher one contradicts.
type Rank int8

const (
	RankNone Rank = iota
	// RankPrediction: what IIS would do with what was sent; never certain.
	RankPrediction
	// RankInference: read from encrypted record sizes; never certain.
	RankInference
	// RankWire: this handshake's messages, read in clear or decrypted.
	RankWire
	// RankOutcome: what the connection came to (an HTTP answer, a fatal
	// alert read, a later handshake that answered the request).
	RankOutcome
)

func (r Rank) String() string {
	switch r {
	case RankPrediction:
		return "prediction"
	case RankInference:
		return "inference"
	case RankWire:
		return "wire"
	case RankOutcome:
		return "outcome"
	}
	return "none"
}

// predictionOrder breaks ties between predictions: what IIS checks last,
// given the earlier checks passed, is the most specific cause.
var predictionOrder = map[Verdict]int{Verdict4037: 1, Verdict40316: 2, Verdict40313: 3, Verdict40317: 4, Verdict5000: 5}

// needsCert reports whether verdict v is about a certificate that was
// sent (403.13, 403.16, 403.17: IIS judged it), as opposed to 403.7 (none came).
func needsCert(v Verdict) bool {
	return v == Verdict40313 || v == Verdict40316 || v == Verdict40317
}

// decide sets the verdict from the highest rank of evidence present, then
// marks every finding whose prediction that evidence contradicts.
func (r *Report) decide(in *input) {
	r.Verdict, r.Certain, r.Rank = in.verdict(r.Findings)
	if r.Verdict == VerdictUnknown && r.Rank == RankNone {
		r.Pending = in.pending()
	}
	for i := range r.Findings {
		if why := in.contradicts(r, &r.Findings[i]); why != "" {
			f := &r.Findings[i]
			f.Detail += " Not this handshake's outcome: " + why + "."
			f.Predicts = VerdictNone
			if f.Severity == SeverityError {
				f.Severity = SeverityWarning
			}
		}
	}
}

func (in *input) verdict(fs []Finding) (Verdict, bool, Rank) {
	h := in.h
	// Rank 1: what the connection came to.
	for _, f := range fs {
		if f.Certain && f.Predicts != VerdictNone {
			return f.Predicts, true, RankOutcome
		}
	}
	if in.ev.HTTP.Answered() {
		return VerdictOK, true, RankOutcome
	}
	// The server refused certlens's own client, not the one it stands in
	// for: the outcome says nothing of what that client would have got.
	if ownClientRefusedPHA(in) {
		return VerdictUnknown, false, RankOutcome
	}
	if h.End == handshake.EndAlert && !h.ClientAborted() {
		for _, a := range h.Alerts {
			if a.Fatal() && !a.Encrypted {
				return VerdictHandshakeFailed, true, RankOutcome
			}
		}
	}
	// Rank 2: a client that hung up while it picked a certificate retries
	// elsewhere; the server's alert to its EOF is no verdict, and neither
	// is anything about the request it never answered.
	if h.ClientAborted() {
		return VerdictUnknown, false, RankWire
	}
	if in.pending() != VerdictNone {
		return VerdictUnknown, false, RankNone
	}
	// Rank 3: a TLS 1.3 server that refuses the handshake does so with an
	// encrypted alert; its size is all there is to see.
	if inf := in.inferred(); inf != nil && inf.ServerAlert {
		return VerdictHandshakeFailed, false, RankInference
	}
	// Rank 4: the most specific prediction nothing above contradicts.
	best := VerdictNone
	for i := range fs {
		f := &fs[i]
		if f.Predicts == VerdictNone || in.wireContradicts(f.Predicts) != "" {
			continue
		}
		if predictionOrder[f.Predicts] > predictionOrder[best] {
			best = f.Predicts
		}
	}
	if best != VerdictNone {
		// An empty Certificate to a host the user says requires one is
		// 403.7 for sure.
		certain := best == Verdict4037 && in.hostWantsCert() && in.readable() && sentNothing(in)
		return best, certain, RankPrediction
	}
	if inf := in.inferred(); inf != nil && (inf.CertSent == handshake.Yes || inf.CertRequested == handshake.No) {
		return VerdictOK, false, RankInference
	}
	if !in.readable() || h.Unparsed {
		return VerdictUnknown, false, RankNone
	}
	return VerdictOK, completed(h), RankWire
}

// pending is the verdict a handshake leaves to what follows it on the
// connection: a TLS 1.2 handshake read in full, without a certificate
// request, to a host the user says requires one, is answered by the
// renegotiation that should follow, or by 403.7 if none does.
func (in *input) pending() Verdict {
	if expectsRenegotiation(in) && in.ev.HTTP == nil {
		return Verdict4037
	}
	return VerdictNone
}

// wireContradicts says why what this handshake showed rules prediction v
// out, or "".
func (in *input) wireContradicts(v Verdict) string {
	switch sent := in.h.CertSent(); {
	case v == Verdict4037 && sent == handshake.Yes && in.readable():
		return "the client sent a certificate"
	case v == Verdict4037 && sent == handshake.Yes:
		return "the record sizes show the client sent a certificate"
	case needsCert(v) && sent == handshake.No:
		return "the client sent no certificate"
	}
	return ""
}

// contradicts says why the decided verdict rules out f's prediction, or "".
func (in *input) contradicts(r *Report, f *Finding) string {
	if f.Predicts == VerdictNone || f.Predicts == r.Verdict {
		return ""
	}
	if why := in.wireContradicts(f.Predicts); why != "" {
		return why
	}
	if r.Rank != RankOutcome || f.Certain {
		return ""
	}
	if hr := in.ev.HTTP; hr.Answered() {
		return fmt.Sprintf("the server answered HTTP %d", hr.Status)
	}
	return ""
}

func sentNothing(in *input) bool {
	return in.h.CertSent() == handshake.No && in.h.ClientCertificate != nil
}

// Connection folds the reports of one connection's handshakes, in order,
// into what its request(s) came to: each handshake answers for the
// connection until a later one on it answers again (a renegotiation that
// carried the certificate outranks the initial handshake that had none),
// and a handshake that left its verdict to what follows (Report.Pending)
// gives that verdict, predicted, if nothing does. The zero value is ready.
type Connection struct {
	verdict Verdict
	certain bool
	pending Verdict
	n       int
}

// Add folds in the next handshake's verdict, certainty and pending verdict.
func (c *Connection) Add(v Verdict, certain bool, pending Verdict) {
	c.n++
	c.verdict, c.certain, c.pending = v, certain, pending
	if pending != VerdictNone {
		c.verdict, c.certain = VerdictUnknown, false
	}
}

// Verdict is the connection's verdict, VerdictNone when it carried no
// handshake.
func (c *Connection) Verdict() (Verdict, bool) {
	switch {
	case c.n == 0:
		return VerdictNone, false
	case c.pending != VerdictNone:
		return c.pending, false
	}
	return c.verdict, c.certain
}
