package handshake

import (
	"crypto/tls"
	"fmt"
)

// The wire registries give numbers; logs and tests read names. Every type here
// marshals to its name so JSON output never shows a bare number for a known value.

// ContentType is a TLS record's content type (RFC 8446 5.1).
type ContentType uint8

const (
	ContentChangeCipherSpec ContentType = 20
	ContentAlert            ContentType = 21
	ContentHandshake        ContentType = 22
	ContentApplicationData  ContentType = 23
	ContentHeartbeat        ContentType = 24
)

func (c ContentType) String() string {
	switch c {
	case ContentChangeCipherSpec:
		return "change_cipher_spec"
	case ContentAlert:
		return "alert"
	case ContentHandshake:
		return "handshake"
	case ContentApplicationData:
		return "application_data"
	case ContentHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("content_type(%d)", uint8(c))
}

// messageType is a handshake message type (RFC 8446 4, RFC 5246 7.4).
type messageType uint8

const (
	typeHelloRequest        messageType = 0
	typeClientHello         messageType = 1
	typeServerHello         messageType = 2
	typeNewSessionTicket    messageType = 4
	typeEndOfEarlyData      messageType = 5
	typeEncryptedExtensions messageType = 8
	typeCertificate         messageType = 11
	typeServerKeyExchange   messageType = 12
	typeCertificateRequest  messageType = 13
	typeServerHelloDone     messageType = 14
	typeCertificateVerify   messageType = 15
	typeClientKeyExchange   messageType = 16
	typeFinished            messageType = 20
	typeCertificateStatus   messageType = 22
	typeKeyUpdate           messageType = 24
	typeCompressedCert      messageType = 25
)

var messageTypeNames = map[messageType]string{
	typeHelloRequest:        "hello_request",
	typeClientHello:         "client_hello",
	typeServerHello:         "server_hello",
	3:                       "hello_verify_request",
	typeNewSessionTicket:    "new_session_ticket",
	typeEndOfEarlyData:      "end_of_early_data",
	typeEncryptedExtensions: "encrypted_extensions",
	typeCertificate:         "certificate",
	typeServerKeyExchange:   "server_key_exchange",
	typeCertificateRequest:  "certificate_request",
	typeServerHelloDone:     "server_hello_done",
	typeCertificateVerify:   "certificate_verify",
	typeClientKeyExchange:   "client_key_exchange",
	typeFinished:            "finished",
	21:                      "certificate_url",
	typeCertificateStatus:   "certificate_status",
	typeKeyUpdate:           "key_update",
	typeCompressedCert:      "compressed_certificate",
	254:                     "message_hash",
}

func (t messageType) String() string {
	if n, ok := messageTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("handshake_type(%d)", uint8(t))
}

// Version is a protocol version as carried on the wire.
type Version uint16

const (
	VersionSSL30 Version = 0x0300
	VersionTLS10 Version = 0x0301
	VersionTLS11 Version = 0x0302
	VersionTLS12 Version = 0x0303
	VersionTLS13 Version = 0x0304
)

func (v Version) String() string {
	switch v {
	case 0:
		return ""
	case VersionSSL30:
		return "SSL 3.0"
	case VersionTLS10:
		return "TLS 1.0"
	case VersionTLS11:
		return "TLS 1.1"
	case VersionTLS12:
		return "TLS 1.2"
	case VersionTLS13:
		return "TLS 1.3"
	}
	if isGREASE(uint16(v)) {
		return "GREASE"
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// isGREASE reports the RFC 8701 reserved values (0x0a0a, 0x1a1a, ...), which
// clients sprinkle into lists to keep servers tolerant; they mean nothing.
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// CipherSuite is a cipher suite code point.
type CipherSuite uint16

func (c CipherSuite) String() string {
	if isGREASE(uint16(c)) {
		return "GREASE"
	}
	if name, ok := suiteNames[c]; ok {
		return name
	}
	return tls.CipherSuiteName(uint16(c))
}

// suiteNames is crypto/tls's names, looked up once: tls.CipherSuiteName
// builds both suite lists on every call, which showed in profiles (every
// event names its suite).
var suiteNames = func() map[CipherSuite]string {
	m := map[CipherSuite]string{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[CipherSuite(s.ID)] = s.Name
	}
	return m
}()

func (c CipherSuite) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// SignatureScheme is a TLS 1.3 SignatureScheme, or a TLS 1.2
// SignatureAndHashAlgorithm pair read as one 16-bit value (RFC 8446 4.2.3).
type SignatureScheme uint16

var signatureSchemeNames = map[SignatureScheme]string{
	0x0201: "rsa_pkcs1_sha1",
	0x0202: "dsa_sha1",
	0x0203: "ecdsa_sha1",
	0x0301: "rsa_pkcs1_sha224",
	0x0302: "dsa_sha224",
	0x0303: "ecdsa_sha224",
	0x0401: "rsa_pkcs1_sha256",
	0x0402: "dsa_sha256",
	0x0403: "ecdsa_secp256r1_sha256",
	0x0420: "rsa_pkcs1_sha256_legacy",
	0x0501: "rsa_pkcs1_sha384",
	0x0502: "dsa_sha384",
	0x0503: "ecdsa_secp384r1_sha384",
	0x0520: "rsa_pkcs1_sha384_legacy",
	0x0601: "rsa_pkcs1_sha512",
	0x0602: "dsa_sha512",
	0x0603: "ecdsa_secp521r1_sha512",
	0x0620: "rsa_pkcs1_sha512_legacy",
	0x0804: "rsa_pss_rsae_sha256",
	0x0805: "rsa_pss_rsae_sha384",
	0x0806: "rsa_pss_rsae_sha512",
	0x0807: "ed25519",
	0x0808: "ed448",
	0x0809: "rsa_pss_pss_sha256",
	0x080a: "rsa_pss_pss_sha384",
	0x080b: "rsa_pss_pss_sha512",
	0x081a: "ecdsa_brainpoolP256r1tls13_sha256",
	0x081b: "ecdsa_brainpoolP384r1tls13_sha384",
	0x081c: "ecdsa_brainpoolP512r1tls13_sha512",
	0x0904: "mldsa44",
	0x0905: "mldsa65",
	0x0906: "mldsa87",
}

func (s SignatureScheme) String() string {
	if n, ok := signatureSchemeNames[s]; ok {
		return n
	}
	if isGREASE(uint16(s)) {
		return "GREASE"
	}
	return fmt.Sprintf("0x%04x", uint16(s))
}

func (s SignatureScheme) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The signature schemes the rules match a key against (crypto/tls's names).
const (
	ECDSAWithP256AndSHA256 SignatureScheme = 0x0403
	ECDSAWithP384AndSHA384 SignatureScheme = 0x0503
	ECDSAWithP521AndSHA512 SignatureScheme = 0x0603
	PSSWithSHA256          SignatureScheme = 0x0804 // rsa_pss_rsae_sha256
	PSSWithSHA384          SignatureScheme = 0x0805
	PSSWithSHA512          SignatureScheme = 0x0806
	Ed25519                SignatureScheme = 0x0807
)

// SignatureAlgorithm12 is the signature half of a TLS 1.2
// SignatureAndHashAlgorithm, its low byte (RFC 5246 7.4.1.4.1): TLS 1.2
// pairs a hash with "ecdsa" for any curve, where TLS 1.3 binds the curve.
type SignatureAlgorithm12 uint8

const (
	SignatureRSA   SignatureAlgorithm12 = 1
	SignatureECDSA SignatureAlgorithm12 = 3
)

// Signature12 is s read as a TLS 1.2 SignatureAndHashAlgorithm: its
// signature algorithm.
func (s SignatureScheme) Signature12() SignatureAlgorithm12 { return SignatureAlgorithm12(s & 0xff) }

// CertificateType is a TLS 1.2 ClientCertificateType (RFC 5246 7.4.4, RFC 8422 5.5).
type CertificateType uint8

var certificateTypeNames = map[CertificateType]string{
	1:  "rsa_sign",
	2:  "dss_sign",
	3:  "rsa_fixed_dh",
	4:  "dss_fixed_dh",
	5:  "rsa_ephemeral_dh",
	6:  "dss_ephemeral_dh",
	20: "fortezza_dms",
	64: "ecdsa_sign",
	65: "rsa_fixed_ecdh",
	66: "ecdsa_fixed_ecdh",
	67: "gost_sign256",
	68: "gost_sign512",
}

func (c CertificateType) String() string {
	if n, ok := certificateTypeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("certificate_type(%d)", uint8(c))
}

func (c CertificateType) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// The certificate types a client's key is matched against.
const (
	CertTypeRSASign   CertificateType = 1
	CertTypeECDSASign CertificateType = 64 // ECDSA and, by RFC 8422, EdDSA keys
)

// AlertLevel is an alert's level; Encrypted alerts have none that can be read.
type AlertLevel uint8

const (
	AlertWarning AlertLevel = 1
	AlertFatal   AlertLevel = 2
)

func (l AlertLevel) String() string {
	switch l {
	case 0:
		return "encrypted"
	case AlertWarning:
		return "warning"
	case AlertFatal:
		return "fatal"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

func (l AlertLevel) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// AlertDescription is an alert's description (RFC 8446 6, RFC 5246 7.2).
type AlertDescription uint8

const (
	AlertCloseNotify            AlertDescription = 0
	AlertHandshakeFailure       AlertDescription = 40
	AlertBadCertificate         AlertDescription = 42
	AlertUnsupportedCertificate AlertDescription = 43
	AlertCertificateRevoked     AlertDescription = 44
	AlertCertificateExpired     AlertDescription = 45
	AlertCertificateUnknown     AlertDescription = 46
	AlertUnknownCA              AlertDescription = 48
	AlertAccessDenied           AlertDescription = 49
	AlertDecryptError           AlertDescription = 51
	AlertNoRenegotiation        AlertDescription = 100
	AlertCertificateRequired    AlertDescription = 116
)

var alertNames = map[AlertDescription]string{
	0:   "close_notify",
	10:  "unexpected_message",
	20:  "bad_record_mac",
	21:  "decryption_failed",
	22:  "record_overflow",
	30:  "decompression_failure",
	40:  "handshake_failure",
	41:  "no_certificate",
	42:  "bad_certificate",
	43:  "unsupported_certificate",
	44:  "certificate_revoked",
	45:  "certificate_expired",
	46:  "certificate_unknown",
	47:  "illegal_parameter",
	48:  "unknown_ca",
	49:  "access_denied",
	50:  "decode_error",
	51:  "decrypt_error",
	60:  "export_restriction",
	70:  "protocol_version",
	71:  "insufficient_security",
	80:  "internal_error",
	86:  "inappropriate_fallback",
	90:  "user_canceled",
	100: "no_renegotiation",
	109: "missing_extension",
	110: "unsupported_extension",
	111: "certificate_unobtainable",
	112: "unrecognized_name",
	113: "bad_certificate_status_response",
	114: "bad_certificate_hash_value",
	115: "unknown_psk_identity",
	116: "certificate_required",
	120: "no_application_protocol",
	121: "ech_required",
}

func (d AlertDescription) String() string {
	if n, ok := alertNames[d]; ok {
		return n
	}
	return fmt.Sprintf("alert(%d)", uint8(d))
}

func (d AlertDescription) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Direction says which peer sent a byte stream.
type Direction uint8

const (
	FromClient Direction = iota
	FromServer
)

func (d Direction) String() string {
	if d == FromClient {
		return "client"
	}
	return "server"
}

func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
