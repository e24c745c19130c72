package event

import (
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/rules"
)

type rulesFinding = rules.Finding

// The zap encodings below must write exactly what encoding/json writes for
// the same struct (tags, omitempty): TestZapMatchesJSON holds them together.

func (e *Handshake) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("conn_id", e.ConnID)
	enc.AddString("mode", string(e.Mode))
	addNonEmpty(enc, "client_addr", e.ClientAddr)
	addNonEmpty(enc, "target", e.Target)
	addNonEmpty(enc, "community_id", e.CommunityID)
	addNonEmpty(enc, "sni", e.SNI)
	addNonEmpty(enc, "app_protocol", e.AppProtocol)
	enc.AddInt("handshake", e.Index)
	enc.AddString("phase", e.Phase)
	addNonEmpty(enc, "tls_version", e.TLSVersion)
	addNonEmpty(enc, "cipher_suite", e.CipherSuite)
	addNonEmpty(enc, "alpn", e.ALPN)
	enc.AddString("visibility", e.Visibility)
	enc.AddString("end", e.End)
	if e.ClientHello != nil {
		if err := enc.AddObject("client_hello", e.ClientHello); err != nil {
			return err
		}
	}
	if e.CertRequest != nil {
		if err := enc.AddObject("cert_request", e.CertRequest); err != nil {
			return err
		}
	}
	if e.ClientCert != nil {
		if err := enc.AddObject("client_cert", e.ClientCert); err != nil {
			return err
		}
	}
	if e.Inferred != nil {
		if err := enc.AddObject("inferred", e.Inferred); err != nil {
			return err
		}
	}
	if len(e.Alerts) > 0 {
		if err := enc.AddArray("alerts", objects[Alert](e.Alerts)); err != nil {
			return err
		}
	}
	if err := enc.AddArray("findings", findings(e.Findings)); err != nil {
		return err
	}
	enc.AddString("verdict", e.Verdict)
	enc.AddBool("verdict_certain", e.VerdictCertain)
	if len(e.Errors) > 0 {
		if err := enc.AddArray("errors", strs(e.Errors)); err != nil {
			return err
		}
	}
	if e.HTTPStatus != 0 {
		enc.AddInt("http_status", e.HTTPStatus)
	}
	addNonEmpty(enc, "http_substatus", e.HTTPSubstatus)
	if e.PCAP != nil {
		if err := enc.AddObject("pcap", e.PCAP); err != nil {
			return err
		}
	}
	if e.Intercept != nil {
		return enc.AddObject("intercept", e.Intercept)
	}
	return nil
}

func (i *Intercept) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	addNonEmpty(enc, "client_cert_source", i.ClientCertSource)
	enc.AddString("browser_asked", i.BrowserAsked)
	if i.BrowserIssuerCount != 0 {
		enc.AddInt("browser_issuer_count", i.BrowserIssuerCount)
	}
	if i.BrowserCert != nil {
		if err := enc.AddObject("browser_cert", i.BrowserCert); err != nil {
			return err
		}
	}
	if i.BrowserPHA {
		enc.AddBool("browser_post_handshake_auth", true)
	}
	enc.AddBool("upstream_verified", i.UpstreamVerified)
	addNonEmpty(enc, "upstream_verify_error", i.UpstreamVerifyError)
	if i.InsecureUpstream {
		enc.AddBool("insecure_upstream", true)
	}
	return nil
}

func (i *Inferred) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("cert_requested", i.CertRequested)
	enc.AddString("cert_sent", i.CertSent)
	if i.CertRequestBytes != 0 {
		enc.AddInt("cert_request_bytes", i.CertRequestBytes)
	}
	if i.CertRequestMin != 0 {
		enc.AddInt("cert_request_min", i.CertRequestMin)
	}
	if i.CertRequestRecords != 0 {
		enc.AddInt("cert_request_records", i.CertRequestRecords)
	}
	if i.ServerAlert {
		enc.AddBool("server_alert", true)
	}
	if i.Resumed {
		enc.AddBool("resumed", true)
	}
	enc.AddString("evidence", i.Evidence)
	return nil
}

func (c *ClientHello) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("post_handshake_auth", c.PostHandshakeAuth)
	if len(c.ALPN) > 0 {
		return enc.AddArray("alpn", strs(c.ALPN))
	}
	return nil
}

func (c *CertRequest) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("phase", c.Phase)
	enc.AddInt("issuer_count", c.IssuerCount)
	enc.AddInt("issuer_bytes", c.IssuerBytes)
	if err := c.addIssuers(enc); err != nil {
		return err
	}
	if len(c.CertTypes) > 0 {
		if err := enc.AddArray("cert_types", strs(c.CertTypes)); err != nil {
			return err
		}
	}
	if len(c.SignatureSchemes) > 0 {
		if err := enc.AddArray("signature_schemes", strs(c.SignatureSchemes)); err != nil {
			return err
		}
	}
	enc.AddInt("records", c.Records)
	return nil
}

func (c *ClientCert) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("sent", c.Sent)
	if len(c.Chain) > 0 {
		return enc.AddArray("chain", objects[Cert](c.Chain))
	}
	return nil
}

func (c Cert) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	certFields(&c, zapObject{enc})
	return nil
}

func (a Alert) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	alertFields(&a, zapObject{enc})
	return nil
}

func (c *Closed) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("conn_id", c.ConnID)
	enc.AddString("mode", string(c.Mode))
	addNonEmpty(enc, "client_addr", c.ClientAddr)
	addNonEmpty(enc, "target", c.Target)
	addNonEmpty(enc, "community_id", c.CommunityID)
	addNonEmpty(enc, "app_protocol", c.AppProtocol)
	enc.AddInt64("bytes_client_to_server", c.BytesUp)
	enc.AddInt64("bytes_server_to_client", c.BytesDown)
	enc.AddFloat64("duration_ms", c.DurationMS)
	enc.AddString("reason", c.Reason)
	enc.AddInt("handshakes", c.Handshakes)
	addNonEmpty(enc, "tls_version", c.TLSVersion)
	addNonEmpty(enc, "not_tls", c.NotTLS)
	if len(c.Errors) > 0 {
		if err := enc.AddArray("errors", strs(c.Errors)); err != nil {
			return err
		}
	}
	if c.Verdict != "" {
		enc.AddString("verdict", c.Verdict)
	}
	if c.VerdictCertain != nil {
		enc.AddBool("verdict_certain", *c.VerdictCertain)
	}
	if c.PCAP != nil {
		return enc.AddObject("pcap", c.PCAP)
	}
	return nil
}

func (p *PCAPRef) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt("stream", p.Stream)
	if p.Frames != nil {
		return enc.AddObject("frames", p.Frames)
	}
	return nil
}

func (f *PCAPFrames) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if f.CertRequest > 0 {
		enc.AddInt("cert_request", f.CertRequest)
	}
	if f.ClientCert > 0 {
		enc.AddInt("client_cert", f.ClientCert)
	}
	return nil
}

func addNonEmpty(enc zapcore.ObjectEncoder, key, val string) {
	if val != "" {
		enc.AddString(key, val)
	}
}

type strs []string

func (s strs) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range s {
		enc.AppendString(v)
	}
	return nil
}

type objects[T zapcore.ObjectMarshaler] []T

func (o objects[T]) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range o {
		if err := enc.AppendObject(v); err != nil {
			return err
		}
	}
	return nil
}

type findings []rulesFinding

func (f findings) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range f {
		if err := enc.AppendObject(finding(v)); err != nil {
			return err
		}
	}
	return nil
}

type finding rulesFinding

func (f finding) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	findingFields((*rulesFinding)(&f), zapObject{enc})
	return nil
}

// The objects of an event's lists (a certificate, an alert, a finding)
// keep DESIGN.md's keys in the JSON log and under the OTLP/ECS names
// alike: one walk of each writes both, through fieldWriter.

// fieldWriter is what an object's fields are written to: event.Attrs for
// OTLP and ECS, zapObject for the JSON log. The walks are generic, not
// over an interface, so that the JSON log's zapObject is not boxed (one
// allocation per object).
type fieldWriter interface {
	Str(key, v string)
	Strs(key string, v []string)
}

// zapObject writes an object's fields to zap.
type zapObject struct{ enc zapcore.ObjectEncoder }

func (z zapObject) Str(key, v string) { z.enc.AddString(key, v) }

// Strs drops AddArray's error: strs never returns one.
func (z zapObject) Strs(key string, v []string) { _ = z.enc.AddArray(key, strs(v)) }

func certFields[W fieldWriter](c *Cert, w W) {
	w.Str("subject", c.Subject)
	w.Str("issuer", c.Issuer)
	w.Str("serial", c.Serial)
	w.Str("not_before", c.NotBefore)
	w.Str("not_after", c.NotAfter)
	if len(c.KeyUsage) > 0 {
		w.Strs("key_usage", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) > 0 {
		w.Strs("ext_key_usage", c.ExtKeyUsage)
	}
	w.Str("public_key", c.PublicKey)
	w.Str("sha256", c.SHA256)
}

func alertFields[W fieldWriter](a *Alert, w W) {
	w.Str("from", a.From)
	w.Str("level", a.Level)
	w.Str("description", a.Description)
}

func findingFields[W fieldWriter](f *rulesFinding, w W) {
	w.Str("id", f.ID)
	w.Str("severity", string(f.Severity))
	if f.Predicts != "" {
		w.Str("predicts", string(f.Predicts))
	}
	w.Str("summary", f.Summary)
	w.Str("detail", f.Detail)
	if f.Remedy != "" {
		w.Str("remedy", f.Remedy)
	}
}
