package handshake

import (
	"bytes"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/transcript"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the parser's output")

const (
	transcriptDir = "testdata/transcripts"
	goldenDir     = "testdata/golden"
)

// recorded is one transcript from testdata/transcripts, as a scripted conn.
type recorded struct {
	name string
	tr   *transcript.Transcript
	conn *conn
}

// loadTranscripts reads every recorded transcript, sorted by name.
func loadTranscripts(tb testing.TB) []recorded {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(transcriptDir, "*.transcript"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no transcripts in %s", transcriptDir)
	}
	var out []recorded
	for _, path := range paths {
		out = append(out, loadTranscript(tb, strings.TrimSuffix(filepath.Base(path), ".transcript")))
	}
	return out
}

// loadTranscript reads the recorded transcript NAME.transcript.
func loadTranscript(tb testing.TB, name string) recorded {
	tb.Helper()
	tr, err := transcript.ReadFile(filepath.Join(transcriptDir, name+".transcript"))
	if err != nil {
		tb.Fatal(err)
	}
	return recorded{name: name, tr: tr, conn: transcriptConn(tr)}
}

// transcriptConn keeps the recorded chunks as they are: their boundaries are
// where the relay's reads happened to end, which is part of what is tested.
func transcriptConn(tr *transcript.Transcript) *conn {
	c := &conn{}
	for _, ch := range tr.Chunks {
		from := FromClient
		if ch.Dir == transcript.ServerToClient {
			from = FromServer
		}
		*c = append(*c, chunk{from, ch.Data})
	}
	return c
}

// goldenResult is what a golden file holds: every handshake, then the
// connection summary.
type goldenResult struct {
	Handshakes  []*Handshake `json:"handshakes"`
	Observation Observation  `json:"observation"`
}

// parseRecorded feeds a transcript in every feed mode, fails unless all agree
// (handshakes and observation alike), and returns the result and its JSON.
func parseRecorded(t *testing.T, rec recorded) (goldenResult, string) {
	t.Helper()
	var res goldenResult
	var want string
	for i, mode := range feedModes {
		hs, obs := run(t, rec.conn, mode, Options{})
		got := toJSON(t, goldenResult{hs, obs})
		if i == 0 {
			res, want = goldenResult{hs, obs}, got
			continue
		}
		if got != want {
			t.Fatalf("feeding %q differs from whole chunks:\nwhole: %s\n%s: %s", mode.name, want, mode.name, got)
		}
	}
	return res, want
}

func TestGoldenTranscripts(t *testing.T) {
	for _, rec := range loadTranscripts(t) {
		t.Run(rec.name, func(t *testing.T) {
			res, got := parseRecorded(t, rec)
			got += "\n"
			path := filepath.Join(goldenDir, rec.name+".json")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (create it with: go test ./handshake -run TestGoldenTranscripts -update)", err)
				}
				if string(want) != got {
					t.Errorf("result differs from %s; if the change is intended rerun with -update:\n%s", path, got)
				}
			}
			checkNotes(t, rec.tr.Meta.Notes, res)
		})
	}
}

// checkNotes compares a parse with what the recording measured (Meta.Notes):
// golden files only pin the output, these checks say it is right.
func checkNotes(t *testing.T, notes map[string]string, res goldenResult) {
	t.Helper()
	hs, obs := res.Handshakes, res.Observation
	if len(notes) == 0 || len(hs) == 0 {
		t.Fatalf("%d notes, %d handshakes: nothing to check", len(notes), len(hs))
	}
	version := notes["tls_version"]
	if obs.Version.String() != version || obs.Handshakes != len(hs) || obs.NotTLS != "" || len(obs.Errors) > 0 {
		t.Errorf("observation %+v, want version %s, %d handshakes, no errors", obs, version, len(hs))
	}
	for _, h := range hs {
		if h.Version.String() != version || h.Unparsed || len(h.Errors) > 0 {
			t.Errorf("handshake %d: version %s unparsed %v errors %q, want %s and no errors", h.Index, h.Version, h.Unparsed, h.Errors, version)
		}
	}

	// h is the handshake the notes describe.
	h := hs[0]
	switch notes["cert_request"] {
	case "none", "initial":
		if len(hs) != 1 || h.Phase != PhaseInitial {
			t.Fatalf("%d handshakes, first in phase %s: want one initial handshake", len(hs), h.Phase)
		}
	case "renegotiation":
		if len(hs) != 2 || hs[1].Phase != PhaseRenegotiation || hs[1].Index != 1 {
			t.Fatalf("%d handshakes, want the initial one and a renegotiation", len(hs))
		}
		if hs[0].CertRequest != nil || hs[0].ClientCertificate != nil || hs[0].Visibility != VisibilityClear {
			t.Errorf("initial handshake: visibility %s, cert request %v, client certificate %v; want clear, neither",
				hs[0].Visibility, hs[0].CertRequest, hs[0].ClientCertificate)
		}
		h = hs[1]
	default:
		t.Fatalf("note cert_request %q: unknown", notes["cert_request"])
	}

	switch {
	case version == "TLS 1.3" || h.Phase == PhaseRenegotiation:
		// Only record sizes can be seen: what they imply must match what
		// the recording measured, and nothing is claimed as read.
		if h.Visibility != VisibilityInferred || h.CertRequest != nil || h.ClientCertificate != nil || h.Inferred == nil {
			t.Fatalf("visibility %s, cert request %v, client certificate %v, inferred %v: want inferred, neither read",
				h.Visibility, h.CertRequest, h.ClientCertificate, h.Inferred)
		}
		wantReq, wantSent := No, No
		if notes["cert_request"] != "none" {
			wantReq = Yes
		}
		if notes["client_cert_sent"] == "true" {
			wantSent = Yes
		}
		if inf := h.Inferred; inf.CertRequested != wantReq || inf.CertSent != wantSent {
			t.Errorf("inferred requested %s sent %s, the recording says %s %s (%s)", inf.CertRequested, inf.CertSent, wantReq, wantSent, inf.Evidence)
		}
		// The inferred message length bounds the issuer list the recording measured.
		if ib, _ := strconv.Atoi(notes["issuer_bytes"]); wantReq == Yes && h.Inferred.CertRequestLen < ib {
			t.Errorf("inferred CertificateRequest of %d bytes cannot hold the %d-byte issuer list", h.Inferred.CertRequestLen, ib)
		}
		if h.Phase == PhaseRenegotiation && (len(h.ClientRecords) == 0 || len(h.ServerRecords) == 0) {
			t.Errorf("encrypted records client %v server %v: want both sides' lengths", h.ClientRecords, h.ServerRecords)
		}
	case notes["cert_request"] == "none":
		if h.Visibility != VisibilityClear || h.CertRequest != nil || h.ClientCertificate != nil {
			t.Errorf("visibility %s, cert request %v, client certificate %v: want clear and neither",
				h.Visibility, h.CertRequest, h.ClientCertificate)
		}
	default:
		if h.Visibility != VisibilityClear {
			t.Errorf("visibility %s, want clear", h.Visibility)
		}
		checkCertRequestNotes(t, notes, h)
	}

	if alert := notes["server_alert"]; alert != "" {
		var level, desc int
		if _, err := fmt.Sscanf(alert, "level %d description %d", &level, &desc); err != nil {
			t.Fatalf("note server_alert %q: %v", alert, err)
		}
		n := len(h.Alerts)
		if h.End != EndAlert || n == 0 || h.ServerFinished {
			t.Fatalf("end %s, alerts %v, server finished %v: want the server's alert to end the handshake", h.End, h.Alerts, h.ServerFinished)
		}
		if a := h.Alerts[n-1]; a.From != FromServer || a.Encrypted || int(a.Level) != level || int(a.Description) != desc {
			t.Errorf("last alert %+v, want a clear one from the server, level %d description %d", a, level, desc)
		}
	} else {
		for _, h := range hs {
			if h.End != EndFinished || len(h.Alerts) > 0 {
				t.Errorf("handshake %d: end %s, alerts %v; want finished without alerts", h.Index, h.End, h.Alerts)
			}
			if h.Version == VersionTLS12 && (!h.ClientFinished || !h.ServerFinished) {
				t.Errorf("handshake %d: finished client %v server %v", h.Index, h.ClientFinished, h.ServerFinished)
			}
		}
	}
}

// checkCertRequestNotes checks a clear CertificateRequest and the client's answer.
func checkCertRequestNotes(t *testing.T, notes map[string]string, h *Handshake) {
	t.Helper()
	cr := h.CertRequest
	if cr == nil {
		t.Fatal("no CertificateRequest")
	}
	sum := 0
	for _, dn := range cr.Issuers {
		sum += 2 + len(dn.Raw)
		if _, err := dn.Name(); err != nil {
			t.Errorf("issuer %x: %v", dn.Raw, err)
		}
	}
	if got := strconv.Itoa(len(cr.Issuers)); got != notes["issuer_count"] {
		t.Errorf("%s issuers, notes say %s", got, notes["issuer_count"])
	}
	if got := strconv.Itoa(cr.IssuerBytes); got != notes["issuer_bytes"] || sum != cr.IssuerBytes {
		t.Errorf("issuer_bytes %s (DNs sum to %d), notes say %s", got, sum, notes["issuer_bytes"])
	}
	if got := strconv.Itoa(cr.Records); got != notes["cert_request_records"] {
		t.Errorf("CertificateRequest in %s records, notes say %s", got, notes["cert_request_records"])
	}
	if !h.ServerHelloDone {
		t.Error("no ServerHelloDone after the CertificateRequest")
	}

	cc := h.ClientCertificate
	if cc == nil {
		t.Fatal("the client answered the request without a Certificate message")
	}
	sent := len(cc.Chain) > 0
	if strconv.FormatBool(sent) != notes["client_cert_sent"] {
		t.Fatalf("client sent %d certificates, notes say client_cert_sent=%s", len(cc.Chain), notes["client_cert_sent"])
	}
	if sent != h.ClientCertificateVerify {
		t.Errorf("client certificate sent %v but CertificateVerify %v", sent, h.ClientCertificateVerify)
	}
	if !sent {
		return
	}
	leaf, err := x509.ParseCertificate(cc.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.String() != notes["client_cert_subject"] || leaf.Issuer.String() != notes["client_cert_issuer"] {
		t.Errorf("client certificate %q issued by %q, notes say %q by %q",
			leaf.Subject, leaf.Issuer, notes["client_cert_subject"], notes["client_cert_issuer"])
	}
	listed := false
	for _, dn := range cr.Issuers {
		listed = listed || bytes.Equal(dn.Raw, leaf.RawIssuer)
	}
	if !listed {
		t.Errorf("the client certificate's issuer %q is not in the server's list", leaf.Issuer)
	}
}

// TestTranscriptFacts states, per recording, what the parser must report,
// independently of the golden files and of the notes.
func TestTranscriptFacts(t *testing.T) {
	const none = -1
	tests := []struct {
		name string
		// what the parser must say of the last handshake
		handshakes int
		phase      Phase
		visibility Visibility
		end        End
		// issuers, issuerBytes, records: the clear CertificateRequest, none if there is none.
		issuers, issuerBytes, minRecords int
		// clientCerts: the length of the client's chain, none without a Certificate message.
		clientCerts int
		alert       AlertDescription // a server alert that ended the handshake, or 0
	}{
		{"tls12-260ca-curl-cert", 1, PhaseInitial, VisibilityClear, EndFinished, 261, 60693, 4, 1, 0},
		{"tls12-3ca-curl-cert", 1, PhaseInitial, VisibilityClear, EndFinished, 3, 339, 1, 1, 0},
		{"tls12-3ca-curl-nocert", 1, PhaseInitial, VisibilityClear, EndFinished, 3, 339, 1, 0, 0},
		{"tls12-3ca-sclient-cert", 1, PhaseInitial, VisibilityClear, EndFinished, 3, 339, 1, 1, 0},
		{"tls12-3ca-sclient-nocert", 1, PhaseInitial, VisibilityClear, EndFinished, 3, 339, 1, 0, 0},
		{"tls12-nocanames-curl-nocert", 1, PhaseInitial, VisibilityClear, EndFinished, 0, 0, 1, 0, 0},
		{"tls12-norequest-curl", 1, PhaseInitial, VisibilityClear, EndFinished, none, none, none, none, 0},
		{"tls12-renegotiation-sclient", 2, PhaseRenegotiation, VisibilityInferred, EndFinished, none, none, none, none, 0},
		{"tls12-require-nocert", 1, PhaseInitial, VisibilityClear, EndAlert, 3, 339, 1, 0, AlertHandshakeFailure},
		{"tls13-3ca-curl-cert", 1, PhaseInitial, VisibilityInferred, EndFinished, none, none, none, none, 0},
		{"tls13-3ca-curl-nocert", 1, PhaseInitial, VisibilityInferred, EndFinished, none, none, none, none, 0},
		{"tls13-3ca-sclient-nocert", 1, PhaseInitial, VisibilityInferred, EndFinished, none, none, none, none, 0},
		{"tls13-norequest-curl", 1, PhaseInitial, VisibilityInferred, EndFinished, none, none, none, none, 0},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			res, _ := parseRecorded(t, loadTranscript(t, tt.name))
			hs := res.Handshakes
			if len(hs) != tt.handshakes {
				t.Fatalf("%d handshakes, want %d", len(hs), tt.handshakes)
			}
			h := hs[len(hs)-1]
			if h.Phase != tt.phase || h.Visibility != tt.visibility || h.End != tt.end {
				t.Errorf("phase %s visibility %s end %s, want %s %s %s", h.Phase, h.Visibility, h.End, tt.phase, tt.visibility, tt.end)
			}
			if cr := h.CertRequest; tt.issuers == none {
				if cr != nil {
					t.Errorf("a CertificateRequest with %d issuers, want none", len(cr.Issuers))
				}
			} else if cr == nil || len(cr.Issuers) != tt.issuers || cr.IssuerBytes != tt.issuerBytes || cr.Records < tt.minRecords {
				t.Errorf("cert request %+v, want %d issuers, %d bytes, >= %d records", cr, tt.issuers, tt.issuerBytes, tt.minRecords)
			}
			if cc := h.ClientCertificate; tt.clientCerts == none {
				if cc != nil {
					t.Errorf("a client Certificate with %d certificates, want none", len(cc.Chain))
				}
			} else if cc == nil || len(cc.Chain) != tt.clientCerts {
				t.Errorf("client certificate %+v, want %d certificates", cc, tt.clientCerts)
			}
			if tt.alert != 0 {
				if n := len(h.Alerts); n != 1 || h.Alerts[0] != (Alert{From: FromServer, Level: AlertFatal, Description: tt.alert}) {
					t.Errorf("alerts %+v, want one fatal %s from the server", h.Alerts, tt.alert)
				}
			}
		})
	}
	for _, rec := range loadTranscripts(t) {
		if !seen[rec.name] {
			t.Errorf("transcript %s has no row here", rec.name)
		}
	}
}
