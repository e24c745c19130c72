package logging

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

// ecsField is a field of the ECS reference (testdata/ecs_fields.yml, from
// elastic/ecs's generated ecs_flat.yml).
type ecsField struct {
	Type          string   `yaml:"type"`
	Normalize     []string `yaml:"normalize"`
	AllowedValues []string `yaml:"allowed_values"`
}

func ecsReference(t *testing.T) map[string]ecsField {
	t.Helper()
	raw, err := os.ReadFile("testdata/ecs_fields.yml")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]ecsField
	if err := yaml.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// flatten turns an ECS document back into dotted names, as Elasticsearch
// indexes it; a list is one value.
func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return
	}
	for k, sub := range m {
		if prefix != "" {
			k = prefix + "." + k
		}
		flatten(k, sub, out)
	}
}

// typeProblem says how v is not a value of the ECS type (and normalize).
func typeProblem(f ecsField, v any) string {
	if list, ok := v.([]any); ok {
		if !slices.Contains(f.Normalize, "array") {
			return "a list where ECS wants one value"
		}
		for _, e := range list {
			if p := typeProblem(ecsField{Type: f.Type, AllowedValues: f.AllowedValues}, e); p != "" {
				return p
			}
		}
		return ""
	}
	switch f.Type {
	case "keyword", "match_only_text":
		s, ok := v.(string)
		if !ok {
			return "not a string"
		}
		if len(f.AllowedValues) > 0 && !slices.Contains(f.AllowedValues, s) {
			return "not one of the allowed values " + strings.Join(f.AllowedValues, ", ")
		}
	case "long":
		n, ok := v.(float64)
		if !ok || n != float64(int64(n)) {
			return "not an integer"
		}
	case "ip":
		if s, ok := v.(string); !ok || net.ParseIP(s) == nil {
			return "not an IP address"
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			return "not a date string"
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return "not an ISO 8601 date: " + err.Error()
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return "not a boolean"
		}
	default:
		return "type " + f.Type + " is not checked by this test"
	}
	return ""
}

// TestECSAgainstReference writes events as a user's certlens does with
// --log-format ecs and checks every field outside certlens.* against the
// ECS reference: the name exists, the value has its type (and allowed
// values), and every reference field used is written at least once.
func TestECSAgainstReference(t *testing.T) {
	ref := ecsReference(t)
	var out bytes.Buffer
	log, closeFn, err := New(Options{Format: "ecs", Level: "info", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	leaf := event.Cert{Subject: "CN=alice,O=Contoso", Issuer: "CN=Contoso Client CA", Serial: "1f", NotBefore: "2026-01-01T00:00:00Z",
		NotAfter: "2027-01-01T00:00:00Z", PublicKey: "ECDSA P-256", SHA256: "ab01"}
	h := &event.Handshake{ConnID: "c-1", Mode: event.ModeIntercept, ClientAddr: "10.0.0.1:50000", Target: "10.0.0.2:443",
		CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", SNI: "iis.example", Phase: "initial", TLSVersion: "TLS 1.2",
		CipherSuite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ALPN: "http/1.1", Visibility: "clear", End: "finished",
		CertRequest: &event.CertRequest{Phase: "initial", IssuerCount: 1, IssuerBytes: 23, Issuers: []string{"CN=Contoso Client CA"}, Records: 1},
		ClientCert:  &event.ClientCert{Sent: true, Chain: []event.Cert{leaf}},
		Findings:    []rules.Finding{{ID: "http-403-observed", Severity: "error", Predicts: "403.7", Summary: "s", Detail: "d"}},
		Verdict:     "403.7", VerdictCertain: true, HTTPStatus: 403, HTTPSubstatus: "403.7"}
	certain := true
	c := &event.Closed{ConnID: "c-1", Mode: event.ModeSidecar, ClientAddr: "[2001:db8::1]:50000", Target: "web:443",
		CommunityID: "1:x", BytesUp: 10, BytesDown: 20, DurationMS: 2.5, Reason: "client closed", Handshakes: 1,
		TLSVersion: "TLS 1.3", Verdict: "ok", VerdictCertain: &certain}
	log.Error("handshake", zap.Inline(h))
	log.Info("connection closed", zap.Inline(c))
	log.Info("listening", zap.String("addr", "127.0.0.1:8080"), zap.String("mode", "observe"))
	closeFn()

	used := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	docs := make([]map[string]any, len(lines))
	for i, line := range lines {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		fields := map[string]any{}
		flatten("", doc, fields)
		docs[i] = fields
		for name, v := range fields {
			if strings.HasPrefix(name, "certlens.") {
				continue
			}
			f, ok := ref[name]
			if !ok {
				t.Errorf("line %d: %s is not an ECS field (nor certlens.*)", i, name)
				continue
			}
			used[name] = true
			if p := typeProblem(f, v); p != "" {
				t.Errorf("line %d: %s = %v: %s (ECS type %s)", i, name, v, p, f.Type)
			}
		}
		for _, required := range []string{"@timestamp", "message", "log.level", "ecs.version"} {
			if _, ok := fields[required]; !ok {
				t.Errorf("line %d lacks %s", i, required)
			}
		}
	}
	for name := range ref {
		if !used[name] {
			t.Errorf("reference field %s is never written: take it out of testdata/ecs_fields.yml or write it", name)
		}
	}

	hs, cl, other := docs[0], docs[1], docs[2]
	for _, tc := range []struct {
		doc       map[string]any
		key, want string
	}{
		{hs, "event.outcome", "failure"}, {hs, "tls.version", "1.2"}, {hs, "tls.version_protocol", "tls"},
		{hs, "tls.client.subject", "CN=alice,O=Contoso"}, {hs, "tls.client.hash.sha256", "AB01"},
		{hs, "network.community_id", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="}, {hs, "client.ip", "10.0.0.1"},
		{hs, "certlens.verdict", "403.7"}, {hs, "log.level", "error"}, {hs, "network.type", "ipv4"},
		{cl, "event.outcome", "success"}, {cl, "network.type", "ipv6"}, {cl, "server.address", "web"},
		{cl, "event.reason", "client closed"}, {other, "certlens.addr", "127.0.0.1:8080"}, {other, "message", "listening"},
	} {
		if got, _ := tc.doc[tc.key].(string); got != tc.want {
			t.Errorf("%s = %v, want %q", tc.key, tc.doc[tc.key], tc.want)
		}
	}
	if cl["event.duration"] != float64(2_500_000) || cl["client.bytes"] != float64(10) || hs["http.response.status_code"] != float64(403) {
		t.Errorf("event.duration %v, client.bytes %v, status %v", cl["event.duration"], cl["client.bytes"], hs["http.response.status_code"])
	}
	if _, ok := cl["server.ip"]; ok {
		t.Error("a host name was written as server.ip")
	}
	if f, _ := hs["certlens.findings"].([]any); len(f) != 1 || f[0].(map[string]any)["id"] != "http-403-observed" {
		t.Errorf("certlens.findings = %v", hs["certlens.findings"])
	}
}

// TestECSEmptyIssuerList: a request that names no CA is a fact the ECS
// document states as an empty list, as the JSON log does, whether the
// event's list is empty or nil.
func TestECSEmptyIssuerList(t *testing.T) {
	for _, issuers := range [][]string{{}, nil} {
		var out bytes.Buffer
		log, closeFn, err := New(Options{Format: "ecs", Level: "info", Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		h := &event.Handshake{ConnID: "c-1", Mode: event.ModeObserve, Phase: "initial", Visibility: "clear", End: "finished",
			CertRequest: &event.CertRequest{Phase: "initial", Issuers: issuers, Records: 1}, Verdict: "ok"}
		log.Info("handshake", zap.Inline(h))
		closeFn()
		if !strings.Contains(out.String(), `"issuers":[]`) {
			t.Errorf("issuers %#v: %s", issuers, out.String())
		}
	}
}
