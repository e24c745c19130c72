package handshake

import (
	"crypto/x509"
	"path/filepath"
	"strconv"
	"testing"
)

// TestParserDecryptsRecordedTranscripts feeds every recorded real-peer
// connection to a parser given the client's key log, in every chunking:
// TLS 1.3 and renegotiation handshakes come out decrypted, with the issuer
// list and the client's certificate the recording noted.
func TestParserDecryptsRecordedTranscripts(t *testing.T) {
	for _, rec := range loadTranscripts(t) {
		t.Run(rec.name, func(t *testing.T) {
			notes := rec.tr.Meta.Notes
			kl := readKeyLogFile(t, filepath.Join(transcriptDir, notes["keylog"]))
			hs, obs := runAll(t, rec.conn, Options{Secrets: kl})
			if len(obs.Errors) > 0 {
				t.Errorf("connection errors: %v", obs.Errors)
			}
			var h *Handshake
			for _, x := range hs {
				if len(x.Errors) > 0 {
					t.Errorf("handshake %d errors: %v", x.Index, x.Errors)
				}
				if x.CertRequest != nil || h == nil {
					h = x
				}
			}
			if h == nil {
				t.Fatal("no handshake")
			}
			encrypted := notes["tls_version"] == "TLS 1.3" || notes["cert_request"] == "renegotiation"
			want := VisibilityClear
			if encrypted {
				want = VisibilityDecrypted
			}
			if h.Visibility != want {
				t.Errorf("visibility %s, want %s; messages %v", h.Visibility, want, h.Messages)
			}
			if notes["cert_request"] == "none" {
				if h.CertRequest != nil {
					t.Error("a CertificateRequest the recording did not note")
				}
				return
			}
			if h.CertRequest == nil {
				t.Fatalf("no CertificateRequest; messages %v", h.Messages)
			}
			if string(h.Phase) != notes["cert_request"] {
				t.Errorf("phase %s, notes %s", h.Phase, notes["cert_request"])
			}
			if got := strconv.Itoa(len(h.CertRequest.Issuers)); got != notes["issuer_count"] {
				t.Errorf("issuers %s, notes %s", got, notes["issuer_count"])
			}
			if got := strconv.Itoa(h.CertRequest.IssuerBytes); got != notes["issuer_bytes"] {
				t.Errorf("issuer bytes %s, notes %s", got, notes["issuer_bytes"])
			}
			sent := h.ClientCertificate != nil && len(h.ClientCertificate.Chain) > 0
			if got := strconv.FormatBool(sent); got != notes["client_cert_sent"] {
				t.Errorf("client cert sent %s, notes %s; messages %v", got, notes["client_cert_sent"], h.Messages)
			}
			if sent {
				leaf, err := x509.ParseCertificate(h.ClientCertificate.Chain[0])
				if err != nil || leaf.Subject.String() != notes["client_cert_subject"] {
					t.Errorf("client cert %v (%v), notes %s", leaf.Subject, err, notes["client_cert_subject"])
				}
			}
			if notes["server_alert"] != "" && (len(h.Alerts) == 0 || h.Alerts[0].Encrypted) {
				t.Errorf("alerts %v, notes %s", h.Alerts, notes["server_alert"])
			}
			t.Logf("%s %s %s: %d DNs, end %s, messages %v", h.Phase, h.Visibility, h.Version, len(h.CertRequest.Issuers), h.End, h.Messages)
		})
	}
}

// lateKeyLog is a key log whose lines arrive while the parser runs.
type lateKeyLog struct{ KeyLog }

func (l *lateKeyLog) Lookup(cr [32]byte) (Secrets, bool) { return l.KeyLog.Lookup(cr) }

// TestParserWaitsForTheSecret: the race from the issue. The server's
// encrypted flight passes before the client has logged its secrets; the
// parser holds it, reports what it waits for, and decrypts on Retry once
// the line is there. Without the line, GiveUp reads it as if no key log
// were set, and says so.
func TestParserWaitsForTheSecret(t *testing.T) {
	rec := loadTranscript(t, "tls13-3ca-curl-cert")
	full := readKeyLogFile(t, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"]))
	for _, arrives := range []bool{true, false} {
		name := "secret arrives late"
		if !arrives {
			name = "secret never arrives"
		}
		t.Run(name, func(t *testing.T) {
			src := &lateKeyLog{KeyLog{}}
			p := NewParser(Options{Secrets: src})
			var hs []*Handshake
			for _, ch := range *rec.conn {
				p.Feed(ch.from, ch.data)
				hs = append(hs, p.Drain()...)
			}
			cr, waiting := p.Waiting()
			if !waiting || len(hs) != 0 {
				t.Fatalf("waiting %v with %d handshakes out; want the flight held", waiting, len(hs))
			}
			if _, ok := full[cr]; !ok {
				t.Fatalf("waits for client_random %x, not the connection's", cr)
			}
			if arrives {
				for k, v := range full {
					src.KeyLog[k] = v
				}
				p.Retry()
			} else {
				p.GiveUp()
			}
			hs = append(hs, p.Drain()...)
			hs = append(hs, p.Close()...)
			if len(hs) != 1 {
				t.Fatalf("%d handshakes", len(hs))
			}
			h := hs[0]
			if arrives {
				if h.Visibility != VisibilityDecrypted || h.CertRequest == nil || len(h.CertRequest.Issuers) != 3 {
					t.Fatalf("visibility %s, request %v; messages %v", h.Visibility, h.CertRequest, h.Messages)
				}
				return
			}
			if h.Visibility != VisibilityInferred || h.CertRequest != nil || len(h.Errors) == 0 {
				t.Fatalf("visibility %s, request %v, errors %v", h.Visibility, h.CertRequest, h.Errors)
			}
		})
	}
}

// TestClearTLS12IsNotHeld: a key log that has no line for a TLS 1.2
// connection must not delay or blame its initial handshake, which is all
// in clear: the keys only matter for a renegotiation (with the secret, it
// is still decrypted: TestParserDecryptsRecordedTranscripts, whose keys are
// set up only when it starts).
func TestClearTLS12IsNotHeld(t *testing.T) {
	for _, name := range []string{"tls12-3ca-curl-cert", "tls12-renegotiation-sclient"} {
		t.Run(name, func(t *testing.T) {
			rec := loadTranscript(t, name)
			p := NewParser(Options{Secrets: &lateKeyLog{KeyLog{}}})
			var hs []*Handshake
			for _, ch := range *rec.conn {
				p.Feed(ch.from, ch.data)
				hs = append(hs, p.Drain()...)
				if len(hs) > 0 {
					break
				}
			}
			if _, waiting := p.Waiting(); waiting || len(hs) == 0 {
				t.Fatalf("waiting %v with %d handshakes out; the initial handshake is in clear", waiting, len(hs))
			}
			h := hs[0]
			if h.Visibility != VisibilityClear || h.SecretMissing || len(h.Errors) > 0 || h.End != EndFinished {
				t.Errorf("visibility %s, secret missing %v, errors %v, end %s", h.Visibility, h.SecretMissing, h.Errors, h.End)
			}
		})
	}
}
