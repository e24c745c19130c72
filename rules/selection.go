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
	// Code is issuer-not-listed, key-usage, ext-key-usage, expired,
	// not-yet-valid, key-type or no-private-key (each with its clause in
	// reasonRemedies), no-certificate for an empty chain, or, as a caution,
	// key-exchange-spec.
	Code string
	Text string
}

// WouldOffer emulates a browser's choice (FACTS.md, "Browser selection"):
// given a certificate's chain (leaf first, as its store would build it) and
// the server's request, it returns every reason the certificate would not be
// offered; none means it would be. Usable by every mode and by probe.
func WouldOffer(chain []*x509.Certificate, cr *handshake.CertificateRequest, version handshake.Version, now time.Time) []Reason {
	return Choose(ExpectedCert{Chain: chain}, Request{CR: cr, Version: version}, now).Reasons
}

// Request is a server's certificate request as the selection reads it.
type Request struct {
	CR      *handshake.CertificateRequest // nil: nothing known of the request but Names
	Version handshake.Version
	// Names, when CR is nil, is the issuer list known only by its RFC 4514
	// strings (a logged event keeps no DER): matched by name, which cannot
	// see two encodings of one name apart, and with no key type to check.
	Names []string
}

// Choice is a browser's decision about one certificate for one request.
type Choice struct {
	Offered bool
	Reasons []Reason // every reason it is not offered
	// Cautions do not stop the browser from offering it but may stop the
	// client from using it (a CAPI key stored as AT_KEYEXCHANGE).
	Cautions []Reason
}

// Choose decides, as Chromium's client certificate stores do, whether a
// certificate is offered for req: its chain must reach a listed CA (an
// empty list takes any), its Key Usage and EKU must allow client
// authentication, it must be within its validity, its key must suit the
// request, and its store must hold its private key.
func Choose(c ExpectedCert, req Request, now time.Time) Choice {
	chain, cr := c.Chain, req.CR
	if len(chain) == 0 {
		return Choice{Reasons: []Reason{{"no-certificate", "No certificate."}}}
	}
	leaf := chain[0]
	var out []Reason
	if listed, n := req.listed(chain); !listed {
		text := fmt.Sprintf("Its chain (%s) reaches none of the %d CA names the server listed.", chainNames(chain), n)
		top, near := chain[len(chain)-1], ""
		if cr != nil {
			near = nearMiss(chain, cr)
		}
		switch {
		case near != "":
			text += " " + near
		case c.Store != "" && !isSelfIssued(top):
			// Chromium builds the chain from local certificates only (no AIA
			// fetching), so a gap in the store ends it.
			text += fmt.Sprintf(" The store holds no certificate for %s, so the chain stops at %s: browsers never fetch a missing CA "+
				"certificate (AIA); import it into the store.", top.Issuer, top.Subject)
		case len(chain) == 1 && !isSelfIssued(leaf):
			text += fmt.Sprintf(" Only the leaf is known: give the chain too (its issuer %s and that CA's issuers), as the browser's store would.", leaf.Issuer)
		}
		if cr == nil {
			text += " (Compared by name: the event keeps no DER, so a listed name encoded differently cannot be told apart.)"
		}
		out = append(out, Reason{"issuer-not-listed", text})
	}
	if text, ok := keyUsageReason(leaf); !ok {
		out = append(out, Reason{"key-usage", text})
	}
	if text, ok := extKeyUsageReason(leaf); !ok {
		out = append(out, Reason{"ext-key-usage", text})
	}
	if now.After(leaf.NotAfter) {
		out = append(out, Reason{"expired", fmt.Sprintf("It expired %s; browsers hide expired certificates.", leaf.NotAfter.UTC().Format(timeLayout))})
	}
	if now.Before(leaf.NotBefore) {
		out = append(out, Reason{"not-yet-valid", fmt.Sprintf("It is valid only from %s.", leaf.NotBefore.UTC().Format(timeLayout))})
	}
	if cr != nil {
		if text, ok := keyTypeReason(leaf, cr, req.Version); !ok {
			out = append(out, Reason{"key-type", text})
		}
	}
	var cautions []Reason
	switch k := c.Key; {
	case k.State == KeyMissing:
		out = append(out, Reason{"no-private-key", fmt.Sprintf("The %s store holds no private key for it; browsers offer only certificates with one.", c.Store)})
	case k.State == KeyPresent && k.Spec == SpecKeyExchange:
		where := ""
		if k.Provider != "" {
			where = " by " + k.Provider
		}
		cautions = append(cautions, Reason{"key-exchange-spec", fmt.Sprintf("Its key is stored as AT_KEYEXCHANGE%s; some clients then fail to sign "+
			"the handshake with it and send nothing: import it again as AT_SIGNATURE (certutil -user -importPFX FILE.pfx AT_SIGNATURE).", where)})
	}
	return Choice{Offered: len(out) == 0, Reasons: out, Cautions: cautions}
}

// listed reports whether the chain reaches a DN of the request's list (an
// empty list, or none known, takes any), and how many DNs it has.
func (req Request) listed(chain []*x509.Certificate) (bool, int) {
	if req.CR != nil {
		return len(req.CR.Issuers) == 0 || chainListed(chain, req.CR), len(req.CR.Issuers)
	}
	if len(req.Names) == 0 {
		return true, 0
	}
	for _, c := range chain {
		for _, raw := range [][]byte{c.RawIssuer, c.RawSubject} {
			if slices.Contains(req.Names, handshake.DN{Raw: raw}.String()) {
				return true, len(req.Names)
			}
		}
	}
	return false, len(req.Names)
}

// KeyState is what a store says of a certificate's private key.
type KeyState int

const (
	KeyUnknown KeyState = iota // a file: the store it goes into decides
	KeyPresent
	KeyMissing
)

// The CAPI key specs (wincrypt.h) and CNG's, as Key.Spec names them.
const (
	SpecKeyExchange = "AT_KEYEXCHANGE"
	SpecSignature   = "AT_SIGNATURE"
	SpecCNG         = "CNG"
)

// Key is what a store says of a certificate's private key.
type Key struct {
	State    KeyState
	Spec     string // Windows: SpecKeyExchange, SpecSignature or SpecCNG; "" elsewhere
	Provider string // Windows: the CSP or KSP holding it
}

// BuildChain builds leaf's chain from local certificates only, as a
// browser does without AIA fetching: each issuer found by its subject
// (byte for byte) and signature. complete is false when the chain stops
// at a certificate whose issuer is not among local.
func BuildChain(leaf *x509.Certificate, local []*x509.Certificate) (chain []*x509.Certificate, complete bool) {
	chain = []*x509.Certificate{leaf}
	for c := leaf; !isSelfIssued(c); {
		var next *x509.Certificate
		for _, p := range local {
			if bytes.Equal(p.RawSubject, c.RawIssuer) && !slices.ContainsFunc(chain, p.Equal) && c.CheckSignatureFrom(p) == nil {
				next = p
				break
			}
		}
		if next == nil || len(chain) > 8 {
			return chain, false
		}
		chain = append(chain, next)
		c = next
	}
	return chain, true
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
