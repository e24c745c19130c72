package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certlens/certlens/handshake"
)

func tls13Hidden(in *input, r *Rule) []Finding {
	h := in.h
	if h.Version != handshake.VersionTLS13 || h.Visibility != handshake.VisibilityEncrypted {
		return nil
	}
	suite := ""
	if h.ServerHello != nil {
		suite = " (" + h.ServerHello.CipherSuite.String() + ")"
	}
	return []Finding{r.finding(SeverityInfo, "",
		"TLS 1.3: the certificate request and the client's certificate are encrypted",
		fmt.Sprintf("ServerHello selected TLS 1.3%s; after it the server sent protected records of %v bytes and the client %v, whose contents a passive observer cannot read.",
			suite, h.ServerRecords, h.ClientRecords))}
}

func keylogSecretMissing(in *input, r *Rule) []Finding {
	// A suite that cannot be decrypted is not a missing secret: its error
	// says so in the event's errors.
	if !in.ev.KeylogSet || !in.h.SecretMissing || (in.h.Visibility != handshake.VisibilityEncrypted && in.h.Visibility != handshake.VisibilityInferred) {
		return nil
	}
	return []Finding{r.finding(SeverityWarning, "",
		"The key log has no secret for this handshake",
		"A key log is configured, but no line in it matches this connection's client_random, so the handshake stayed encrypted.")}
}

func renegotiated(in *input) bool { return in.h.Phase == handshake.PhaseRenegotiation }

func certRequestByRenegotiation(in *input, r *Rule) []Finding {
	if expectsRenegotiation(in) {
		detail := fmt.Sprintf("%s is in rules.client_cert_hosts, yet its TLS 1.2 handshake carried no CertificateRequest: "+
			"the server must ask by renegotiation after the request (IIS's default for a folder or site requiring certificates), "+
			"or answer 403.7. This handshake's verdict waits for that: the renegotiation that follows on this connection decides it, "+
			"and the connection's verdict is 403.7 if none comes.", in.host())
		if negotiatedALPN(in) == "h2" {
			detail += " This connection negotiated HTTP/2, which forbids renegotiation: expect 403.7 or a connection error."
		}
		return []Finding{r.finding(SeverityWarning, Verdict4037, "No certificate request in the handshake to a host that requires one", detail)}
	}
	if !renegotiated(in) || negotiatedALPN(in) == "h2" {
		return nil
	}
	if !in.h.ServerStarted() {
		// A client that renegotiates on its own (an old NPN-era client, a
		// key update by renegotiation) is not a server asking for a certificate.
		return []Finding{r.finding(SeverityInfo, "", "The client started a renegotiation on its own",
			"Handshake records followed application data, and the client's came first, with no HelloRequest from the server: "+
				"the client renegotiated on its own, not because the server asked for a certificate.")}
	}
	detail := "Handshake records followed application data, the server's first: the server asked for a new handshake after reading the request, " +
		"as IIS does when a folder or site requires client certificates and the binding does not negotiate them."
	if inf := in.inferred(); inf != nil && inf.Evidence != "" {
		detail += " Read from the sizes of its encrypted records, not certain: " + inf.Evidence + "."
	}
	if in.h.Visibility == handshake.VisibilityEncrypted {
		detail += fmt.Sprintf(" Its records are encrypted under the first handshake's keys (server %v bytes, client %v bytes); "+
			"a key log (--decrypt-keylog) or intercept mode shows the issuer list and the certificate.", in.h.ServerRecords, in.h.ClientRecords)
	}
	return []Finding{r.finding(SeverityWarning, "", "The client certificate is requested by TLS renegotiation, after the request", detail)}
}

// expectsRenegotiation: a TLS 1.2 handshake, read in full and completed
// without a CertificateRequest, to a host the user says requires one.
func expectsRenegotiation(in *input) bool {
	h := in.h
	return h.Version == handshake.VersionTLS12 && h.Phase == handshake.PhaseInitial && in.readable() && completed(h) &&
		h.CertRequest == nil && !h.Resumed() && in.hostWantsCert()
}

func renegotiationOverHTTP2(in *input, r *Rule) []Finding {
	if !renegotiated(in) || negotiatedALPN(in) != "h2" {
		return nil
	}
	return []Finding{r.finding(SeverityError, "",
		"Renegotiation on an HTTP/2 connection: forbidden, the client certificate cannot be requested this way",
		"ALPN negotiated h2 and a handshake followed application data on the same connection; HTTP/2 clients answer with an error (HTTP_1_1_REQUIRED) or drop the connection.")}
}

// negotiatedALPN is the ALPN in force on the connection.
func negotiatedALPN(in *input) string {
	if in.h.ALPN != "" {
		return in.h.ALPN
	}
	if in.h.ServerHello != nil {
		return in.h.ServerHello.ALPN
	}
	return ""
}

func tls13LateClientCert(in *input, r *Rule) []Finding {
	h := in.h
	// Only a completed handshake: a connection the client left mid-way
	// (Chromium's preconnects) never got as far as a request.
	if h.Version != handshake.VersionTLS13 || h.ClientHello == nil || h.ClientHello.PostHandshakeAuth || !completed(h) {
		return nil
	}
	// Only a handshake read in full, or inferred from its record sizes, can
	// show that no certificate was asked for.
	noRequest := in.readable() && h.CertRequest == nil
	if inf := in.inferred(); inf != nil && inf.CertRequested == handshake.No {
		noRequest = true
	}
	if !noRequest {
		return nil
	}
	if h.Resumed() && in.ev.HTTP == nil && !in.ev.ResetAfterRequest {
		// A PSK resumption carries the earlier session's authentication:
		// no CertificateRequest is expected, whatever the host wants.
		if !in.hostWantsCert() {
			return nil
		}
		return []Finding{r.finding(SeverityInfo, VerdictNone,
			"TLS 1.3 resumption: the client certificate state is the earlier session's",
			fmt.Sprintf("%s is in rules.client_cert_hosts; this handshake resumed an earlier session (pre_shared_key), which carries "+
				"that session's authentication, so no CertificateRequest was due. Whether a certificate was sent is what the "+
				"earlier session's handshake event says.", in.host()))}
	}
	if ownClientRefusedPHA(in) {
		// The browser offered post_handshake_auth: the refusal is of
		// certlens's own client (intercept-no-post-handshake-auth).
		return nil
	}
	var why string
	predicts, certain := Verdict5000, false
	switch hr := in.ev.HTTP; {
	case hr != nil && hr.Status == 500 && strings.Contains(strings.ToLower(hr.Body), "0x80070032"):
		why, certain = "the server answered HTTP 500 with 0x80070032 (ERROR_NOT_SUPPORTED), as IIS on Windows 11 24H2 and Server 2025 do", true
	case refusedPHA(hr):
		why, predicts, certain = "the server answered 403 \"Cannot perform Post-Handshake Authentication\" (Apache)", Verdict4037, true
	case in.ev.ResetAfterRequest:
		// Seen by a mode that made the request itself (intercept, probe):
		// no answer came, the reset did.
		why, certain = "the server reset the connection after the request without answering, as IIS on Server 2022 and Windows 11 before 24H2 do", true
	case in.hostWantsCert():
		why = fmt.Sprintf("%s is in rules.client_cert_hosts", in.host())
	default:
		return nil
	}
	f := r.finding(SeverityError, predicts,
		"TLS 1.3 without a certificate request: the server cannot ask for the client certificate later",
		fmt.Sprintf("The TLS 1.3 handshake carried no CertificateRequest, the client did not offer post_handshake_auth "+
			"(browsers never do), and %s. IIS asks for client certificates after the request, which TLS 1.3 cannot do for these clients.", why))
	// A handshake read only from its record sizes keeps the doubt.
	f.Certain = certain && in.readable()
	return []Finding{f}
}

// refusedPHA: the server answered 403 "Cannot perform Post-Handshake
// Authentication" (Apache): it wanted a certificate after the request, by
// post-handshake authentication, from a client that did not offer it.
func refusedPHA(hr *HTTPOutcome) bool {
	return hr != nil && hr.Status == 403 && strings.Contains(hr.Body, "Post-Handshake Authentication")
}

// ownClientRefusedPHA: a TLS 1.3 handshake of certlens's own client, which
// carried no CertificateRequest, refused for want of post-handshake
// authentication that the client certlens stands in for offered.
func ownClientRefusedPHA(in *input) bool {
	h := in.h
	return in.ev.OwnClientNoPHA && h.Version == handshake.VersionTLS13 && h.CertRequest == nil && refusedPHA(in.ev.HTTP)
}

func interceptNoPostHandshakeAuth(in *input, r *Rule) []Finding {
	if !ownClientRefusedPHA(in) {
		return nil
	}
	f := r.finding(SeverityWarning, VerdictNone,
		"certlens's own TLS client cannot answer the server's post-handshake certificate request",
		"The server wanted a client certificate after the request, by TLS 1.3 post-handshake authentication, and answered certlens's "+
			"upstream connection 403 \"Cannot perform Post-Handshake Authentication\": certlens's own client (Go's crypto/tls) cannot "+
			"be asked that way. The browser offered post_handshake_auth, so the server would have asked it instead; what it would "+
			"have sent, and got, is not known from here.")
	f.Certain = true
	return []Finding{f}
}

// iisSubstatuses are the client-certificate substatuses http-403-observed reports.
var iisSubstatuses = map[string]bool{"403.7": true, "403.13": true, "403.16": true, "403.17": true}

func http403Observed(in *input, r *Rule) []Finding {
	hr := in.ev.HTTP
	if hr == nil || hr.Status != 403 || !iisSubstatuses[hr.Substatus] {
		return nil
	}
	f := r.finding(SeverityError, Verdict(hr.Substatus),
		fmt.Sprintf("The server answered HTTP %s", hr.Substatus),
		fmt.Sprintf("HTTP status 403 with an error page naming substatus %s.", hr.Substatus))
	f.Certain = true
	return []Finding{f}
}

func issuerListEmpty(in *input, r *Rule) []Finding {
	cr := in.h.CertRequest
	// TLS 1.3 has no empty list: an absent extension means any CA, and an
	// empty one is malformed (certRequestMalformed).
	if cr == nil || len(cr.Issuers) > 0 || cr.IssuerBytes > 0 || cr.TLS13 {
		return nil
	}
	return []Finding{r.finding(SeverityInfo, "",
		"The server's certificate request names no CA: the client may send any certificate",
		"certificate_authorities is empty (0 bytes).")}
}

// crMaxOverhead bounds what a CertificateRequest carries besides its
// issuer list: header, context, certificate types, signature algorithms
// (every scheme registered), extension headers. What the record sizes show
// of the whole message, less this, is the least the list can be.
const crMaxOverhead = 512

func issuerListTooLarge(in *input, r *Rule) []Finding {
	cr := in.h.CertRequest
	if inf := in.inferred(); cr == nil && inf != nil && inf.CertRequested == handshake.Yes {
		least := inf.CertRequestMin - crMaxOverhead
		if least <= in.opts.IssuerListErrorBytes {
			return nil
		}
		return []Finding{r.finding(SeverityError, Verdict4037,
			fmt.Sprintf("The issuer list is at least %d bytes (inferred), over Windows' 16 KB limit: clients may fail to connect or get a cut list", least),
			fmt.Sprintf("Inferred, not certain: the encrypted CertificateRequest is at least %d bytes in %d records, so its certificate_authorities "+
				"list is at least %d bytes (error over %d). A key log (--decrypt-keylog) shows the list itself.",
				inf.CertRequestMin, inf.CertRequestRecords, least, in.opts.IssuerListErrorBytes))}
	}
	if cr == nil || cr.IssuerBytes < in.opts.IssuerListWarnBytes {
		return nil
	}
	detail := fmt.Sprintf("%d CA names, %d bytes of certificate_authorities, carried in %d TLS records (warning from %d, error over %d bytes).",
		len(cr.Issuers), cr.IssuerBytes, cr.Records, in.opts.IssuerListWarnBytes, in.opts.IssuerListErrorBytes)
	if cr.IssuerBytes > in.opts.IssuerListErrorBytes {
		return []Finding{r.finding(SeverityError, Verdict4037,
			fmt.Sprintf("The issuer list is %d bytes, over Windows' 16 KB limit: clients may fail to connect or get a cut list", cr.IssuerBytes), detail)}
	}
	return []Finding{r.finding(SeverityWarning, "",
		fmt.Sprintf("The issuer list is %d bytes, close to Windows' 16 KB limit", cr.IssuerBytes), detail)}
}

// issuerSummary names the first few listed DNs for a detail line.
func issuerSummary(cr *handshake.CertificateRequest) string {
	n := len(cr.Issuers)
	if n == 0 {
		return "an empty issuer list"
	}
	names := cr.IssuerList().Names()[:min(n, 3)]
	s := fmt.Sprintf("%d CA names (%s", n, strings.Join(names, "; "))
	if n > 3 {
		s += "; ..."
	}
	return s + ")"
}

func clientCertNotSent(in *input, r *Rule) []Finding {
	h := in.h
	if inf := in.inferred(); inf != nil && inf.CertRequested == handshake.Yes && inf.CertSent == handshake.No {
		return []Finding{r.finding(SeverityError, Verdict4037,
			"The server asked for a client certificate and the client sent none (inferred from TLS 1.3 record sizes)",
			"Inferred, not certain: "+inf.Evidence+". IIS answers 403.7 if the site requires client certificates; "+
				"a key log (--decrypt-keylog) shows the issuer list and makes this certain.")}
	}
	if h.CertRequest == nil || !sentNothing(in) {
		return nil
	}
	if hr := in.ev.HTTP; hr.Answered() {
		f := r.finding(SeverityInfo, "",
			fmt.Sprintf("The server asked for a client certificate, got none, and answered HTTP %d: it accepts certificates but does not require one", hr.Status),
			fmt.Sprintf("The client's Certificate message is empty, in answer to a CertificateRequest with %s, and the request went on.",
				issuerSummary(h.CertRequest)))
		f.Certain = true
		f.Remedy = "Nothing to do if the site is meant to serve requests without a certificate; to require one, set IIS's SSL Settings " +
			"> Client certificates to Require."
		return []Finding{f}
	}
	return []Finding{r.finding(SeverityError, Verdict4037,
		"The server asked for a client certificate and the client sent none",
		fmt.Sprintf("The client's Certificate message is empty, in answer to a CertificateRequest with %s. "+
			"IIS answers 403.7 if the site requires client certificates (if it only accepts them, the request goes on without one).",
			issuerSummary(h.CertRequest)))}
}

func expectedCertNotSelectable(in *input, r *Rule) []Finding {
	// Only an empty answer needs explaining: a client that sent another
	// certificate chose, and the other rules judge what it sent.
	cr := in.h.CertRequest
	if cr == nil || !sentNothing(in) || len(in.opts.ExpectCerts) == 0 {
		return nil
	}
	req := Request{CR: cr, Version: in.h.Version}
	var out []Finding
	for _, group := range expectedGroups(in.opts.ExpectCerts) {
		if slices.ContainsFunc(group, func(e ExpectedCert) bool { return sentCert(in, e) }) {
			continue
		}
		exp, choice, offered := closest(group, req, in.opts.Now)
		if choice.Offered && in.ev.NoCertToSend {
			// The client could not have sent it (no key): nothing to explain.
			continue
		}
		leaf, name := exp.Chain[0], exp.Name
		if exp.Store != "" {
			name = exp.Store + " store: " + exp.Name
		}
		var f Finding
		if choice.Offered {
			f = r.finding(SeverityWarning, Verdict4037,
				fmt.Sprintf("%s (%s) would be offered for this request, yet the client did not send it: the cause is on the client", leaf.Subject, name),
				"Its chain reaches a listed CA and its Key Usage, EKU, validity and key type fit the request. The cause is on the client: "+
					"the certificate is not in the user's personal store, its private key is missing or not usable (a key stored as "+
					"AT_KEYEXCHANGE instead of AT_SIGNATURE), or the user dismissed the certificate prompt.")
			for _, c := range choice.Cautions {
				f.Detail += " " + c.Text
			}
			f.Remedy = capitalize(remedyClientSide)
		} else {
			texts := make([]string, len(choice.Reasons))
			codes := make([]string, len(choice.Reasons))
			for i, rs := range choice.Reasons {
				texts[i], codes[i] = rs.Text, rs.Code
			}
			f = r.finding(SeverityError, Verdict4037,
				fmt.Sprintf("%s (%s) is not offered by a browser for this request: %d reason(s)", leaf.Subject, name, len(choice.Reasons)),
				strings.Join(texts, " "))
			f.Remedy = capitalize(reasonFixes(codes)) + "."
		}
		if len(group) > 1 {
			if choice.Offered {
				f.Detail += fmt.Sprintf(" %d of the %d certificates of the %s store would be offered (certlens certs lists them).", offered, len(group), exp.Store)
			} else {
				f.Detail += fmt.Sprintf(" None of the %d certificates of the %s store would be offered; this one is the closest (certlens certs lists every one with its reasons).", len(group), exp.Store)
			}
		}
		if hr := in.ev.HTTP; hr.Answered() {
			// The server went on without a certificate: no 403 to predict.
			f.Severity, f.Predicts = SeverityWarning, VerdictNone
			f.Detail += fmt.Sprintf(" The server answered HTTP %d without a certificate, so this matters only where one is required.", hr.Status)
		}
		out = append(out, f)
	}
	return out
}

// expectedGroups puts the certificates of one store together; each file
// is a group of its own. Certificates without a chain are left out.
func expectedGroups(exps []ExpectedCert) [][]ExpectedCert {
	var out [][]ExpectedCert
	stores := map[string]int{}
	for _, e := range exps {
		if len(e.Chain) == 0 {
			continue
		}
		if i, ok := stores[e.Store]; ok && e.Store != "" {
			out[i] = append(out[i], e)
			continue
		}
		if e.Store != "" {
			stores[e.Store] = len(out)
		}
		out = append(out, []ExpectedCert{e})
	}
	return out
}

// closest is the certificate of group the user most likely meant: the
// first one offered without caution, else the first offered, else the one
// with the fewest reasons against it; and how many are offered.
func closest(group []ExpectedCert, req Request, now time.Time) (ExpectedCert, Choice, int) {
	best, bestChoice, offered := -1, Choice{}, 0
	rank := func(c Choice) int {
		switch {
		case c.Offered && len(c.Cautions) == 0:
			return 0
		case c.Offered:
			return 1
		}
		return 1 + len(c.Reasons)
	}
	for i, e := range group {
		c := Choose(e, req, now)
		if c.Offered {
			offered++
		}
		if best < 0 || rank(c) < rank(bestChoice) {
			best, bestChoice = i, c
		}
	}
	return group[best], bestChoice, offered
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sentCert reports whether the client sent the expected certificate.
func sentCert(in *input, exp ExpectedCert) bool {
	for _, c := range in.chain {
		if c.Equal(exp.Chain[0]) {
			return true
		}
	}
	return false
}

func clientCertIssuerNotListed(in *input, r *Rule) []Finding {
	cr := in.h.CertRequest
	if cr == nil || len(cr.Issuers) == 0 || len(in.chain) == 0 || chainListed(in.chain, cr) {
		return nil
	}
	detail := fmt.Sprintf("%s was issued by %s; no DN of the chain sent is among the %d issuers the server listed.",
		in.chain[0].Subject, in.chain[0].Issuer, len(cr.Issuers))
	if near := nearMiss(in.chain, cr); near != "" {
		detail += " " + near
	}
	return []Finding{r.finding(SeverityWarning, Verdict40316,
		"The client sent a certificate whose chain names none of the CAs the server listed", detail)}
}

func clientCertKeyUsage(in *input, r *Rule) []Finding {
	c := leaf(in)
	if c == nil {
		return nil
	}
	if reason, ok := keyUsageReason(c); !ok {
		return []Finding{r.finding(SeverityError, Verdict40316, "The client certificate's Key Usage lacks digitalSignature", reason)}
	}
	return nil
}

func clientCertExtKeyUsage(in *input, r *Rule) []Finding {
	c := leaf(in)
	if c == nil {
		return nil
	}
	if reason, ok := extKeyUsageReason(c); !ok {
		return []Finding{r.finding(SeverityError, Verdict40316, "The client certificate's Extended Key Usage lacks clientAuth", reason)}
	}
	return nil
}

func clientCertExpired(in *input, r *Rule) []Finding {
	c := leaf(in)
	if c == nil || !in.opts.Now.After(c.NotAfter) {
		return nil
	}
	return []Finding{r.finding(SeverityError, Verdict40317, "The client certificate has expired",
		fmt.Sprintf("%s expired %s (not_after).", c.Subject, c.NotAfter.UTC().Format(timeLayout)))}
}

func clientCertNotYetValid(in *input, r *Rule) []Finding {
	c := leaf(in)
	if c == nil || !in.opts.Now.Before(c.NotBefore) {
		return nil
	}
	return []Finding{r.finding(SeverityError, Verdict40317, "The client certificate is not valid yet",
		fmt.Sprintf("%s is valid from %s (not_before).", c.Subject, c.NotBefore.UTC().Format(timeLayout)))}
}

func clientCertKeyTypeNotAccepted(in *input, r *Rule) []Finding {
	c := leaf(in)
	cr := in.h.CertRequest
	if c == nil || cr == nil {
		return nil
	}
	if reason, ok := keyTypeReason(c, cr, in.h.Version); !ok {
		return []Finding{r.finding(SeverityError, Verdict40316, "The client certificate's key type is not what the server asked for", reason)}
	}
	return nil
}

// alertSubstatus maps what a server's alert most likely means on IIS.
var alertSubstatus = map[handshake.AlertDescription]Verdict{
	handshake.AlertCertificateRequired:    Verdict4037,
	handshake.AlertHandshakeFailure:       Verdict4037,
	handshake.AlertBadCertificate:         Verdict40316,
	handshake.AlertUnsupportedCertificate: Verdict40316,
	handshake.AlertUnknownCA:              Verdict40316,
	handshake.AlertCertificateUnknown:     Verdict40316,
	handshake.AlertAccessDenied:           Verdict40316,
	handshake.AlertDecryptError:           Verdict40316,
	handshake.AlertCertificateExpired:     Verdict40317,
	handshake.AlertCertificateRevoked:     Verdict40313,
}

func serverRejectedCert(in *input, r *Rule) []Finding {
	h := in.h
	if (h.CertRequest == nil && h.Version != handshake.VersionTLS13) || clientNeverAnswered(in) {
		return nil
	}
	for _, a := range h.Alerts {
		if a.From != handshake.FromServer || a.Level != handshake.AlertFatal {
			continue
		}
		sub, ok := alertSubstatus[a.Description]
		if !ok {
			continue
		}
		sent := "no certificate"
		if len(in.chain) > 0 {
			sent = in.chain[0].Subject.String()
		}
		return []Finding{r.finding(SeverityError, "",
			fmt.Sprintf("The server ended the handshake with a %s alert after the client sent %s", a.Description, sent),
			fmt.Sprintf("Fatal alert %s (%d) from the server. Where IIS accepts the handshake and answers in HTTP instead, the same cause is its %s.",
				a.Description, uint8(a.Description), sub))}
	}
	return nil
}

// clientNeverAnswered: the server asked and the client hung up without
// an answer (handshake.ClientAborted).
func clientNeverAnswered(in *input) bool { return in.h.ClientAborted() }

func clientAbandonedAfterRequest(in *input, r *Rule) []Finding {
	if !clientNeverAnswered(in) {
		return nil
	}
	var detail string
	if in.h.CertRequest != nil {
		detail = fmt.Sprintf("The server asked with %s; the client sent no Certificate and no Finished before the handshake ended (%s).",
			issuerSummary(in.h.CertRequest), in.h.End)
	} else {
		detail = fmt.Sprintf("Inferred from TLS 1.3 record sizes: %s; the client sent nothing protected before the connection ended.", in.h.Inferred.Evidence)
	}
	for _, a := range in.h.Alerts {
		if a.From == handshake.FromServer {
			detail += fmt.Sprintf(" The server's %s alert answers the client's hang-up, not a certificate.", a.DescriptionName())
			break
		}
	}
	return []Finding{r.finding(SeverityInfo, "", "The client left without answering the certificate request", detail)}
}

// certRequestMalformed: a TLS 1.3 CertificateRequest whose
// certificate_authorities extension is present but empty. RFC 8446 4.2.4
// gives it authorities<3..2^16-1>; `openssl s_server -no_ca_names` sends it.
func certRequestMalformed(in *input, r *Rule) []Finding {
	cr := in.h.CertRequest
	if cr == nil || !cr.TLS13 || !cr.HasAuthorities || cr.IssuerBytes > 0 {
		return nil
	}
	detail := "The CertificateRequest carries a certificate_authorities extension with an empty list; RFC 8446 requires at least one name " +
		"(authorities<3..2^16-1>), so strict clients (Chromium, Go) reject the message with a decode_error alert instead of answering."
	for _, a := range in.h.Alerts {
		if a.From == handshake.FromClient && a.Fatal() && !a.Encrypted {
			detail += fmt.Sprintf(" Here the client did: fatal %s alert.", a.DescriptionName())
			break
		}
	}
	return []Finding{r.finding(SeverityError, VerdictNone, "The server's certificate request is malformed: an empty certificate_authorities list", detail)}
}
