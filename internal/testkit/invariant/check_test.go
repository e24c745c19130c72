package invariant

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// CheckEnv names the directory TestSuiteEvents checks: .ci/run sets it
// after `go test ./...` has filled CERTLENS_EVENTS_DIR.
const CheckEnv = "CERTLENS_EVENTS_CHECK"

// TestSuiteEvents checks every event the test suite collected. It runs
// only when asked (CheckEnv), once the suite is over: run beside the other
// packages it would see half of their events.
func TestSuiteEvents(t *testing.T) {
	dir := os.Getenv(CheckEnv)
	if dir == "" {
		t.Skip(CheckEnv + " is not set: run the suite with " + DirEnv + "=DIR, then this test with " + CheckEnv + "=DIR (.ci/run does)")
	}
	s, err := CheckDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Handshakes == 0 {
		t.Fatalf("no handshake event collected in %s: is %s set for the suite, and do the harnesses collect?", dir, DirEnv)
	}
	t.Logf("%d events (%d handshakes, %d connection closed) from %d harnesses in %d processes; %d connections left open by their harness",
		s.Events, s.Handshakes, s.Closed, s.Sources, s.Files, s.Open())
	t.Logf("handshakes by mode: %s", counts(s.ByMode))
	t.Logf("handshakes by verdict: %s", counts(s.ByVerdict))
	for i, v := range s.Violations {
		if i == 50 {
			t.Errorf("... and %d more", len(s.Violations)-i)
			break
		}
		t.Error(v)
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// TestInvariants: each invariant catches the event that breaks it, and
// passes the events that keep it.
func TestInvariants(t *testing.T) {
	const (
		cert403  = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"clear","client_cert":{"sent":true},"verdict":"403.7","verdict_certain":false}`
		certOK   = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"clear","client_cert":{"sent":true},"verdict":"ok","verdict_certain":true}`
		noCert   = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"clear","client_cert":{"sent":false},"verdict":"403.7","verdict_certain":false,"findings":[{"id":"client-cert-not-sent","predicts":"403.7"}]}`
		http200  = `{"msg":"handshake","conn_id":"1","mode":"intercept","handshake":0,"visibility":"clear","http_status":200,"verdict":"403.16","verdict_certain":false}`
		http302  = `{"msg":"handshake","conn_id":"1","mode":"probe","handshake":0,"visibility":"clear","http_status":302,"verdict":"500.0","verdict_certain":true}`
		http403  = `{"msg":"handshake","conn_id":"1","mode":"intercept","handshake":0,"visibility":"clear","http_status":403,"verdict":"403.7","verdict_certain":true}`
		inferred = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"inferred","verdict":"ok","verdict_certain":true}`
		guessed  = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"inferred","verdict":"ok","verdict_certain":false}`
		waits    = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":0,"visibility":"decrypted","verdict":"unknown","verdict_certain":false,"findings":[{"id":"cert-request-by-renegotiation","predicts":"403.7"}]}`
		renegOK  = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":1,"phase":"renegotiation","visibility":"decrypted","client_cert":{"sent":true},"verdict":"ok","verdict_certain":true}`
		reneg403 = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":1,"phase":"renegotiation","visibility":"decrypted","client_cert":{"sent":true},"verdict":"403.16","verdict_certain":true}`
		reneg200 = `{"msg":"handshake","conn_id":"1","mode":"intercept","handshake":1,"phase":"renegotiation","visibility":"clear","http_status":200,"verdict":"unknown","verdict_certain":false}`
		unread   = `{"msg":"handshake","conn_id":"1","mode":"observe","handshake":1,"visibility":"encrypted","verdict":"unknown","verdict_certain":false}`
	)
	closed := func(verdict string, certain bool) string {
		if verdict == "" {
			return `{"msg":"connection closed","conn_id":"1"}`
		}
		return fmt.Sprintf(`{"msg":"connection closed","conn_id":"1","verdict":%q,"verdict_certain":%v}`, verdict, certain)
	}
	cases := []struct {
		name   string
		events []string
		want   []string // the invariants broken, in order
	}{
		{"a certificate sent, 403.7", []string{cert403, closed("403.7", false)}, []string{CertSentNot4037}},
		{"a certificate sent, ok", []string{certOK, closed("ok", true)}, nil},
		{"no certificate, 403.7 predicted", []string{noCert, closed("403.7", false)}, nil},
		{"HTTP 200, 403.16", []string{http200, closed("403.16", false)}, []string{AnsweredNotRefused, ConnectionAgrees}},
		{"HTTP 302, 500.0", []string{http302}, []string{AnsweredNotRefused}},
		{"HTTP 403, 403.7", []string{http403, closed("403.7", true)}, nil},
		{"inferred, certain", []string{inferred}, []string{InferredNotCertain}},
		{"inferred, not certain", []string{guessed, closed("ok", false)}, nil},
		{"the connection says ok, its handshake 403.7", []string{noCert, closed("ok", true)}, []string{ConnectionAgrees}},
		{"the connection has a verdict and no handshake", []string{closed("ok", true)}, []string{ConnectionAgrees}},
		{"no handshake, no verdict", []string{closed("", false)}, nil},
		{"the renegotiation carried the certificate", []string{waits, renegOK, closed("ok", true)}, nil},
		{"the renegotiation carried it, the connection stays 403.7", []string{waits, renegOK, closed("403.7", false)}, []string{ConnectionAgrees}},
		{"no renegotiation came: what was pending", []string{waits, closed("403.7", false)}, nil},
		{"no renegotiation came: pending stated as certain", []string{waits, closed("403.7", true)}, []string{ConnectionAgrees}},
		{"no renegotiation came: a verdict nothing predicted", []string{waits, closed("403.16", false)}, []string{ConnectionAgrees}},
		{"403.7, then a renegotiation carried the certificate", []string{noCert, renegOK, closed("ok", true)}, []string{LaterHandshakeDisproves}},
		{"403.7, then a renegotiation carried a certificate the server refused", []string{noCert, reneg403, closed("403.16", true)}, []string{LaterHandshakeDisproves}},
		{"403.16, then a renegotiation's request answered HTTP 200", []string{strings.Replace(cert403, "403.7", "403.16", 1), reneg200, closed("unknown", false)}, []string{LaterHandshakeDisproves}},
		{"ok, then a renegotiation refused: nothing disproved", []string{certOK, reneg403, closed("403.16", true)}, nil},
		{"403.7 pending as unknown, a later handshake nobody could read", []string{waits, unread, closed("unknown", false)}, nil},
		{"a later handshake nobody could read", []string{certOK, unread, closed("unknown", false)}, nil},
		{"a handshake after its connection closed", []string{certOK, closed("ok", true), renegOK}, []string{HandshakeBeforeClose}},
		{"analyze: the same stream again after an idle timeout", []string{strings.Replace(certOK, "observe", "analyze", 1), closed("ok", true), closed("", false),
			strings.Replace(cert403, "observe", "analyze", 1)}, []string{CertSentNot4037}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			for _, e := range tc.events {
				fmt.Fprintf(&b, `{"source":"test","event":%s}`+"\n", e)
			}
			s := NewSummary()
			if err := s.Read(strings.NewReader(b.String())); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range s.Violations {
				got = append(got, v.Invariant)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v", s.Violations, tc.want)
			}
		})
	}
}

// TestCollect: a source writes each JSON line once, whole, whatever the
// writes it came in, leaves out what is not an event, and two sources'
// connections stay apart.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	a, b := NewSource(t), NewSource(t)
	line := `{"msg":"handshake","conn_id":"1","handshake":0,"visibility":"clear","verdict":"ok","verdict_certain":true}` + "\n"
	_, _ = a.Write([]byte(line[:20]))
	_, _ = a.Write([]byte(line[20:] + "certlens probe report, not JSON\n" + `{"msg":"connection closed","conn_id":"1","verdict":"ok","verdict_certain":true}` + "\n"))
	b.Event("handshake", map[string]any{"conn_id": "1", "verdict": "403.7", "verdict_certain": false, "client_cert": map[string]bool{"sent": true}})
	var nilSource *Source
	_, _ = nilSource.Write([]byte(line))
	s, err := CheckDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 1 || s.Sources != 2 || s.Handshakes != 2 || s.Closed != 1 {
		t.Errorf("files %d sources %d handshakes %d closed %d, want 1 2 2 1", s.Files, s.Sources, s.Handshakes, s.Closed)
	}
	if len(s.Violations) != 1 || s.Violations[0].Invariant != CertSentNot4037 || !strings.Contains(s.Violations[0].Source, t.Name()) {
		t.Errorf("violations %v, want b's 403.7 with a certificate sent", s.Violations)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("events-%d.jsonl", os.Getpid()))); err != nil {
		t.Error(err)
	}
}
