package handshake

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// TestTsharkAgreesOnIssuerLists cross-checks the parser with Wireshark on the
// committed pcaps of the recorded transcripts: where the CertificateRequest
// is in clear (TLS 1.2 initial handshakes), tshark must count the same DNs
// and the same dnames_len; where the parser sees no request, tshark without
// the key log must not see one either, and with the key log it must find what
// the recording noted.
func TestTsharkAgreesOnIssuerLists(t *testing.T) {
	peertest.Require(t, "tshark")
	for _, rec := range loadTranscripts(t) {
		t.Run(rec.name, func(t *testing.T) {
			t.Parallel()
			res, _ := parseRecorded(t, rec)
			var cr *CertificateRequest
			for _, h := range res.Handshakes {
				if h.CertRequest != nil {
					if cr != nil {
						t.Fatal("more than one CertificateRequest")
					}
					cr = h.CertRequest
				}
			}
			pcap := filepath.Join(transcriptDir, rec.name+".pcap")
			sums := transcript.TsharkDNames(t, pcap)
			notes := rec.tr.Meta.Notes
			if cr == nil {
				if len(sums) != 0 {
					t.Fatalf("tshark decodes %d CertificateRequests the parser did not see: %+v", len(sums), sums)
				}
				if notes["cert_request"] == "none" {
					return
				}
				// Encrypted (TLS 1.3, renegotiation): only the key log shows
				// the request; check that the recording's notes hold.
				keylog := filepath.Join(transcriptDir, notes["keylog"])
				sums = transcript.TsharkDNamesKeylog(t, pcap, keylog)
				if len(sums) != 1 {
					t.Fatalf("tshark with the key log decodes %d CertificateRequests, want 1", len(sums))
				}
				if got := tsharkNote(sums[0]); got != notes["tshark_dnames"] {
					t.Errorf("tshark with the key log says %q, notes say %q", got, notes["tshark_dnames"])
				}
				return
			}
			if len(sums) != 1 {
				t.Fatalf("tshark decodes %d CertificateRequests, want 1: %+v", len(sums), sums)
			}
			got := sums[0]
			if got.Count != len(cr.Issuers) || got.DNamesLen != cr.IssuerBytes {
				t.Errorf("tshark: %d DNs, dnames_len %d; parser: %d DNs, issuer_bytes %d",
					got.Count, got.DNamesLen, len(cr.Issuers), cr.IssuerBytes)
			}
			// tshark lists the first 100 DN lengths: they must be the parser's.
			if want := min(len(cr.Issuers), 100); len(got.DNameLens) != want || got.Truncated != (len(cr.Issuers) > 100) {
				t.Errorf("tshark lists %d DN lengths (truncated %v), want %d", len(got.DNameLens), got.Truncated, want)
			}
			for i, n := range got.DNameLens {
				if i < len(cr.Issuers) && n != len(cr.Issuers[i].Raw) {
					t.Errorf("DN %d: tshark %d bytes, parser %d", i+1, n, len(cr.Issuers[i].Raw))
				}
			}
			if s := tsharkNote(got); s != notes["tshark_dnames"] {
				t.Errorf("tshark says %q, the recording noted %q", s, notes["tshark_dnames"])
			}
			t.Logf("tshark %s; parser %d DNs, issuer_bytes %d, %d records", tsharkNote(got), len(cr.Issuers), cr.IssuerBytes, cr.Records)
		})
	}
}

// tsharkNote formats a summary the way the recorder wrote Meta.Notes["tshark_dnames"].
func tsharkNote(s transcript.DNamesSummary) string {
	return fmt.Sprintf("frame %d: %d DNs, dnames_len %d", s.Frame, s.Count, s.DNamesLen)
}
