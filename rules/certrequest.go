package rules

import (
	"fmt"
	"strings"

	"github.com/certlens/certlens/handshake"
)

const remedyNetsh = "On IIS, negotiate the certificate in the initial handshake: tick \"Negotiate Client Certificate\" on the binding, or run " +
	"`netsh http update sslcert ipport=0.0.0.0:443 certhash=<hash> appid=<guid> clientcertnegotiation=enable`."

func tls13Hidden(in *input) []Finding {
	h := in.h
	if h.Version != handshake.VersionTLS13 || h.Visibility != handshake.VisibilityEncrypted {
		return nil
	}
	return []Finding{{
		ID:       "tls13-hidden-handshake",
		Severity: SeverityInfo,
		Summary:  "TLS 1.3: the certificate request and the client's certificate are encrypted",
		Detail: fmt.Sprintf("ServerHello selected TLS 1.3 (%s); after it the server sent %d and the client %d protected records, whose contents a passive observer cannot read.",
			h.ServerHello.CipherSuite, len(h.ServerRecords), len(h.ClientRecords)),
		Remedy: "Give certlens the browser's key log (--decrypt-keylog, the file SSLKEYLOGFILE names), use --mode intercept, or limit the test client to TLS 1.2 to see the issuer list and the certificate sent.",
	}}
}

func renegotiation(in *input) []Finding {
	h := in.h
	if h.Phase != handshake.PhaseRenegotiation {
		return nil
	}
	if alpn := negotiatedALPN(in); alpn == "h2" {
		return []Finding{{
			ID:       "renegotiation-over-http2",
			Severity: SeverityError,
			Predicts: "",
			Summary:  "Renegotiation on an HTTP/2 connection: forbidden by RFC 9113, the client certificate cannot be requested this way",
			Detail:   "ALPN negotiated h2 and a handshake followed application data on the same connection.",
			Remedy:   remedyNetsh + " Or disable HTTP/2 for the site so clients fall back to HTTP/1.1.",
		}}
	}
	detail := "Handshake records followed application data: the server asked for a new handshake after reading the request, as IIS does for a folder or site set to require client certificates."
	if h.Visibility == handshake.VisibilityEncrypted {
		detail += fmt.Sprintf(" Its records are encrypted under the first handshake's keys (server %v bytes, client %v bytes).", h.ServerRecords, h.ClientRecords)
	}
	return []Finding{{
		ID:       "cert-request-by-renegotiation",
		Severity: SeverityWarning,
		Summary:  "The client certificate is requested by TLS renegotiation, after the request",
		Detail:   detail,
		Remedy:   remedyNetsh + " Renegotiation fails over HTTP/2 and TLS 1.3, and some clients refuse it.",
	}}
}

func negotiatedALPN(in *input) string {
	if in.h.ServerHello != nil {
		return in.h.ServerHello.ALPN
	}
	return ""
}

func issuerListEmpty(in *input) []Finding {
	cr := in.h.CertRequest
	if cr == nil || len(cr.Issuers) > 0 || (cr.TLS13 && !cr.HasAuthorities) {
		return nil
	}
	return []Finding{{
		ID:       "issuer-list-empty",
		Severity: SeverityInfo,
		Summary:  "The server's certificate request names no CA: the client may send any certificate",
		Detail:   fmt.Sprintf("certificate_authorities is empty (%d bytes).", cr.IssuerBytes),
		Remedy:   "Fine when intended (SendTrustedIssuerList=0). Browsers then list every client certificate, or send none automatically; if the user picks the wrong one, IIS answers 403.16.",
	}}
}

func issuerListTooLarge(in *input) []Finding {
	cr := in.h.CertRequest
	if cr == nil || cr.IssuerBytes < in.opts.IssuerListWarnBytes {
		return nil
	}
	sev := SeverityWarning
	summary := fmt.Sprintf("The issuer list is %d bytes, close to Windows' 16 KB limit", cr.IssuerBytes)
	predicts := ""
	if cr.IssuerBytes > in.opts.IssuerListErrorBytes {
		sev = SeverityError
		summary = fmt.Sprintf("The issuer list is %d bytes, over Windows' 16 KB limit: clients may fail to connect or get a cut list", cr.IssuerBytes)
		predicts = "403.7"
	}
	return []Finding{{
		ID:       "issuer-list-too-large",
		Severity: sev,
		Predicts: predicts,
		Summary:  summary,
		Detail: fmt.Sprintf("%d CA names, %d bytes of certificate_authorities, carried in %d TLS records (warning from %d, error over %d bytes).",
			len(cr.Issuers), cr.IssuerBytes, cr.Records, in.opts.IssuerListWarnBytes, in.opts.IssuerListErrorBytes),
		Remedy: "Remove roots the site does not need from the server's Trusted Root Certification Authorities store, or set " +
			"HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\SendTrustedIssuerList=0, or trust only the client CAs " +
			"(ClientAuthTrustMode=2 with the \"Client Authentication Issuers\" store).",
	}}
}

func clientCertNotSent(in *input) []Finding {
	h := in.h
	if h.CertRequest == nil || h.ClientCertificate == nil || len(h.ClientCertificate.Chain) > 0 {
		return nil
	}
	names := make([]string, 0, min(len(h.CertRequest.Issuers), 3))
	for _, dn := range h.CertRequest.Issuers[:min(len(h.CertRequest.Issuers), 3)] {
		names = append(names, dn.String())
	}
	list := "an empty issuer list"
	if n := len(h.CertRequest.Issuers); n > 0 {
		list = fmt.Sprintf("%d CA names (%s", n, strings.Join(names, "; "))
		if n > 3 {
			list += "; ..."
		}
		list += ")"
	}
	return []Finding{{
		ID:       "client-cert-not-sent",
		Severity: SeverityError,
		Predicts: "403.7",
		Summary:  "The server asked for a client certificate and the client sent none",
		Detail: fmt.Sprintf("The client's Certificate message is empty, in answer to a CertificateRequest with %s. "+
			"IIS answers 403.7 if the site requires client certificates (if they are only accepted, the request goes on without one).", list),
		Remedy: "Check that the client has a certificate with a private key, issued by one of the listed CAs (its chain must reach a listed DN), " +
			"with Key Usage digitalSignature and EKU clientAuth, and not expired; run certlens with --expect-cert FILE to have it checked.",
	}}
}
