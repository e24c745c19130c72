package event

import (
	"net"
	"strconv"
	"strings"
)

// Dialect is a naming scheme other pipelines already know the events'
// facts by: OpenTelemetry's semantic conventions (the OTLP exporter) or the
// Elastic Common Schema (--log-format ecs). Facts with no name in either
// are certlens.* with the DESIGN.md field's own name.
type Dialect int

const (
	OTel Dialect = iota
	ECS
)

// FieldName is one row of the table in README ("Field names in OTLP and
// ECS"): a DESIGN.md field and the attribute names it is written under.
// Some fields are written under more than one name (an address is a host
// and a port); a cell lists them in the order they are written.
type FieldName struct {
	Field     string
	OTel, ECS []string
}

// FieldNames is every event field, DESIGN.md's name first. The leaf of a
// client certificate chain is also written under the conventions' names for
// the client certificate (tls.client.*), as dashboards look for it there.
var FieldNames = []FieldName{
	{"conn_id", n("certlens.conn_id"), n("certlens.conn_id")},
	{"mode", n("certlens.mode"), n("certlens.mode")},
	{"client_addr", n("client.address", "client.port"), n("client.address", "client.ip", "client.port")},
	{"target", n("server.address", "server.port"), n("server.address", "server.ip", "server.port")},
	{"community_id", n("network.community_id"), n("network.community_id")},
	{"sni", n("tls.client.server_name"), n("tls.client.server_name")},
	{"app_protocol", n("certlens.app_protocol"), n("certlens.app_protocol")},
	{"handshake", n("certlens.handshake"), n("certlens.handshake")},
	{"phase", n("certlens.phase"), n("certlens.phase")},
	{"tls_version", n("tls.protocol.name", "tls.protocol.version"), n("tls.version_protocol", "tls.version")},
	{"cipher_suite", n("tls.cipher"), n("tls.cipher")},
	{"alpn", n("tls.next_protocol"), n("tls.next_protocol")},
	{"visibility", n("certlens.visibility"), n("certlens.visibility")},
	{"end", n("certlens.end"), n("certlens.end")},
	{"client_hello.post_handshake_auth", n("certlens.client_hello.post_handshake_auth"), n("certlens.client_hello.post_handshake_auth")},
	{"client_hello.alpn", n("certlens.client_hello.alpn"), n("certlens.client_hello.alpn")},
	{"cert_request.phase", n("certlens.cert_request.phase"), n("certlens.cert_request.phase")},
	{"cert_request.issuer_count", n("certlens.cert_request.issuer_count"), n("certlens.cert_request.issuer_count")},
	{"cert_request.issuer_bytes", n("certlens.cert_request.issuer_bytes"), n("certlens.cert_request.issuer_bytes")},
	{"cert_request.issuers", n("certlens.cert_request.issuers"), n("certlens.cert_request.issuers")},
	{"cert_request.cert_types", n("certlens.cert_request.cert_types"), n("certlens.cert_request.cert_types")},
	{"cert_request.signature_schemes", n("certlens.cert_request.signature_schemes"), n("certlens.cert_request.signature_schemes")},
	{"cert_request.records", n("certlens.cert_request.records"), n("certlens.cert_request.records")},
	{"client_cert.sent", n("certlens.client_cert.sent"), n("certlens.client_cert.sent")},
	{"client_cert.chain", n("certlens.client_cert.chain"), n("certlens.client_cert.chain")},
	{"client_cert.chain[0].subject", n("tls.client.subject"), n("tls.client.subject")},
	{"client_cert.chain[0].issuer", n("tls.client.issuer"), n("tls.client.issuer")},
	{"client_cert.chain[0].serial", n("certlens.client_cert.serial"), n("tls.client.x509.serial_number")},
	{"client_cert.chain[0].not_before", n("tls.client.not_before"), n("tls.client.not_before")},
	{"client_cert.chain[0].not_after", n("tls.client.not_after"), n("tls.client.not_after")},
	{"client_cert.chain[0].public_key", n("certlens.client_cert.public_key"), n("tls.client.x509.public_key_algorithm")},
	{"client_cert.chain[0].sha256", n("tls.client.hash.sha256"), n("tls.client.hash.sha256")},
	{"inferred.cert_requested", n("certlens.inferred.cert_requested"), n("certlens.inferred.cert_requested")},
	{"inferred.cert_sent", n("certlens.inferred.cert_sent"), n("certlens.inferred.cert_sent")},
	{"inferred.cert_request_bytes", n("certlens.inferred.cert_request_bytes"), n("certlens.inferred.cert_request_bytes")},
	{"inferred.cert_request_min", n("certlens.inferred.cert_request_min"), n("certlens.inferred.cert_request_min")},
	{"inferred.cert_request_records", n("certlens.inferred.cert_request_records"), n("certlens.inferred.cert_request_records")},
	{"inferred.server_alert", n("certlens.inferred.server_alert"), n("certlens.inferred.server_alert")},
	{"inferred.resumed", n("certlens.inferred.resumed"), n("certlens.inferred.resumed")},
	{"inferred.evidence", n("certlens.inferred.evidence"), n("certlens.inferred.evidence")},
	{"alerts", n("certlens.alerts"), n("certlens.alerts")},
	{"findings", n("certlens.findings"), n("certlens.findings")},
	{"verdict", n("certlens.verdict"), n("certlens.verdict")},
	{"verdict_certain", n("certlens.verdict_certain"), n("certlens.verdict_certain")},
	{"errors", n("certlens.errors"), n("certlens.errors")},
	{"http_status", n("http.response.status_code"), n("http.response.status_code")},
	{"http_substatus", n("certlens.http_substatus"), n("certlens.http_substatus")},
	{"pcap.stream", n("certlens.pcap.stream"), n("certlens.pcap.stream")},
	{"pcap.frames.cert_request", n("certlens.pcap.frames.cert_request"), n("certlens.pcap.frames.cert_request")},
	{"pcap.frames.client_cert", n("certlens.pcap.frames.client_cert"), n("certlens.pcap.frames.client_cert")},
	{"intercept.client_cert_source", n("certlens.intercept.client_cert_source"), n("certlens.intercept.client_cert_source")},
	{"intercept.browser_asked", n("certlens.intercept.browser_asked"), n("certlens.intercept.browser_asked")},
	{"intercept.browser_issuer_count", n("certlens.intercept.browser_issuer_count"), n("certlens.intercept.browser_issuer_count")},
	{"intercept.browser_cert.sent", n("certlens.intercept.browser_cert.sent"), n("certlens.intercept.browser_cert.sent")},
	{"intercept.browser_cert.chain", n("certlens.intercept.browser_cert.chain"), n("certlens.intercept.browser_cert.chain")},
	{"intercept.browser_post_handshake_auth", n("certlens.intercept.browser_post_handshake_auth"), n("certlens.intercept.browser_post_handshake_auth")},
	{"intercept.upstream_verified", n("certlens.intercept.upstream_verified"), n("certlens.intercept.upstream_verified")},
	{"intercept.upstream_verify_error", n("certlens.intercept.upstream_verify_error"), n("certlens.intercept.upstream_verify_error")},
	{"intercept.insecure_upstream", n("certlens.intercept.insecure_upstream"), n("certlens.intercept.insecure_upstream")},
	{"bytes_client_to_server", n("certlens.bytes_client_to_server"), n("client.bytes")},
	{"bytes_server_to_client", n("certlens.bytes_server_to_client"), n("server.bytes")},
	{"duration_ms", n("certlens.duration_ms"), n("event.duration")},
	{"reason", n("certlens.reason"), n("event.reason")},
	{"handshakes", n("certlens.handshakes"), n("certlens.handshakes")},
	{"not_tls", n("certlens.not_tls"), n("certlens.not_tls")},
}

func n(names ...string) []string { return names }

// names indexes FieldNames by dialect and field.
var names = func() [2]map[string][]string {
	var m [2]map[string][]string
	m[OTel], m[ECS] = map[string][]string{}, map[string][]string{}
	for _, f := range FieldNames {
		m[OTel][f.Field], m[ECS][f.Field] = f.OTel, f.ECS
	}
	return m
}()

// Attrs receives an event's facts under a dialect's names: the OTLP log
// record's attributes, or the ECS document.
type Attrs interface {
	Str(key, v string)
	Int(key string, v int64)
	Float(key string, v float64)
	Bool(key string, v bool)
	Strs(key string, v []string)
	// Objects is a list of objects whose keys are DESIGN.md's own (a
	// finding's id, severity, ...): each calls its function with a fresh
	// Attrs for one object.
	Objects(key string, each []func(Attrs))
}

// namer writes one dialect's names; it panics on a field missing from
// FieldNames, which TestEveryFieldHasNames catches.
type namer struct {
	a Attrs
	m map[string][]string
}

func (w namer) name(field string) string {
	ns, ok := w.m[field]
	if !ok {
		panic("event: no OTLP/ECS name for " + field)
	}
	return ns[0]
}

func (w namer) str(field, v string) {
	if v != "" {
		w.a.Str(w.name(field), v)
	}
}

func (w namer) strs(field string, v []string) {
	if len(v) > 0 {
		w.a.Strs(w.name(field), v)
	}
}

func (w namer) int(field string, v int64) { w.a.Int(w.name(field), v) }

func (w namer) nonZero(field string, v int64) {
	if v != 0 {
		w.int(field, v)
	}
}

func (w namer) bool(field string, v bool) { w.a.Bool(w.name(field), v) }

func (w namer) trueOnly(field string, v bool) {
	if v {
		w.bool(field, true)
	}
}

// addr writes a host:port under the field's names: host, (ECS: the IP when
// the host is one), port.
func (w namer) addr(d Dialect, field, hostport string) {
	if hostport == "" {
		return
	}
	ns := w.m[field]
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		w.a.Str(ns[0], hostport)
		return
	}
	w.a.Str(ns[0], host)
	if d == ECS {
		if ip := net.ParseIP(host); ip != nil {
			w.a.Str(ns[1], host)
		}
	}
	if p, err := strconv.Atoi(port); err == nil {
		w.a.Int(ns[len(ns)-1], int64(p))
	}
}

// tlsVersion writes "TLS 1.2" as the conventions split it: protocol name
// in lower case ("tls") and version ("1.2").
func (w namer) tlsVersion(v string) {
	if v == "" {
		return
	}
	ns := w.m["tls_version"]
	name, ver, ok := strings.Cut(v, " ")
	if !ok {
		w.a.Str(ns[1], v)
		return
	}
	w.a.Str(ns[0], strings.ToLower(name))
	w.a.Str(ns[1], ver)
}

func (w namer) meta(d Dialect, connID string, mode Mode, client, target, communityID, appProtocol string) {
	w.str("conn_id", connID)
	w.str("mode", string(mode))
	w.addr(d, "client_addr", client)
	w.addr(d, "target", target)
	w.str("community_id", communityID)
	w.str("app_protocol", appProtocol)
}

// Attributes writes the handshake event under d's names.
func (e *Handshake) Attributes(d Dialect, a Attrs) {
	w := namer{a: a, m: names[d]}
	w.meta(d, e.ConnID, e.Mode, e.ClientAddr, e.Target, e.CommunityID, e.AppProtocol)
	w.str("sni", e.SNI)
	w.int("handshake", int64(e.Index))
	w.str("phase", e.Phase)
	w.tlsVersion(e.TLSVersion)
	w.str("cipher_suite", e.CipherSuite)
	w.str("alpn", e.ALPN)
	w.str("visibility", e.Visibility)
	w.str("end", e.End)
	if ch := e.ClientHello; ch != nil {
		w.bool("client_hello.post_handshake_auth", ch.PostHandshakeAuth)
		w.strs("client_hello.alpn", ch.ALPN)
	}
	if cr := e.CertRequest; cr != nil {
		w.str("cert_request.phase", cr.Phase)
		w.int("cert_request.issuer_count", int64(cr.IssuerCount))
		w.int("cert_request.issuer_bytes", int64(cr.IssuerBytes))
		// An empty list is a fact (the server named no CA), not an absence.
		w.a.Strs(w.name("cert_request.issuers"), cr.Issuers)
		w.strs("cert_request.cert_types", cr.CertTypes)
		w.strs("cert_request.signature_schemes", cr.SignatureSchemes)
		w.int("cert_request.records", int64(cr.Records))
	}
	if cc := e.ClientCert; cc != nil {
		w.bool("client_cert.sent", cc.Sent)
		w.chain("client_cert.chain", cc.Chain)
		if len(cc.Chain) > 0 {
			leaf := cc.Chain[0]
			w.str("client_cert.chain[0].subject", leaf.Subject)
			w.str("client_cert.chain[0].issuer", leaf.Issuer)
			w.str("client_cert.chain[0].serial", leaf.Serial)
			w.str("client_cert.chain[0].not_before", leaf.NotBefore)
			w.str("client_cert.chain[0].not_after", leaf.NotAfter)
			w.str("client_cert.chain[0].public_key", leaf.PublicKey)
			// Both conventions write certificate hashes in upper case.
			w.str("client_cert.chain[0].sha256", strings.ToUpper(leaf.SHA256))
		}
	}
	if inf := e.Inferred; inf != nil {
		w.str("inferred.cert_requested", inf.CertRequested)
		w.str("inferred.cert_sent", inf.CertSent)
		w.nonZero("inferred.cert_request_bytes", int64(inf.CertRequestBytes))
		w.nonZero("inferred.cert_request_min", int64(inf.CertRequestMin))
		w.nonZero("inferred.cert_request_records", int64(inf.CertRequestRecords))
		w.trueOnly("inferred.server_alert", inf.ServerAlert)
		w.trueOnly("inferred.resumed", inf.Resumed)
		w.str("inferred.evidence", inf.Evidence)
	}
	if len(e.Alerts) > 0 {
		each := make([]func(Attrs), len(e.Alerts))
		for i := range e.Alerts {
			each[i] = func(a Attrs) { alertFields(&e.Alerts[i], a) }
		}
		a.Objects(w.name("alerts"), each)
	}
	each := make([]func(Attrs), len(e.Findings))
	for i := range e.Findings {
		each[i] = func(a Attrs) { findingFields(&e.Findings[i], a) }
	}
	a.Objects(w.name("findings"), each)
	w.str("verdict", e.Verdict)
	w.bool("verdict_certain", e.VerdictCertain)
	w.strs("errors", e.Errors)
	w.nonZero("http_status", int64(e.HTTPStatus))
	w.str("http_substatus", e.HTTPSubstatus)
	w.pcap(e.PCAP)
	if ic := e.Intercept; ic != nil {
		w.str("intercept.client_cert_source", ic.ClientCertSource)
		w.str("intercept.browser_asked", ic.BrowserAsked)
		w.nonZero("intercept.browser_issuer_count", int64(ic.BrowserIssuerCount))
		if bc := ic.BrowserCert; bc != nil {
			w.bool("intercept.browser_cert.sent", bc.Sent)
			w.chain("intercept.browser_cert.chain", bc.Chain)
		}
		w.trueOnly("intercept.browser_post_handshake_auth", ic.BrowserPHA)
		w.bool("intercept.upstream_verified", ic.UpstreamVerified)
		w.str("intercept.upstream_verify_error", ic.UpstreamVerifyError)
		w.trueOnly("intercept.insecure_upstream", ic.InsecureUpstream)
	}
}

// chain writes certificates as objects with DESIGN.md's keys.
func (w namer) chain(field string, chain []Cert) {
	if len(chain) == 0 {
		return
	}
	each := make([]func(Attrs), len(chain))
	for i := range chain {
		each[i] = func(a Attrs) { certFields(&chain[i], a) }
	}
	w.a.Objects(w.name(field), each)
}

func (w namer) pcap(p *PCAPRef) {
	if p == nil {
		return
	}
	w.int("pcap.stream", int64(p.Stream))
	if f := p.Frames; f != nil {
		w.nonZero("pcap.frames.cert_request", int64(f.CertRequest))
		w.nonZero("pcap.frames.client_cert", int64(f.ClientCert))
	}
}

// Attributes writes the connection closed event under d's names.
func (c *Closed) Attributes(d Dialect, a Attrs) {
	w := namer{a: a, m: names[d]}
	w.meta(d, c.ConnID, c.Mode, c.ClientAddr, c.Target, c.CommunityID, c.AppProtocol)
	w.int("bytes_client_to_server", c.BytesUp)
	w.int("bytes_server_to_client", c.BytesDown)
	if d == ECS {
		// ECS's event.duration is in nanoseconds.
		w.int("duration_ms", int64(c.DurationMS*1e6))
	} else {
		w.a.Float(w.name("duration_ms"), c.DurationMS)
	}
	w.str("reason", c.Reason)
	w.int("handshakes", int64(c.Handshakes))
	w.tlsVersion(c.TLSVersion)
	w.str("not_tls", c.NotTLS)
	w.strs("errors", c.Errors)
	w.str("verdict", c.Verdict)
	if c.VerdictCertain != nil {
		w.bool("verdict_certain", *c.VerdictCertain)
	}
	w.pcap(c.PCAP)
}

// Outcome is ECS's event.outcome of a verdict: the request succeeded,
// failed (a 403.x, 500.0 or failed handshake), or is not known.
func Outcome(verdict string) string {
	switch verdict {
	case "ok":
		return "success"
	case "", "unknown":
		return "unknown"
	}
	return "failure"
}
