package handshake

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Extension code points read by the decoders.
const (
	extServerName             uint16 = 0
	extSignatureAlgorithms    uint16 = 13
	extALPN                   uint16 = 16
	extSupportedVersions      uint16 = 43
	extCertificateAuthorities uint16 = 47
	extPostHandshakeAuth      uint16 = 49
	extSignatureAlgsCert      uint16 = 50
	extRenegotiationInfo      uint16 = 0xff01
)

// helloRetryRandom marks a ServerHello that is really a HelloRetryRequest
// (RFC 8446 4.1.3).
var helloRetryRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// ErrMalformed is wrapped by every decoder error; the text says which field broke.
var ErrMalformed = errors.New("malformed")

func malformed(msg, field string) error {
	return fmt.Errorf("%s: %s: %w", msg, field, ErrMalformed)
}

// ClientHello holds what the diagnosis needs from a ClientHello (RFC 8446 4.1.2).
type ClientHello struct {
	LegacyVersion     Version           `json:"legacy_version"`
	Random            []byte            `json:"-"`
	SupportedVersions []Version         `json:"supported_versions,omitempty"`
	ServerName        string            `json:"sni,omitempty"`
	ALPN              []string          `json:"alpn,omitempty"`
	SignatureSchemes  []SignatureScheme `json:"signature_schemes,omitempty"`
	CipherSuites      []CipherSuite     `json:"cipher_suites,omitempty"`
	Extensions        []uint16          `json:"extensions,omitempty"`
	PostHandshakeAuth bool              `json:"post_handshake_auth"`
	RenegotiationInfo bool              `json:"renegotiation_info"`
}

// parseClientHello decodes a ClientHello body (without the 4-byte header).
func parseClientHello(body []byte) (*ClientHello, error) {
	const name = "ClientHello"
	s := cryptobyte.String(body)
	m := &ClientHello{}
	var v uint16
	var random, sessionID, suites, compression []byte
	if !s.ReadUint16(&v) {
		return nil, malformed(name, "legacy_version")
	}
	m.LegacyVersion = Version(v)
	if !s.ReadBytes(&random, 32) {
		return nil, malformed(name, "random")
	}
	m.Random = append([]byte(nil), random...)
	if !readUint8Vec(&s, &sessionID) || len(sessionID) > 32 {
		return nil, malformed(name, "legacy_session_id")
	}
	if !readUint16Vec(&s, &suites) || len(suites)%2 != 0 {
		return nil, malformed(name, "cipher_suites")
	}
	m.CipherSuites = make([]CipherSuite, 0, len(suites)/2)
	for i := 0; i+1 < len(suites); i += 2 {
		m.CipherSuites = append(m.CipherSuites, CipherSuite(uint16(suites[i])<<8|uint16(suites[i+1])))
	}
	if !readUint8Vec(&s, &compression) || len(compression) == 0 {
		return nil, malformed(name, "legacy_compression_methods")
	}
	if s.Empty() {
		return m, nil // SSLv3/TLS 1.0 clients may send no extensions at all.
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed(name, "extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed(name, "extensions")
		}
		if len(m.Extensions) < maxListItems {
			m.Extensions = append(m.Extensions, typ)
		}
		switch typ {
		case extServerName:
			var list cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) {
				return nil, malformed(name, "server_name")
			}
			for !list.Empty() {
				var nameType uint8
				var host []byte
				if !list.ReadUint8(&nameType) || !readUint16Vec(&list, &host) {
					return nil, malformed(name, "server_name")
				}
				if nameType == 0 && m.ServerName == "" {
					m.ServerName = string(host)
				}
			}
		case extALPN:
			protos, err := readALPN(data)
			if err != nil {
				return nil, malformed(name, "application_layer_protocol_negotiation")
			}
			m.ALPN = protos
		case extSignatureAlgorithms:
			schemes, ok := readSchemes(&data)
			if !ok {
				return nil, malformed(name, "signature_algorithms")
			}
			m.SignatureSchemes = schemes
		case extSupportedVersions:
			var list []byte
			if !readUint8Vec(&data, &list) || len(list)%2 != 0 {
				return nil, malformed(name, "supported_versions")
			}
			for i := 0; i+1 < len(list); i += 2 {
				m.SupportedVersions = append(m.SupportedVersions, Version(uint16(list[i])<<8|uint16(list[i+1])))
			}
		case extPostHandshakeAuth:
			m.PostHandshakeAuth = true
		case extRenegotiationInfo:
			m.RenegotiationInfo = true
		}
	}
	for _, cs := range m.CipherSuites {
		// TLS_EMPTY_RENEGOTIATION_INFO_SCSV says the same as the extension (RFC 5746 3.3).
		if cs == 0x00ff {
			m.RenegotiationInfo = true
		}
	}
	return m, nil
}

// maxListItems caps lists kept from a peer's message for display; the
// message-size cap bounds memory anyway, this keeps events readable.
const maxListItems = 256

func readUint8Vec(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) {
		return false
	}
	*out = v
	return true
}

func readUint16Vec(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&v) {
		return false
	}
	*out = v
	return true
}

func readSchemes(s *cryptobyte.String) ([]SignatureScheme, bool) {
	var list []byte
	if !readUint16Vec(s, &list) || len(list)%2 != 0 {
		return nil, false
	}
	n := min(len(list)/2, maxListItems)
	out := make([]SignatureScheme, 0, n)
	for i := 0; i+1 < len(list) && len(out) < n; i += 2 {
		out = append(out, SignatureScheme(uint16(list[i])<<8|uint16(list[i+1])))
	}
	return out, true
}

func readALPN(data cryptobyte.String) ([]string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || list.Empty() {
		return nil, ErrMalformed
	}
	var protos []string
	for !list.Empty() {
		var p []byte
		if !readUint8Vec(&list, &p) || len(p) == 0 {
			return nil, ErrMalformed
		}
		if len(protos) < maxListItems {
			protos = append(protos, string(p))
		}
	}
	return protos, nil
}

// ServerHello holds the negotiated parameters (RFC 8446 4.1.3, RFC 5246 7.4.1.3).
type ServerHello struct {
	LegacyVersion Version     `json:"legacy_version"`
	Version       Version     `json:"version"`
	Random        []byte      `json:"-"`
	CipherSuite   CipherSuite `json:"cipher_suite"`
	ALPN          string      `json:"alpn,omitempty"`
	HelloRetry    bool        `json:"hello_retry_request,omitempty"`
	Extensions    []uint16    `json:"extensions,omitempty"`
}

// parseServerHello decodes a ServerHello body. Version is the negotiated one:
// supported_versions when present, the legacy field otherwise.
func parseServerHello(body []byte) (*ServerHello, error) {
	const name = "ServerHello"
	s := cryptobyte.String(body)
	m := &ServerHello{}
	var v, suite uint16
	var random, sessionID []byte
	var compression uint8
	if !s.ReadUint16(&v) {
		return nil, malformed(name, "legacy_version")
	}
	m.LegacyVersion, m.Version = Version(v), Version(v)
	if !s.ReadBytes(&random, 32) {
		return nil, malformed(name, "random")
	}
	m.Random = append([]byte(nil), random...)
	m.HelloRetry = [32]byte(random) == helloRetryRandom
	if !readUint8Vec(&s, &sessionID) || len(sessionID) > 32 {
		return nil, malformed(name, "legacy_session_id")
	}
	if !s.ReadUint16(&suite) {
		return nil, malformed(name, "cipher_suite")
	}
	m.CipherSuite = CipherSuite(suite)
	if !s.ReadUint8(&compression) {
		return nil, malformed(name, "legacy_compression_method")
	}
	if s.Empty() {
		return m, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed(name, "extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed(name, "extensions")
		}
		if len(m.Extensions) < maxListItems {
			m.Extensions = append(m.Extensions, typ)
		}
		switch typ {
		case extSupportedVersions:
			if !data.ReadUint16(&v) || !data.Empty() {
				return nil, malformed(name, "supported_versions")
			}
			m.Version = Version(v)
		case extALPN:
			protos, err := readALPN(data)
			if err != nil || len(protos) != 1 {
				return nil, malformed(name, "application_layer_protocol_negotiation")
			}
			m.ALPN = protos[0]
		}
	}
	return m, nil
}

// CertificateMsg is a Certificate message: the sender's chain, leaf first, as DER.
// An empty Chain is the wire evidence of "no certificate sent" (RFC 5246 7.4.6).
type CertificateMsg struct {
	Context []byte   `json:"context,omitempty"` // TLS 1.3 certificate_request_context
	Chain   [][]byte `json:"chain"`
}

// parseCertificate decodes a Certificate body; tls13 selects the RFC 8446 4.4.2
// layout (request context and per-entry extensions).
func parseCertificate(body []byte, tls13 bool) (*CertificateMsg, error) {
	const name = "Certificate"
	s := cryptobyte.String(body)
	m := &CertificateMsg{Chain: [][]byte{}}
	if tls13 {
		var ctx []byte
		if !readUint8Vec(&s, &ctx) {
			return nil, malformed(name, "certificate_request_context")
		}
		if len(ctx) > 0 {
			m.Context = append([]byte(nil), ctx...)
		}
	}
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, malformed(name, "certificate_list")
	}
	// One copy of the whole list; the chain entries are slices of it.
	list = append(cryptobyte.String(nil), list...)
	for !list.Empty() {
		var cert cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&cert) || len(cert) == 0 {
			return nil, malformed(name, "certificate_list entry")
		}
		if tls13 {
			var exts cryptobyte.String
			if !list.ReadUint16LengthPrefixed(&exts) {
				return nil, malformed(name, "certificate entry extensions")
			}
		}
		m.Chain = append(m.Chain, cert)
	}
	return m, nil
}

// CertificateRequest is a server's request for a client certificate, in either
// form; Issuers is the certificate_authorities list, the heart of the diagnosis.
type CertificateRequest struct {
	TLS13            bool              `json:"tls13,omitempty"`
	Context          []byte            `json:"context,omitempty"`
	CertTypes        []CertificateType `json:"cert_types,omitempty"`
	SignatureSchemes []SignatureScheme `json:"signature_schemes,omitempty"`
	// IssuerBytes is the certificate_authorities vector length as on the wire:
	// the sum of 2+len(DN), Wireshark's tls.handshake.dnames_len.
	IssuerBytes int `json:"issuer_bytes"`
	// Issuers are the DNs in wire order; a parsed request shares them with
	// every request that carried the same list (IssuerList): read only.
	Issuers []DN `json:"issuers"`
	// HasAuthorities tells a TLS 1.3 request without the extension apart from one with an empty list.
	HasAuthorities bool `json:"has_authorities"`
	// Length is the message body length; Records how many records carried it.
	Length  int `json:"length"`
	Records int `json:"records"`

	// list is Issuers parsed, from the issuerCache; nil when the request
	// was built by hand (IssuerList then looks it up).
	list *IssuerList
}

// ParseCertificateRequest decodes a CertificateRequest body. withSigAlgs is false
// for TLS 1.0/1.1, whose requests lack supported_signature_algorithms.
func ParseCertificateRequest(body []byte, tls13, withSigAlgs bool) (*CertificateRequest, error) {
	if tls13 {
		return parseCertificateRequest13(body)
	}
	const name = "CertificateRequest"
	s := cryptobyte.String(body)
	m := &CertificateRequest{Length: len(body), Issuers: []DN{}, HasAuthorities: true}
	var types []byte
	if !readUint8Vec(&s, &types) || len(types) == 0 {
		return nil, malformed(name, "certificate_types")
	}
	for _, t := range types {
		m.CertTypes = append(m.CertTypes, CertificateType(t))
	}
	if withSigAlgs {
		schemes, ok := readSchemes(&s)
		if !ok {
			return nil, malformed(name, "supported_signature_algorithms")
		}
		m.SignatureSchemes = schemes
	}
	var cas cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&cas) {
		return nil, malformed(name, "certificate_authorities")
	}
	m.IssuerBytes = len(cas)
	err := m.readIssuers(cas)
	if err == nil && !s.Empty() {
		err = malformed(name, "trailing data")
	}
	// A broken list still returns what was read: the count and bytes are
	// evidence even when the tail is garbage.
	return m, err
}

func parseCertificateRequest13(body []byte) (*CertificateRequest, error) {
	const name = "CertificateRequest"
	s := cryptobyte.String(body)
	m := &CertificateRequest{TLS13: true, Length: len(body), Issuers: []DN{}}
	var ctx []byte
	if !readUint8Vec(&s, &ctx) {
		return nil, malformed(name, "certificate_request_context")
	}
	if len(ctx) > 0 {
		m.Context = append([]byte(nil), ctx...)
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed(name, "extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed(name, "extensions")
		}
		switch typ {
		case extSignatureAlgorithms:
			schemes, ok := readSchemes(&data)
			if !ok {
				return nil, malformed(name, "signature_algorithms")
			}
			m.SignatureSchemes = schemes
		case extCertificateAuthorities:
			var cas cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&cas) {
				return nil, malformed(name, "certificate_authorities")
			}
			m.HasAuthorities = true
			m.IssuerBytes = len(cas)
			if err := m.readIssuers(cas); err != nil {
				return m, err
			}
		}
	}
	return m, nil
}

// readIssuers reads a certificate_authorities vector through the
// process's issuerCache: a list seen before costs a hash of its bytes.
func (m *CertificateRequest) readIssuers(cas cryptobyte.String) error {
	l, _ := defaultIssuers.Lookup(cas)
	if len(m.Issuers) > 0 {
		// A second certificate_authorities extension (TLS 1.3, malformed):
		// its DNs follow the first's, as they always did.
		before := len(m.Issuers)
		m.Issuers, m.list = append(m.Issuers[:before:before], l.dns...), nil
		return l.err(before)
	}
	m.Issuers, m.list = l.dns, l
	return l.err(0)
}

// Alert is one alert record entry. Level 0 and Encrypted mean it was protected
// and only its presence is known.
type Alert struct {
	From        Direction        `json:"from"`
	Level       AlertLevel       `json:"level"`
	Description AlertDescription `json:"description"`
	Encrypted   bool             `json:"encrypted,omitempty"`
}

// DescriptionName is the description's name, or "encrypted" when it could not
// be read: an encrypted alert must not claim close_notify, the zero value.
func (a Alert) DescriptionName() string {
	if a.Encrypted {
		return "encrypted"
	}
	return a.Description.String()
}

// MarshalJSON writes the alert as the handshake event shows it.
func (a Alert) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		From        Direction  `json:"from"`
		Level       AlertLevel `json:"level"`
		Description string     `json:"description"`
	}{a.From, a.Level, a.DescriptionName()})
}

// Fatal reports whether the alert ends the connection. An encrypted alert during
// a handshake is treated as ending it: its level cannot be read.
func (a Alert) Fatal() bool { return a.Encrypted || a.Level == AlertFatal }
