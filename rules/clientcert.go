package rules

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/certlens/certlens/handshake"
)

func leaf(in *input) *x509.Certificate {
	if len(in.chain) == 0 {
		return nil
	}
	return in.chain[0]
}

func clientCertValidity(in *input) []Finding {
	c := leaf(in)
	if c == nil {
		return nil
	}
	now := in.opts.Now
	switch {
	case now.After(c.NotAfter):
		return []Finding{{
			ID:       "client-cert-expired",
			Severity: SeverityError,
			Predicts: "403.17",
			Summary:  "The client certificate has expired",
			Detail:   fmt.Sprintf("%s expired %s (not_after).", c.Subject, c.NotAfter.UTC().Format("2006-01-02 15:04:05Z")),
			Remedy:   "Renew the client certificate; browsers on Windows hide expired certificates, so others may see 403.7 instead.",
		}}
	case now.Before(c.NotBefore):
		return []Finding{{
			ID:       "client-cert-not-yet-valid",
			Severity: SeverityError,
			Predicts: "403.17",
			Summary:  "The client certificate is not valid yet",
			Detail:   fmt.Sprintf("%s is valid from %s (not_before).", c.Subject, c.NotBefore.UTC().Format("2006-01-02 15:04:05Z")),
			Remedy:   "Check the client's and the server's clocks, or wait until the certificate's validity starts.",
		}}
	}
	return nil
}

func clientCertKeyUsage(in *input) []Finding {
	c := leaf(in)
	if c == nil || c.KeyUsage == 0 || c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		return nil
	}
	return []Finding{{
		ID:       "client-cert-key-usage",
		Severity: SeverityError,
		Predicts: "403.16",
		Summary:  "The client certificate's Key Usage lacks digitalSignature",
		Detail:   fmt.Sprintf("%s has Key Usage %s; client authentication signs the handshake, which needs digitalSignature.", c.Subject, strings.Join(KeyUsageNames(c.KeyUsage), ", ")),
		Remedy:   "Issue the certificate from a template whose Key Usage includes Digital Signature.",
	}}
}

func clientCertExtKeyUsage(in *input) []Finding {
	c := leaf(in)
	if c == nil || (len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0) {
		return nil
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	return []Finding{{
		ID:       "client-cert-ext-key-usage",
		Severity: SeverityError,
		Predicts: "403.16",
		Summary:  "The client certificate's Extended Key Usage lacks clientAuth",
		Detail:   fmt.Sprintf("%s has EKU %s, without Client Authentication (1.3.6.1.5.5.7.3.2).", c.Subject, strings.Join(ExtKeyUsageNames(c), ", ")),
		Remedy:   "Issue the certificate from a template whose Application Policies include Client Authentication.",
	}}
}

func clientCertIssuerNotListed(in *input) []Finding {
	cr := in.h.CertRequest
	if cr == nil || len(cr.Issuers) == 0 || len(in.chain) == 0 {
		return nil
	}
	if ChainMatches(in.chain, cr.Issuers) {
		return nil
	}
	return []Finding{{
		ID:       "client-cert-issuer-not-listed",
		Severity: SeverityWarning,
		Predicts: "403.16",
		Summary:  "The client sent a certificate whose chain names none of the CAs the server listed",
		Detail: fmt.Sprintf("%s was issued by %s; no DN of the chain sent is among the %d issuers the server listed.",
			in.chain[0].Subject, in.chain[0].Issuer, len(cr.Issuers)),
		Remedy: "Install the client certificate's issuing CA (or its root) in the server's trusted store, or give the user a certificate from a listed CA.",
	}}
}

// ChainMatches reports whether any certificate of the chain was issued by, or
// is, a CA whose DN the list names: browsers match on the chain's DNs, byte for
// byte (FACTS.md, browser selection).
func ChainMatches(chain []*x509.Certificate, issuers []handshake.DN) bool {
	for _, c := range chain {
		for _, dn := range issuers {
			if bytes.Equal(c.RawIssuer, dn.Raw) || bytes.Equal(c.RawSubject, dn.Raw) {
				return true
			}
		}
	}
	return false
}

// KeyUsageNames names the bits of a Key Usage, in RFC 5280 order.
func KeyUsageNames(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
	x509.ExtKeyUsageIPSECEndSystem:  "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:     "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:       "ipsecUser",
}

// ExtKeyUsageNames names a certificate's EKUs; unknown ones as dotted OIDs.
func ExtKeyUsageNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

// alertSubstatus maps what a server's alert most likely means on IIS.
var alertSubstatus = map[handshake.AlertDescription]string{
	handshake.AlertCertificateRequired:    "403.7",
	handshake.AlertHandshakeFailure:       "403.7",
	handshake.AlertBadCertificate:         "403.16",
	handshake.AlertUnsupportedCertificate: "403.16",
	handshake.AlertUnknownCA:              "403.16",
	handshake.AlertCertificateUnknown:     "403.16",
	handshake.AlertAccessDenied:           "403.16",
	handshake.AlertDecryptError:           "403.16",
	handshake.AlertCertificateExpired:     "403.17",
	handshake.AlertCertificateRevoked:     "403.13",
}

func serverRejectedCert(in *input) []Finding {
	h := in.h
	if h.CertRequest == nil && h.Version != handshake.VersionTLS13 {
		return nil
	}
	for _, a := range h.Alerts {
		if a.From != handshake.FromServer || !a.Fatal() || a.Encrypted {
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
		return []Finding{{
			ID:       "server-rejected-cert",
			Severity: SeverityError,
			Summary:  fmt.Sprintf("The server ended the handshake with a %s alert after the client sent %s", a.Description, sent),
			Detail: fmt.Sprintf("Fatal alert %s (%d) from the server; where IIS accepts the handshake and answers in HTTP instead, this is its %s.",
				a.Description, uint8(a.Description), sub),
			Remedy: "Check the server's trust of the client's CA (its root in the server's trusted store), the certificate's validity and revocation, and the server's error log for the exact reason.",
		}}
	}
	return nil
}
