package rules

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certlens/certlens/handshake"
)

const timeLayout = "2006-01-02 15:04:05Z"

// Reason is one cause for a browser not to offer a certificate.
type Reason struct {
	Code string // issuer-not-listed, key-usage, ext-key-usage, expired, not-yet-valid, key-type
	Text string
}

// WouldOffer emulates a browser's choice (FACTS.md, "Browser selection"):
// given a certificate's chain (leaf first, as its store would build it) and
// the server's request, it returns every reason the certificate would not be
// offered; none means it would be. Usable by every mode and by probe.
func WouldOffer(chain []*x509.Certificate, cr *handshake.CertificateRequest, version handshake.Version, now time.Time) []Reason {
	if len(chain) == 0 {
		return []Reason{{"no-certificate", "No certificate."}}
	}
	c := chain[0]
	var out []Reason
	if cr != nil && len(cr.Issuers) > 0 && !chainListed(chain, cr) {
		text := fmt.Sprintf("Its chain (%s) reaches none of the %d CA names the server listed.", chainNames(chain), len(cr.Issuers))
		if near := nearMiss(chain, cr); near != "" {
			text += " " + near
		} else if len(chain) == 1 && !isSelfIssued(c) {
			text += fmt.Sprintf(" Only the leaf is known: give the chain too (its issuer %s and that CA's issuers), as the browser's store would.", c.Issuer)
		}
		out = append(out, Reason{"issuer-not-listed", text})
	}
	if text, ok := keyUsageReason(c); !ok {
		out = append(out, Reason{"key-usage", text})
	}
	if text, ok := extKeyUsageReason(c); !ok {
		out = append(out, Reason{"ext-key-usage", text})
	}
	if now.After(c.NotAfter) {
		out = append(out, Reason{"expired", fmt.Sprintf("It expired %s; browsers on Windows hide expired certificates.", c.NotAfter.UTC().Format(timeLayout))})
	}
	if now.Before(c.NotBefore) {
		out = append(out, Reason{"not-yet-valid", fmt.Sprintf("It is valid only from %s.", c.NotBefore.UTC().Format(timeLayout))})
	}
	if cr != nil {
		if text, ok := keyTypeReason(c, cr, version); !ok {
			out = append(out, Reason{"key-type", text})
		}
	}
	return out
}

func chainNames(chain []*x509.Certificate) string {
	names := make([]string, len(chain))
	for i, c := range chain {
		names[i] = c.Subject.String()
	}
	return strings.Join(names, " <- ")
}

func isSelfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, c.RawSubject) }

// chainMatches reports whether any certificate of the chain was issued by, or
// is, a CA whose DN the list names. Browsers match the encoded DNs byte for
// byte, across the whole chain (FACTS.md: the intermediate or the root will do).
func chainMatches(chain []*x509.Certificate, issuers []handshake.DN) bool {
	for _, c := range chain {
		for _, dn := range issuers {
			if bytes.Equal(c.RawIssuer, dn.Raw) || bytes.Equal(c.RawSubject, dn.Raw) {
				return true
			}
		}
	}
	return false
}

// chainListed is chainMatches against the request's parsed list: a lookup
// per DN of the chain instead of a comparison with every listed DN.
func chainListed(chain []*x509.Certificate, cr *handshake.CertificateRequest) bool {
	list := cr.IssuerList()
	for _, c := range chain {
		if list.IndexDER(c.RawIssuer) >= 0 || list.IndexDER(c.RawSubject) >= 0 {
			return true
		}
	}
	return false
}

// nearMiss explains a DN that almost matches: the same name in another
// encoding, or the same CN with other attributes. "" when nothing is close.
// Each DN of the chain is looked up by its RFC 4514 string and its CN in
// the list's indexes, which the list computed once: the first listed DN
// that reads the same or, failing that, has the same CN.
func nearMiss(chain []*x509.Certificate, cr *handshake.CertificateRequest) string {
	list := cr.IssuerList()
	for _, c := range chain {
		for _, raw := range [][]byte{c.RawIssuer, c.RawSubject} {
			var mine pkix.RDNSequence
			if _, err := asn1.Unmarshal(raw, &mine); err != nil {
				continue
			}
			name := mine.String()
			same, sameCN := list.IndexName(name), list.IndexCN(handshake.CommonName(mine))
			switch {
			case same >= 0 && (sameCN < 0 || same <= sameCN):
				return fmt.Sprintf("Near miss: listed DN #%d reads the same (%s) but is encoded differently (%s); browsers compare the encoded bytes, so it does not match.",
					same+1, list.Names()[same], encodingDifference(raw, list.DNs()[same].Raw))
			case sameCN >= 0:
				return fmt.Sprintf("Near miss: listed DN #%d has the same CN but differs elsewhere: listed %s, chain has %s.", sameCN+1, list.Names()[sameCN], name)
			}
		}
	}
	return ""
}

// encodingDifference says how two DERs of the same name differ: string types
// (PrintableString vs UTF8String), or attribute order.
func encodingDifference(a, b []byte) string {
	ta, tb := stringTags(a), stringTags(b)
	if !slices.Equal(ta, tb) {
		return fmt.Sprintf("string types %s vs %s", strings.Join(ta, ","), strings.Join(tb, ","))
	}
	return "attribute order or set structure"
}

var asn1StringNames = map[int]string{12: "UTF8String", 19: "PrintableString", 20: "T61String", 22: "IA5String", 30: "BMPString", 28: "UniversalString"}

func stringTags(der []byte) []string {
	var rdn []asn1.RawValue
	if _, err := asn1.Unmarshal(der, &rdn); err != nil {
		return nil
	}
	var out []string
	for _, set := range rdn {
		var atvs []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if _, err := asn1.UnmarshalWithParams(set.FullBytes, &atvs, "set"); err != nil {
			continue
		}
		for _, atv := range atvs {
			name := asn1StringNames[atv.Value.Tag]
			if name == "" {
				name = fmt.Sprintf("tag%d", atv.Value.Tag)
			}
			out = append(out, name)
		}
	}
	return out
}

func keyUsageReason(c *x509.Certificate) (string, bool) {
	if c.KeyUsage == 0 || c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		return "", true
	}
	return fmt.Sprintf("Its Key Usage is %s, without digitalSignature, which client authentication needs to sign the handshake.",
		strings.Join(KeyUsageNames(c.KeyUsage), ", ")), false
}

func extKeyUsageReason(c *x509.Certificate) (string, bool) {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return "", true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return "", true
		}
	}
	return fmt.Sprintf("Its Extended Key Usage is %s, without Client Authentication (1.3.6.1.5.5.7.3.2).",
		strings.Join(ExtKeyUsageNames(c), ", ")), false
}

// keyTypeReason checks the certificate's key against the request's
// certificate_types (TLS 1.2) and signature schemes.
func keyTypeReason(c *x509.Certificate, cr *handshake.CertificateRequest, version handshake.Version) (string, bool) {
	kind, typeOK, schemeOK := "", false, false
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		kind = fmt.Sprintf("RSA %d", k.N.BitLen())
		typeOK = slices.Contains(cr.CertTypes, handshake.CertTypeRSASign)
		for _, s := range cr.SignatureSchemes {
			if s.Signature12() == handshake.SignatureRSA || (s >= handshake.PSSWithSHA256 && s <= handshake.PSSWithSHA512) {
				schemeOK = true
			}
		}
	case *ecdsa.PublicKey:
		kind = "ECDSA " + k.Curve.Params().Name
		typeOK = slices.Contains(cr.CertTypes, handshake.CertTypeECDSASign)
		curveScheme := map[string]handshake.SignatureScheme{"P-256": handshake.ECDSAWithP256AndSHA256,
			"P-384": handshake.ECDSAWithP384AndSHA384, "P-521": handshake.ECDSAWithP521AndSHA512}[k.Curve.Params().Name]
		for _, s := range cr.SignatureSchemes {
			// TLS 1.2 pairs a hash with "ecdsa" for any curve; TLS 1.3 binds the curve.
			if (version != handshake.VersionTLS13 && s.Signature12() == handshake.SignatureECDSA) || s == curveScheme {
				schemeOK = true
			}
		}
	case ed25519.PublicKey:
		kind = "Ed25519"
		typeOK = slices.Contains(cr.CertTypes, handshake.CertTypeECDSASign) // RFC 8422: ecdsa_sign covers EdDSA
		schemeOK = slices.Contains(cr.SignatureSchemes, handshake.Ed25519)
	default:
		return "", true // unknown key types: nothing to say
	}
	if cr.TLS13 || len(cr.CertTypes) == 0 {
		typeOK = true // TLS 1.3 has no certificate_types
	}
	if len(cr.SignatureSchemes) == 0 {
		schemeOK = true // TLS 1.0/1.1 requests carry none
	}
	switch {
	case !typeOK:
		return fmt.Sprintf("Its key is %s, but the server's certificate_types are %s.", kind, joinNames(cr.CertTypes)), false
	case !schemeOK:
		return fmt.Sprintf("Its key is %s, but none of the server's signature algorithms (%s) can sign with it.", kind, joinNames(cr.SignatureSchemes)), false
	}
	return "", true
}

func joinNames[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

func leaf(in *input) *x509.Certificate {
	if len(in.chain) == 0 {
		return nil
	}
	return in.chain[0]
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
