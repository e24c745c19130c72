package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// goldenReport is what a transcript's handshakes come to: per handshake,
// the verdict and the findings (id, severity, predicts, summary, detail).
type goldenReport struct {
	Index    int       `json:"handshake"`
	Phase    string    `json:"phase"`
	Verdict  Verdict   `json:"verdict"`
	Certain  bool      `json:"verdict_certain"`
	Findings []Finding `json:"findings"`
}

// TestGoldenReports runs the parser's real-peer transcripts through
// Diagnose and compares with testdata/golden/NAME.json (-update rewrites).
// Validity is judged at the transcripts' recording date, so the golden
// files do not change as the certificates in them expire.
func TestGoldenReports(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "handshake", "testdata", "transcripts", "*.transcript"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".transcript")
		t.Run(name, func(t *testing.T) {
			tr, err := transcript.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			at := tr.Meta.Date
			if at.IsZero() {
				t.Fatal("transcript has no recording date")
			}
			p := handshake.NewParser(handshake.Options{})
			var hs []*handshake.Handshake
			for _, c := range tr.Chunks {
				dir := handshake.FromClient
				if c.Dir == transcript.ServerToClient {
					dir = handshake.FromServer
				}
				p.Feed(dir, c.Data)
				hs = append(hs, p.Drain()...)
			}
			hs = append(hs, p.Close()...)
			var got []goldenReport
			for _, h := range hs {
				r := Diagnose(h, Evidence{}, Options{Now: at})
				got = append(got, goldenReport{Index: h.Index, Phase: string(h.Phase), Verdict: r.Verdict, Certain: r.Certain, Findings: r.Findings})
			}
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./rules -run TestGoldenReports -update)", err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(string(b)) {
				t.Errorf("report differs from %s:\n%s", golden, b)
			}
			checkGoldenFacts(t, name, got)
		})
	}
}

// checkGoldenFacts states what each recording must come to, so a golden
// file rewritten with a wrong result cannot pass unnoticed.
func checkGoldenFacts(t *testing.T, name string, got []goldenReport) {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("no handshakes")
	}
	first := got[0]
	has := func(r goldenReport, id string) bool {
		for _, f := range r.Findings {
			if f.ID == id {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(name, "tls13-"):
		if first.Verdict == VerdictOK && first.Certain {
			t.Errorf("TLS 1.3 without keys cannot be certainly ok: %+v", first)
		}
	case name == "tls12-require-nocert":
		if first.Verdict != VerdictHandshakeFailed || !first.Certain || !has(first, "server-rejected-cert") {
			t.Errorf("required and refused: %+v", first)
		}
	case strings.HasSuffix(name, "-nocert"):
		if first.Verdict != Verdict4037 || !has(first, "client-cert-not-sent") {
			t.Errorf("no certificate sent: %+v", first)
		}
	case name == "tls12-260ca-curl-cert":
		// curl sent its certificate anyway: the list size warns about
		// other clients (SChannel's 16 KB), it is no 403.7 for this one.
		if !has(first, "issuer-list-too-large") || first.Verdict != VerdictOK || !first.Certain {
			t.Errorf("a 60 KB list, a certificate sent: %+v", first)
		}
	case name == "tls12-renegotiation-sclient":
		if len(got) != 2 || !has(got[1], "cert-request-by-renegotiation") {
			t.Errorf("renegotiation: %+v", got)
		}
	case strings.HasSuffix(name, "-cert") || strings.HasSuffix(name, "norequest-curl"):
		if first.Verdict != VerdictOK || !first.Certain {
			t.Errorf("want a certain ok: %+v", first)
		}
	}
}
