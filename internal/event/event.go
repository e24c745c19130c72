// Package event builds the handshake and connection events of DESIGN.md from
// the parser's and the rules' output. Every mode writes these same types, to
// zap (ObjectMarshaler) or as JSON (analyze --json); a test keeps the two
// encodings identical.
package event

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/rules"
)

// Mode is the mode that saw a connection: the events' "mode" field.
type Mode string

// The modes; serve's (observe, intercept, sidecar) are config's mode key.
const (
	ModeObserve   Mode = "observe"
	ModeIntercept Mode = "intercept"
	ModeSidecar   Mode = "sidecar"
	ModeProbe     Mode = "probe"
	ModeAnalyze   Mode = "analyze"
)

// Meta says who and where, from the mode that saw the connection.
type Meta struct {
	ConnID     string
	Mode       Mode
	ClientAddr string
	Target     string
	// AppProtocol names what the TLS was carried in or behind, when not
	// plain TLS from the first byte: "smtp-starttls", "postgresql",
	// "socks5", "proxy-v2" (analyze, which sees the whole connection).
	AppProtocol string
	// CommunityID is the Community ID v1 of the TCP flow a network sensor
	// sees carry this TLS (internal/communityid): the client's connection
	// to a sidecar; certlens's connection to the server in observe and
	// intercept mode; the probe's own; the capture's in analyze. "" when
	// there was no such flow (a dial that failed).
	CommunityID string
}

// Handshake is the "msg":"handshake" event.
type Handshake struct {
	ConnID         string          `json:"conn_id"`
	Mode           Mode            `json:"mode"`
	ClientAddr     string          `json:"client_addr,omitempty"`
	Target         string          `json:"target,omitempty"`
	CommunityID    string          `json:"community_id,omitempty"`
	SNI            string          `json:"sni,omitempty"`
	AppProtocol    string          `json:"app_protocol,omitempty"`
	Index          int             `json:"handshake"`
	Phase          string          `json:"phase"`
	TLSVersion     string          `json:"tls_version,omitempty"`
	CipherSuite    string          `json:"cipher_suite,omitempty"`
	ALPN           string          `json:"alpn,omitempty"`
	Visibility     string          `json:"visibility"`
	End            string          `json:"end"`
	ClientHello    *ClientHello    `json:"client_hello,omitempty"`
	CertRequest    *CertRequest    `json:"cert_request,omitempty"`
	ClientCert     *ClientCert     `json:"client_cert,omitempty"`
	Inferred       *Inferred       `json:"inferred,omitempty"`
	Alerts         []Alert         `json:"alerts,omitempty"`
	Findings       []rules.Finding `json:"findings"`
	Verdict        string          `json:"verdict"`
	VerdictCertain bool            `json:"verdict_certain"`
	// pending is the verdict the connection comes to if no later handshake
	// on it answers (rules.Report.Pending); not written.
	pending rules.Verdict
	Errors  []string `json:"errors,omitempty"`
	// HTTPStatus and HTTPSubstatus answer the request the connection
	// carried after this handshake (probe, intercept); IIS's substatus as
	// its error page names it ("403.7").
	HTTPStatus    int    `json:"http_status,omitempty"`
	HTTPSubstatus string `json:"http_substatus,omitempty"`
	// PCAP says where analyze found the handshake in the capture file.
	PCAP *PCAPRef `json:"pcap,omitempty"`
	// Intercept is what intercept mode did on its two sides of the handshake.
	Intercept *Intercept `json:"intercept,omitempty"`
}

// Intercept says, for a handshake of certlens's own upstream connection,
// where the client certificate it presented came from, what the browser
// chose when asked with the same issuer list, and whether the server's
// certificate was trusted.
type Intercept struct {
	// ClientCertSource names the intercept.client_certs entry presented, or
	// says that none is configured for the host (and so none was sent).
	ClientCertSource string `json:"client_cert_source,omitempty"`
	// BrowserAsked: "mirrored" when the browser was asked for a certificate
	// with the issuer list learned from this host, "not_asked" when no
	// connection had learned one when the browser connected (the first
	// connection to a host, or a host that never asks).
	BrowserAsked string `json:"browser_asked"`
	// BrowserIssuerCount is the size of the list the browser was asked with.
	BrowserIssuerCount int `json:"browser_issuer_count,omitempty"`
	// BrowserCert is the browser's own choice for that list: the
	// certificate it would send to the real server.
	BrowserCert *ClientCert `json:"browser_cert,omitempty"`
	// BrowserPHA: the browser's ClientHello offered post_handshake_auth,
	// which certlens's own upstream client cannot (client_hello shows that
	// one).
	BrowserPHA bool `json:"browser_post_handshake_auth,omitempty"`
	// UpstreamVerified: the server's certificate chained to the system roots
	// or intercept.upstream_roots and named the host.
	UpstreamVerified    bool   `json:"upstream_verified"`
	UpstreamVerifyError string `json:"upstream_verify_error,omitempty"`
	// InsecureUpstream: intercept.insecure_upstream let an untrusted server through.
	InsecureUpstream bool `json:"insecure_upstream,omitempty"`
}

// NewClientCert describes a Certificate message's chain (leaf first) as the
// event shows it.
func NewClientCert(chain [][]byte) *ClientCert {
	c := &ClientCert{Sent: len(chain) > 0}
	for _, der := range chain {
		c.Chain = append(c.Chain, describe(der))
	}
	return c
}

// ClientHello carries the ClientHello facts the rules read.
type ClientHello struct {
	PostHandshakeAuth bool     `json:"post_handshake_auth"`
	ALPN              []string `json:"alpn,omitempty"`
}

// CertRequest is the server's CertificateRequest as the event shows it.
type CertRequest struct {
	Phase            string   `json:"phase"`
	IssuerCount      int      `json:"issuer_count"`
	IssuerBytes      int      `json:"issuer_bytes"`
	Issuers          []string `json:"issuers"`
	CertTypes        []string `json:"cert_types,omitempty"`
	SignatureSchemes []string `json:"signature_schemes,omitempty"`
	Records          int      `json:"records"`

	// list is where Issuers came from: its JSON is encoded once (issuers.go).
	list *handshake.IssuerList
}

// Inferred is what a handshake seen without keys (TLS 1.3, a TLS 1.2
// renegotiation, TLS 1.3 post-handshake authentication) did, read from its
// record sizes (visibility inferred): never certain, with what was read.
type Inferred struct {
	CertRequested string `json:"cert_requested"`
	CertSent      string `json:"cert_sent"`
	// CertRequestBytes bounds the issuer list: the CertificateRequest's size.
	CertRequestBytes int `json:"cert_request_bytes,omitempty"`
	// CertRequestMin is the smallest size the records allow (below
	// CertRequestBytes under CBC's padding; equal otherwise), and
	// CertRequestRecords how many records carried it.
	CertRequestMin     int    `json:"cert_request_min,omitempty"`
	CertRequestRecords int    `json:"cert_request_records,omitempty"`
	ServerAlert        bool   `json:"server_alert,omitempty"`
	Resumed            bool   `json:"resumed,omitempty"`
	Evidence           string `json:"evidence"`
}

// ClientCert is the client's Certificate message.
type ClientCert struct {
	Sent  bool   `json:"sent"`
	Chain []Cert `json:"chain,omitempty"`
}

// Cert describes one certificate of a chain.
type Cert struct {
	Subject     string   `json:"subject"`
	Issuer      string   `json:"issuer"`
	Serial      string   `json:"serial"`
	NotBefore   string   `json:"not_before"`
	NotAfter    string   `json:"not_after"`
	KeyUsage    []string `json:"key_usage,omitempty"`
	ExtKeyUsage []string `json:"ext_key_usage,omitempty"`
	PublicKey   string   `json:"public_key"`
	SHA256      string   `json:"sha256"`
}

// Alert is one alert as shown.
type Alert struct {
	From        string `json:"from"`
	Level       string `json:"level"`
	Description string `json:"description"`
}

// Level is the log level DESIGN.md gives a verdict.
func (e *Handshake) Level() string {
	switch rules.Verdict(e.Verdict) {
	case rules.VerdictOK, rules.VerdictUnknown:
		return "info"
	case rules.VerdictHandshakeFailed:
		return "error"
	}
	if e.VerdictCertain {
		return "error"
	}
	return "warn"
}

// NewHandshake builds the event for one handshake and its diagnosis.
func NewHandshake(m Meta, h *handshake.Handshake, r rules.Report) *Handshake {
	e := &Handshake{
		ConnID: m.ConnID, Mode: m.Mode, ClientAddr: m.ClientAddr, Target: m.Target, CommunityID: m.CommunityID, AppProtocol: m.AppProtocol,
		Index: h.Index, Phase: string(h.Phase), Visibility: string(h.Visibility), End: string(h.End),
		TLSVersion: h.Version.String(), Findings: r.Findings, Verdict: string(r.Verdict), VerdictCertain: r.Certain,
		Errors: h.Errors.Strings(),
	}
	if ch := h.ClientHello; ch != nil {
		e.SNI = ch.ServerName
		e.ClientHello = &ClientHello{PostHandshakeAuth: ch.PostHandshakeAuth, ALPN: ch.ALPN}
	}
	if sh := h.ServerHello; sh != nil && !sh.HelloRetry {
		e.CipherSuite = sh.CipherSuite.String()
	}
	// The handshake's ALPN is its ServerHello's, or for a renegotiation
	// (whose ServerHello is encrypted) the connection's.
	e.ALPN = h.ALPN
	if cr := h.CertRequest; cr != nil {
		// The names are the list's own, shared with every event of the
		// same list: rendered once per list, not per handshake.
		l := cr.IssuerList()
		c := &CertRequest{Phase: string(h.Phase), IssuerCount: len(cr.Issuers), IssuerBytes: cr.IssuerBytes,
			Issuers: l.Names(), Records: cr.Records, list: l}
		for _, t := range cr.CertTypes {
			c.CertTypes = append(c.CertTypes, t.String())
		}
		for _, s := range cr.SignatureSchemes {
			c.SignatureSchemes = append(c.SignatureSchemes, s.String())
		}
		e.CertRequest = c
	}
	if cc := h.ClientCertificate; cc != nil {
		e.ClientCert = NewClientCert(cc.Chain)
	}
	if inf := h.Inferred; inf != nil {
		e.Inferred = &Inferred{CertRequested: inf.CertRequested.String(), CertSent: inf.CertSent.String(),
			CertRequestBytes: inf.CertRequestLen, CertRequestMin: inf.CertRequestMin, CertRequestRecords: inf.CertRequestRecords,
			ServerAlert: inf.ServerAlert, Resumed: inf.Resumed, Evidence: inf.Evidence}
	}
	for _, a := range h.Alerts {
		e.Alerts = append(e.Alerts, Alert{From: a.From.String(), Level: a.Level.String(), Description: a.DescriptionName()})
	}
	return e
}

// DescribeCert describes a certificate as the events' chains do.
func DescribeCert(der []byte) Cert { return describe(der) }

func describe(der []byte) Cert {
	sum := sha256.Sum256(der)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{Subject: "<unparsable certificate: " + err.Error() + ">", SHA256: hex.EncodeToString(sum[:])}
	}
	return Cert{
		Subject:     c.Subject.String(),
		Issuer:      c.Issuer.String(),
		Serial:      c.SerialNumber.Text(16),
		NotBefore:   c.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:    c.NotAfter.UTC().Format(time.RFC3339),
		KeyUsage:    rules.KeyUsageNames(c.KeyUsage),
		ExtKeyUsage: rules.ExtKeyUsageNames(c),
		PublicKey:   publicKey(c),
		SHA256:      hex.EncodeToString(sum[:]),
	}
}

func publicKey(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

// Closed is the "msg":"connection closed" event.
type Closed struct {
	ConnID      string `json:"conn_id"`
	Mode        Mode   `json:"mode"`
	ClientAddr  string `json:"client_addr,omitempty"`
	Target      string `json:"target,omitempty"`
	CommunityID string `json:"community_id,omitempty"`
	// AppProtocol is the handshakes' app_protocol, or for a connection that
	// never came to TLS what it was ("smtp": no STARTTLS).
	AppProtocol string   `json:"app_protocol,omitempty"`
	BytesUp     int64    `json:"bytes_client_to_server"`
	BytesDown   int64    `json:"bytes_server_to_client"`
	DurationMS  float64  `json:"duration_ms"`
	Reason      string   `json:"reason"`
	Handshakes  int      `json:"handshakes"`
	TLSVersion  string   `json:"tls_version,omitempty"`
	NotTLS      string   `json:"not_tls,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	// Verdict and VerdictCertain are what the connection's request(s) came
	// to, from all its handshakes (rules.Connection); absent without one.
	Verdict        string `json:"verdict,omitempty"`
	VerdictCertain *bool  `json:"verdict_certain,omitempty"`
	// PCAP says which capture connection this was (analyze); no frames.
	PCAP *PCAPRef `json:"pcap,omitempty"`
}
