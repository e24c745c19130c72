package event

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/certlens/certlens/rules"
)

// jsonPaths lists the event's JSON fields as DESIGN.md names them
// (cert_request.issuer_count); a list of objects is one field.
func jsonPaths(t reflect.Type, prefix string) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, jsonPaths(ft, prefix+tag+".")...)
			continue
		}
		out = append(out, prefix+tag)
	}
	return out
}

// fullEvents are a handshake and a connection closed event with every
// field set.
func fullEvents() (*Handshake, *Closed) {
	leaf := Cert{Subject: "CN=alice", Issuer: "CN=Client CA", Serial: "1f", NotBefore: "2026-01-01T00:00:00Z", NotAfter: "2027-01-01T00:00:00Z",
		KeyUsage: []string{"digitalSignature"}, ExtKeyUsage: []string{"clientAuth"}, PublicKey: "ECDSA P-256", SHA256: "ab01"}
	h := &Handshake{
		ConnID: "c-1", Mode: ModeIntercept, ClientAddr: "10.0.0.1:50000", Target: "10.0.0.2:443", CommunityID: "1:x", SNI: "iis.example",
		AppProtocol: "http-connect", Index: 1, Phase: "renegotiation", TLSVersion: "TLS 1.2", CipherSuite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		ALPN: "http/1.1", Visibility: "inferred", End: "finished",
		ClientHello: &ClientHello{PostHandshakeAuth: true, ALPN: []string{"h2", "http/1.1"}},
		CertRequest: &CertRequest{Phase: "renegotiation", IssuerCount: 1, IssuerBytes: 20, Issuers: []string{"CN=Client CA"},
			CertTypes: []string{"rsa_sign"}, SignatureSchemes: []string{"rsa_pss_rsae_sha256"}, Records: 1},
		ClientCert: &ClientCert{Sent: true, Chain: []Cert{leaf}},
		Inferred: &Inferred{CertRequested: "yes", CertSent: "yes", CertRequestBytes: 300, CertRequestMin: 290, CertRequestRecords: 1,
			ServerAlert: true, Resumed: true, Evidence: "sizes"},
		Alerts:   []Alert{{From: "server", Level: "fatal", Description: "unknown_ca"}},
		Findings: []rules.Finding{{ID: "client-cert-not-sent", Severity: "error", Predicts: "403.7", Summary: "s", Detail: "d", Remedy: "r"}},
		Verdict:  "403.7", VerdictCertain: true, Errors: []string{"e"}, HTTPStatus: 403, HTTPSubstatus: "403.7",
		PCAP: &PCAPRef{Stream: 3, Frames: &PCAPFrames{CertRequest: 7, ClientCert: 9}},
		Intercept: &Intercept{ClientCertSource: "intercept.client_certs[0]", BrowserAsked: "mirrored", BrowserIssuerCount: 1,
			BrowserCert: &ClientCert{Sent: true, Chain: []Cert{leaf}}, BrowserPHA: true, UpstreamVerified: true,
			UpstreamVerifyError: "x", InsecureUpstream: true},
	}
	certain := true
	c := &Closed{ConnID: "c-1", Mode: ModeSidecar, ClientAddr: "[2001:db8::1]:50000", Target: "iis.example:443", CommunityID: "1:x",
		AppProtocol: "smtp", BytesUp: 1, BytesDown: 2, DurationMS: 1.5, Reason: "client closed", Handshakes: 1, TLSVersion: "TLS 1.3",
		NotTLS: "http", Errors: []string{"e"}, Verdict: "ok", VerdictCertain: &certain, PCAP: &PCAPRef{Stream: 3}}
	return h, c
}

// recorder keeps the names an event was written under.
type recorder map[string]any

func (r recorder) Str(k, v string)                   { r[k] = v }
func (r recorder) Int(k string, v int64)             { r[k] = v }
func (r recorder) Float(k string, v float64)         { r[k] = v }
func (r recorder) Bool(k string, v bool)             { r[k] = v }
func (r recorder) Strs(k string, v []string)         { r[k] = v }
func (r recorder) Objects(k string, e []func(Attrs)) { r[k] = len(e) }

// TestEveryFieldHasNames: every field of the two events (DESIGN.md's
// contract) has a row in FieldNames, and a fully set event is written under
// every name of every row, in both dialects, and under no other.
func TestEveryFieldHasNames(t *testing.T) {
	rows := map[string]FieldName{}
	for _, f := range FieldNames {
		if _, dup := rows[f.Field]; dup {
			t.Errorf("%s has two rows", f.Field)
		}
		rows[f.Field] = f
	}
	paths := append(jsonPaths(reflect.TypeFor[Handshake](), ""), jsonPaths(reflect.TypeFor[Closed](), "")...)
	for _, p := range paths {
		if _, ok := rows[p]; !ok {
			t.Errorf("event field %s has no OTLP/ECS name in FieldNames", p)
		}
	}
	h, c := fullEvents()
	for _, d := range []Dialect{OTel, ECS} {
		got := recorder{}
		h.Attributes(d, got)
		c.Attributes(d, got)
		want := map[string]bool{}
		for _, f := range FieldNames {
			ns := f.OTel
			if d == ECS {
				ns = f.ECS
			}
			for _, n := range ns {
				want[n] = true
				if _, ok := got[n]; !ok {
					t.Errorf("dialect %d: %s is never written as %s", d, f.Field, n)
				}
			}
		}
		for n := range got {
			if !want[n] {
				t.Errorf("dialect %d: %s is written but in no row of FieldNames", d, n)
			}
		}
	}
}

func TestNamesConvert(t *testing.T) {
	h, c := fullEvents()
	o, e := recorder{}, recorder{}
	h.Attributes(OTel, o)
	h.Attributes(ECS, e)
	for _, tc := range []struct {
		got  recorder
		key  string
		want any
	}{
		{o, "tls.protocol.name", "tls"}, {o, "tls.protocol.version", "1.2"}, {e, "tls.version_protocol", "tls"}, {e, "tls.version", "1.2"},
		{o, "client.address", "10.0.0.1"}, {o, "client.port", int64(50000)}, {e, "client.ip", "10.0.0.1"},
		{o, "server.port", int64(443)}, {o, "tls.client.hash.sha256", "AB01"}, {o, "certlens.cert_request.issuer_count", int64(1)},
		{o, "certlens.findings", 1}, {e, "tls.client.x509.serial_number", "1f"},
	} {
		if tc.got[tc.key] != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got[tc.key], tc.want)
		}
	}
	o, e = recorder{}, recorder{}
	c.Attributes(OTel, o)
	c.Attributes(ECS, e)
	if e["event.duration"] != int64(1_500_000) || o["certlens.duration_ms"] != 1.5 {
		t.Errorf("duration: ECS %v ns, OTel %v ms", e["event.duration"], o["certlens.duration_ms"])
	}
	if o["client.address"] != "2001:db8::1" || e["client.ip"] != "2001:db8::1" || o["server.address"] != "iis.example" {
		t.Errorf("addresses: %v %v %v", o["client.address"], e["client.ip"], o["server.address"])
	}
	if _, ok := e["server.ip"]; ok {
		t.Error("a host name was written as server.ip")
	}
}

// TestREADMETable: README's table of names is FieldNames, row for row.
func TestREADMETable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	var missing []string
	for _, f := range FieldNames {
		row := "| `" + f.Field + "` | " + cell(f.OTel) + " | " + cell(f.ECS) + " |"
		if !strings.Contains(readme, row+"\n") {
			missing = append(missing, row)
		}
	}
	if len(missing) > 0 {
		t.Errorf("README.md lacks these rows of the OTLP/ECS names table (event.FieldNames):\n%s", strings.Join(missing, "\n"))
	}
}

func cell(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + n + "`"
	}
	return strings.Join(q, ", ")
}
