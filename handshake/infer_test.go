package handshake

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestInferTLS13(t *testing.T) {
	const aes128, aes256 = CipherSuite(0x1301), CipherSuite(0x1302)
	cases := []struct {
		name            string
		suite           CipherSuite
		server, client  []int
		requested, sent Tri
		crLen           int
		alert           bool
	}{
		// Lengths as measured here (FACTS.md): openssl s_server, curl, Chromium.
		{"s_server asks, curl sends nothing", aes128, []int{23, 254, 900, 97, 53, 200}, []int{25, 53}, Yes, No, 237, false},
		{"s_server asks, Chromium sends nothing", aes128, []int{23, 254, 900, 97, 53}, []int{61, 300}, Yes, No, 237, false},
		{"s_server asks, client sends a chain", aes128, []int{23, 254, 900, 97, 53}, []int{1200, 97, 53}, Yes, Yes, 237, false},
		{"s_server asks with SHA-384", aes256, []int{23, 254, 900, 97, 69}, []int{25, 69}, Yes, No, 237, false},
		{"no request, Finished alone", aes128, []int{23, 900, 97, 53, 300}, []int{53, 80}, No, No, 0, false},
		{"required and refused: alert", aes128, []int{23, 254, 900, 97, 53, 19}, []int{25, 53}, Yes, No, 237, true},
		{"resumption", aes128, []int{23, 53}, []int{53}, No, No, 0, false},
		{"whole flight in one record: nothing from the server", aes128, []int{2400}, []int{53}, No, No, 0, false},
		{"padding: nothing fits", aes128, []int{40, 272, 912, 112, 64}, []int{36, 64}, Unknown, Unknown, 0, false},
		{"padded both ways: a padded Finished is no chain", aes128, []int{256, 512, 1024, 512, 256}, []int{256}, Unknown, Unknown, 0, false},
		{"one-record server flight, client chain: nothing is sure", aes128, []int{2400}, []int{1200, 53}, Unknown, Unknown, 0, false},
		{"no client records yet", aes128, []int{23, 254, 900, 97, 53}, nil, Yes, Unknown, 237, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inf := InferTLS13(tc.suite, tc.server, tc.client)
			if inf.CertRequested != tc.requested || inf.CertSent != tc.sent || inf.CertRequestLen != tc.crLen || inf.ServerAlert != tc.alert {
				t.Errorf("got requested %s sent %s crLen %d alert %v, want %s %s %d %v\nevidence: %s",
					inf.CertRequested, inf.CertSent, inf.CertRequestLen, inf.ServerAlert, tc.requested, tc.sent, tc.crLen, tc.alert, inf.Evidence)
			}
			if inf.Resumed != strings.Contains(tc.name, "resumption") {
				t.Errorf("resumed %v", inf.Resumed)
			}
			if inf.Evidence == "" {
				t.Error("no evidence")
			}
		})
	}
}

// TestInferenceAgreesWithDecryption: for every recorded TLS 1.3 handshake,
// what the record sizes say (no keys) is what the recording's key log
// shows when the same bytes are decrypted.
func TestInferenceAgreesWithDecryption(t *testing.T) {
	n := 0
	for _, rec := range loadTranscripts(t) {
		if rec.tr.Meta.Notes["tls_version"] != "TLS 1.3" {
			continue
		}
		n++
		t.Run(rec.name, func(t *testing.T) {
			plain, _ := runAll(t, rec.conn, Options{})
			kl := readKeyLogFile(t, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"]))
			dec, _ := runAll(t, rec.conn, Options{Secrets: kl})
			if len(plain) != 1 || len(dec) != 1 {
				t.Fatalf("%d and %d handshakes", len(plain), len(dec))
			}
			inf, d := plain[0].Inferred, dec[0]
			if inf == nil || d.Visibility != VisibilityDecrypted || d.Inferred != nil {
				t.Fatalf("inferred %+v, decrypted visibility %s with inferred %+v", inf, d.Visibility, d.Inferred)
			}
			requested, sent := No, No
			if d.CertRequest != nil {
				requested = Yes
				// The request's size bounds its issuer list, as the inference claims.
				if inf.CertRequestLen < d.CertRequest.IssuerBytes {
					t.Errorf("inferred request of %d bytes, decrypted issuer list %d", inf.CertRequestLen, d.CertRequest.IssuerBytes)
				}
			}
			if d.ClientCertificate != nil && len(d.ClientCertificate.Chain) > 0 {
				sent = Yes
			}
			if inf.CertRequested != requested || inf.CertSent != sent {
				t.Errorf("inferred requested %s sent %s; decrypted %s %s (%s)", inf.CertRequested, inf.CertSent, requested, sent, inf.Evidence)
			}
		})
	}
	if n == 0 {
		t.Fatal("no TLS 1.3 transcript")
	}
}
