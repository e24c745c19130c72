package rules

import (
	"slices"
	"strings"
)

// Rule is one entry of the catalogue: a stable id, what it is about (for
// docs/rules.md, generated from this table), and a small pure check.
type Rule struct {
	ID       string
	Severity string // as documented; a check may choose within it
	Predicts Verdict
	Trigger  string
	Remedy   string
	check    func(in *input, r *Rule) []Finding
}

func (r *Rule) finding(sev Severity, predicts Verdict, summary, detail string) Finding {
	return Finding{ID: r.ID, Severity: sev, Predicts: predicts, Summary: summary, Detail: detail, Remedy: r.Remedy}
}

const remedyNegotiate = "On IIS, negotiate the client certificate in the initial handshake: tick \"Negotiate Client Certificate\" on the " +
	"binding, or run `netsh http update sslcert ipport=0.0.0.0:443 certhash=<hash> appid=<guid> clientcertnegotiation=enable`."

const remedyIssuerList = "Remove roots the site does not need from the server's Trusted Root Certification Authorities store, or set " +
	"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\SendTrustedIssuerList=0 (clients then see all their " +
	"certificates), or trust only the client CAs (ClientAuthTrustMode=2 with the \"Client Authentication Issuers\" store)."

// reasonRemedies say what to change for each reason WouldOffer gives, in
// its order.
var reasonRemedies = []struct{ code, fix string }{
	{"issuer-not-listed", "issue the certificate under a CA the server lists, or add its CA to the server's trusted store"},
	{"key-usage", "issue it from a template whose Key Usage includes Digital Signature"},
	{"ext-key-usage", "issue it from a template whose Application Policies include Client Authentication"},
	{"expired", "renew it"},
	{"not-yet-valid", "check the client's and the server's clocks, or wait until its validity starts"},
	{"key-type", "issue it with a key type the server accepts, or enable the missing signature algorithms on the server"},
	{"no-private-key", "import it again with its private key (PKCS#12), into the store the browser reads"},
}

// reasonFixes says what to change for the reasons given, one clause each.
func reasonFixes(codes []string) string {
	var fixes []string
	for _, rr := range reasonRemedies {
		if slices.Contains(codes, rr.code) {
			fixes = append(fixes, rr.fix)
		}
	}
	return strings.Join(fixes, "; ")
}

func allReasonCodes() []string {
	codes := make([]string, len(reasonRemedies))
	for i, rr := range reasonRemedies {
		codes[i] = rr.code
	}
	return codes
}

const remedyClientSide = "the server side is right for this certificate; fix the client. Import the certificate with its private key " +
	"into the user's Personal store (certmgr.msc > Personal > Certificates shows a key on its icon; certutil -user -store My " +
	"says \"Encryption test passed\"); if its key was stored as AT_KEYEXCHANGE, import it again as AT_SIGNATURE " +
	"(certutil -user -importPFX FILE.pfx AT_SIGNATURE); then pick it when the browser asks."

// Catalogue returns every rule, in the order findings are reported: copies,
// for docs and tools, so that no caller changes what the diagnosis runs.
func Catalogue() []Rule {
	out := make([]Rule, len(catalogue))
	for i, r := range catalogue {
		out[i] = *r
	}
	return out
}

// catalogue is every rule, in the order findings are reported. Ids are
// stable: tools and tests match on them (DESIGN.md).
var catalogue = []*Rule{
	{
		ID: "tls13-hidden-handshake", Severity: "info",
		Trigger: "TLS 1.3 seen without keys: the CertificateRequest and the client's Certificate are encrypted.",
		Remedy: "Give certlens the browser's key log (--decrypt-keylog, the file SSLKEYLOGFILE names), use --mode intercept, " +
			"or limit the test client to TLS 1.2 to see the issuer list and the certificate sent.",
		check: tls13Hidden,
	},
	{
		ID: "keylog-secret-missing", Severity: "warning",
		Trigger: "A key log is configured but holds no secret for this handshake, which stayed encrypted.",
		Remedy: "Check that SSLKEYLOGFILE was set in the browser's environment before it started (restart it), that it names the " +
			"file certlens reads, and that the browser is the one making this connection.",
		check: keylogSecretMissing,
	},
	{
		ID: "cert-request-by-renegotiation", Severity: "warning",
		Trigger: "A handshake after application data on the same connection (TLS 1.2 renegotiation), as IIS does for a folder or site requiring certificates; " +
			"or a TLS 1.2 handshake without a CertificateRequest to a host in rules.client_cert_hosts (predicts 403.7 unless a renegotiation follows).",
		Remedy: remedyNegotiate + " Renegotiation fails over HTTP/2 and TLS 1.3, and some clients refuse it.",
		check:  certRequestByRenegotiation,
	},
	{
		ID: "renegotiation-over-http2", Severity: "error",
		Trigger: "Renegotiation on a connection that negotiated ALPN h2: forbidden by RFC 9113, the certificate cannot be asked for this way.",
		Remedy:  remedyNegotiate + " Or disable HTTP/2 for the site so clients use HTTP/1.1.",
		check:   renegotiationOverHTTP2,
	},
	{
		ID: "tls13-late-client-cert", Severity: "error", Predicts: Verdict5000,
		Trigger: "TLS 1.3 with no CertificateRequest in the handshake and no post_handshake_auth offered, and the server then wanted a " +
			"certificate (HTTP 500 0x80070032, a reset after the request, Apache's post-handshake 403), or the host is in rules.client_cert_hosts.",
		Remedy: remedyNegotiate + " Or turn TLS 1.3 off for that binding (\"Disable TLS 1.3 over TCP\", Server 2022 and later); " +
			"on Apache, set SSLVerifyClient at server level, not per location.",
		check: tls13LateClientCert,
	},
	{
		ID: "http-403-observed", Severity: "error",
		Trigger: "The HTTP answer was a 403 whose body names an IIS client-certificate substatus (403.7, 403.13, 403.16, 403.17).",
		Remedy:  "Read the other findings of this handshake for the cause; the substatus says which check IIS failed.",
		check:   http403Observed,
	},
	{
		ID: "issuer-list-empty", Severity: "info",
		Trigger: "The CertificateRequest's certificate_authorities list is empty.",
		Remedy: "Fine when intended (SendTrustedIssuerList=0): browsers then list every client certificate, or send none " +
			"automatically; if the user picks one IIS does not trust, IIS answers 403.16.",
		check: issuerListEmpty,
	},
	{
		ID: "intercept-no-post-handshake-auth", Severity: "warning",
		Trigger: "Intercept mode, TLS 1.3: the server refused certlens's own upstream client for want of post-handshake authentication " +
			"(Apache's 403 \"Cannot perform Post-Handshake Authentication\"), which Go's crypto/tls cannot do, while the browser offered " +
			"post_handshake_auth. The verdict is then unknown: the server would have asked the browser.",
		Remedy: "Run certlens in observe mode (the default) with the browser's key log (--decrypt-keylog FILE, the file SSLKEYLOGFILE " +
			"names): the browser then answers the server itself and certlens reads the post-handshake request and the answer. Or have " +
			"the server ask in the handshake (Apache: SSLVerifyClient at server level, not per location).",
		check: interceptNoPostHandshakeAuth,
	},
	{
		ID: "cert-request-malformed", Severity: "error",
		Trigger: "A TLS 1.3 CertificateRequest with a certificate_authorities extension whose list is empty (RFC 8446 requires at least " +
			"one name; `openssl s_server -no_ca_names` sends it): clients abort with decode_error.",
		Remedy: "Fix the server: send no certificate_authorities extension at all to accept any CA, or list the client CAs " +
			"(OpenSSL: SSL_CTX_set_client_CA_list with at least one name, or drop -no_ca_names).",
		check: certRequestMalformed,
	},
	{
		ID: "issuer-list-too-large", Severity: "warning or error", Predicts: Verdict4037,
		Trigger: "The issuer list is over rules.issuer_list_warn_bytes (12 KiB, warning) or rules.issuer_list_error_bytes (16 KiB, error: " +
			"Windows' limit, beyond which clients fail to connect or get a cut list).",
		Remedy: remedyIssuerList,
		check:  issuerListTooLarge,
	},
	{
		ID: "client-cert-not-sent", Severity: "error (info when the server answered the request anyway)", Predicts: Verdict4037,
		Trigger: "The server asked for a certificate and the client's Certificate message is empty.",
		Remedy: "Check that the client has a certificate with its private key, issued under one of the listed CAs, with Key Usage " +
			"digitalSignature and EKU clientAuth, and not expired; run certlens with --expect-cert FILE to have it checked.",
		check: clientCertNotSent,
	},
	{
		ID: "expected-cert-not-selectable", Severity: "warning or error", Predicts: Verdict4037,
		Trigger: "With --expect-cert: the server asked and the client sent no certificate. Either a browser would not offer the expected " +
			"certificate, and the finding gives every reason (chain reaches no listed CA, Key Usage, EKU, validity, key type, no private " +
			"key in its store); or it would be offered, and the cause is on the client (not in the user's store, no private key, key " +
			"stored as AT_KEYEXCHANGE). With --expect-cert store:nss or store:windows, every certificate of the store is judged and one " +
			"finding names the one offered, or else the closest near miss.",
		Remedy: "When it is not offered, the finding's remedy says what to change for each reason given: " + reasonFixes(allReasonCodes()) +
			". When it would be offered, " + remedyClientSide,
		check: expectedCertNotSelectable,
	},
	{
		ID: "client-cert-issuer-not-listed", Severity: "warning", Predicts: Verdict40316,
		Trigger: "The client sent a certificate whose chain reaches none of the DNs in a non-empty issuer list.",
		Remedy:  "Install the client certificate's issuing CA (or its root) in the server's trusted store, or give the user a certificate from a listed CA.",
		check:   clientCertIssuerNotListed,
	},
	{
		ID: "client-cert-key-usage", Severity: "error", Predicts: Verdict40316,
		Trigger: "The client certificate has a Key Usage extension without digitalSignature.",
		Remedy:  "Issue the certificate from a template whose Key Usage includes Digital Signature.",
		check:   clientCertKeyUsage,
	},
	{
		ID: "client-cert-ext-key-usage", Severity: "error", Predicts: Verdict40316,
		Trigger: "The client certificate has an Extended Key Usage extension without clientAuth (1.3.6.1.5.5.7.3.2).",
		Remedy:  "Issue the certificate from a template whose Application Policies include Client Authentication.",
		check:   clientCertExtKeyUsage,
	},
	{
		ID: "client-cert-expired", Severity: "error", Predicts: Verdict40317,
		Trigger: "The client certificate's not_after is in the past.",
		Remedy:  "Renew the client certificate. Browsers on Windows hide expired certificates, so other users see 403.7 instead.",
		check:   clientCertExpired,
	},
	{
		ID: "client-cert-not-yet-valid", Severity: "error", Predicts: Verdict40317,
		Trigger: "The client certificate's not_before is in the future.",
		Remedy:  "Check the client's and the server's clocks, or wait until the certificate's validity starts.",
		check:   clientCertNotYetValid,
	},
	{
		ID: "client-cert-key-type-not-accepted", Severity: "error", Predicts: Verdict40316,
		Trigger: "The client certificate's key type is not among the requested certificate_types, or no requested signature scheme fits it.",
		Remedy:  "Issue the client a certificate with a key type the server accepts (RSA or ECDSA, as listed), or enable the missing signature algorithms on the server.",
		check:   clientCertKeyTypeNotAccepted,
	},
	{
		ID: "client-abandoned-after-request", Severity: "info",
		Trigger: "The client never answered the CertificateRequest: no Certificate, no Finished, the connection ended. Browsers do this " +
			"while the user (or a policy) picks a certificate, then repeat the request on a new connection.",
		Remedy: "Look at the next handshake to the same target: it carries the browser's answer. If there is none, the user " +
			"cancelled the certificate prompt or the browser found no certificate to offer and gave up.",
		check: clientAbandonedAfterRequest,
	},
	{
		ID: "server-rejected-cert", Severity: "error",
		Trigger: "The server ended the handshake with a fatal alert about the certificate (certificate_required, handshake_failure, " +
			"bad_certificate, unknown_ca, certificate_expired, certificate_revoked, access_denied, ...).",
		Remedy: "Check the server's trust of the client's CA (its root in the server's trusted store), the certificate's validity " +
			"and revocation, and the server's error log for the exact reason.",
		check: serverRejectedCert,
	},
}
