package handshake

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/transcript"
)

func readKeyLogFile(tb testing.TB, path string) KeyLog {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	kl, bad, err := ReadKeyLog(f)
	if err != nil || bad != 0 {
		tb.Fatalf("%s: %d bad lines, %v", path, bad, err)
	}
	return kl
}

// TestDecryptRecordedTranscripts decrypts every recorded real-peer
// connection (OpenSSL s_server with curl and s_client, TLS 1.2 and 1.3)
// with the key log the client wrote, and checks that the decrypted
// messages decode to what the recording noted: the issuer list of an
// encrypted CertificateRequest (TLS 1.3, renegotiation) and the client's
// certificate.
func TestDecryptRecordedTranscripts(t *testing.T) {
	for _, rec := range loadTranscripts(t) {
		t.Run(rec.name, func(t *testing.T) {
			notes := rec.tr.Meta.Notes
			kl := readKeyLogFile(t, filepath.Join(transcriptDir, notes["keylog"]))
			c, s, sh := walkConn(t, rec.tr.Stream(transcript.ClientToServer), rec.tr.Stream(transcript.ServerToClient), kl)
			if err := errors.Join(c.err(), s.err()); err != nil {
				t.Fatal(err)
			}
			checkDecrypted(t, notes, c, s, sh)
		})
	}
}

func checkDecrypted(t *testing.T, notes map[string]string, c, s *walked, sh *ServerHello) {
	t.Helper()
	tls13 := sh.Version == VersionTLS13
	if got := sh.Version.String(); got != notes["tls_version"] {
		t.Errorf("version %s, notes %s", got, notes["tls_version"])
	}
	// The server's Finished decrypted: the keys were right. (A
	// renegotiation's own Finished is under its own keys, not read here.)
	if got := s.count(typeFinished); got != 1 && notes["server_alert"] == "" {
		t.Errorf("server: %d Finished decrypted, want 1 (messages %v)", got, msgTypes(s))
	}
	crMsg := s.find(typeCertificateRequest)
	if notes["cert_request"] == "none" {
		if crMsg != nil {
			t.Fatal("a CertificateRequest the recording did not note")
		}
		return
	}
	if crMsg == nil {
		t.Fatalf("no CertificateRequest among %v", msgTypes(s))
	}
	cr, err := ParseCertificateRequest(crMsg.body, tls13, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.Itoa(len(cr.Issuers)); got != notes["issuer_count"] {
		t.Errorf("issuer count %s, notes %s", got, notes["issuer_count"])
	}
	if got := strconv.Itoa(cr.IssuerBytes); got != notes["issuer_bytes"] {
		t.Errorf("issuer bytes %s, notes %s", got, notes["issuer_bytes"])
	}
	// The client's Certificate: for a renegotiation, the second one.
	var cert *plainMsg
	for i := range c.msgs {
		if c.msgs[i].typ == typeCertificate {
			cert = &c.msgs[i]
		}
	}
	if cert == nil {
		if notes["client_cert_sent"] == "false" && notes["server_alert"] != "" {
			return // TLS 1.2 client sent an empty one in clear, or none at all
		}
		t.Fatalf("no client Certificate among %v", msgTypes(c))
	}
	cm, err := parseCertificate(cert.body, tls13)
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.FormatBool(len(cm.Chain) > 0); got != notes["client_cert_sent"] {
		t.Errorf("client certificate sent %s, notes %s", got, notes["client_cert_sent"])
	}
	if len(cm.Chain) > 0 && notes["client_cert_subject"] != "" {
		leaf, err := x509.ParseCertificate(cm.Chain[0])
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Subject.String() != notes["client_cert_subject"] {
			t.Errorf("client certificate %q, notes %q", leaf.Subject, notes["client_cert_subject"])
		}
	}
}

func msgTypes(w *walked) []string {
	var out []string
	for _, m := range w.msgs {
		out = append(out, m.typ.String())
	}
	return out
}

func TestRecordCipherRejectsDamage(t *testing.T) {
	rec := loadTranscript(t, "tls13-3ca-curl-cert")
	kl := readKeyLogFile(t, filepath.Join(transcriptDir, rec.tr.Meta.Notes["keylog"]))
	server := splitRecords(t, rec.tr.Stream(transcript.ServerToClient))
	ch, _ := parseClientHello(splitRecords(t, rec.tr.Stream(transcript.ClientToServer))[0].body[4:])
	sh, _ := parseServerHello(server[0].body[4:])
	sec, _ := kl.Lookup([32]byte(ch.Random))
	var first rawRecord
	for _, r := range server[1:] {
		if r.typ == ContentApplicationData {
			first = r
			break
		}
	}
	open := func(body []byte, typ ContentType) error {
		rc, err := newTLS13Cipher(sh.CipherSuite, sec.ServerHandshake)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = rc.Open(nil, typ, 0x0303, body)
		return err
	}
	if err := open(first.body, ContentApplicationData); err != nil {
		t.Fatalf("the untouched record: %v", err)
	}
	flipped := bytes.Clone(first.body)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		body []byte
		typ  ContentType
	}{
		"a flipped tag bit":          {flipped, ContentApplicationData},
		"a header type that differs": {first.body, ContentHandshake},
		"one byte short":             {first.body[:len(first.body)-1], ContentApplicationData},
		"shorter than a tag":         {first.body[:10], ContentApplicationData},
		"empty":                      {nil, ContentApplicationData},
		"longer than any record":     {make([]byte, maxCiphertext+1), ContentApplicationData},
	}
	for name, tc := range cases {
		if err := open(tc.body, tc.typ); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	// A wrong key, as from a key log line of another connection.
	rc, _ := newTLS13Cipher(sh.CipherSuite, sec.ClientHandshake)
	if _, _, err := rc.Open(nil, ContentApplicationData, 0x0303, first.body); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: %v", err)
	}
	// The sequence number moves on failures too: the peers counted the record.
	if rc.Seq() != 1 {
		t.Errorf("seq %d after one failed Open, want 1", rc.Seq())
	}
}

func TestSecretNeverPrints(t *testing.T) {
	e, ok, err := ParseKeyLogLine("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var s Secrets
	s.Set(e.Label, e.Secret)
	for _, out := range []string{
		fmtAll(e), fmtAll(s), fmtAll(e.Secret), fmtAll(&s),
	} {
		if strings.Contains(out, "cdcd") || strings.Contains(out, "205") || strings.Contains(out, "\xcd") {
			t.Errorf("secret bytes printed: %q", out)
		}
	}
}

// fmtAll prints v every way a log line might.
func fmtAll(v any) string {
	j, _ := json.Marshal(v)
	return fmt.Sprintf("%v %+v %#v %s %x %q", v, v, v, v, v, v) + string(j)
}

func TestParseKeyLogLine(t *testing.T) {
	cr := strings.Repeat("0a", 32)
	cases := []struct {
		name, line string
		ok         bool
		bad        bool
	}{
		{"TLS 1.2 master secret", "CLIENT_RANDOM " + cr + " " + strings.Repeat("11", 48), true, false},
		{"TLS 1.3 secret with CRLF", "SERVER_HANDSHAKE_TRAFFIC_SECRET " + cr + " " + strings.Repeat("22", 32) + "\r", true, false},
		{"comment", "# SSL/TLS secrets log file, generated by OpenSSL", false, false},
		{"blank", "   ", false, false},
		{"exporter secret is not needed", "EXPORTER_SECRET " + cr + " " + strings.Repeat("33", 32), false, false},
		{"NSS RSA premaster line", "RSA 2ef027344c7c9475 " + strings.Repeat("44", 48), false, false},
		{"two fields", "CLIENT_RANDOM " + cr, false, true},
		{"short client_random", "CLIENT_RANDOM abcd " + strings.Repeat("11", 48), false, true},
		{"client_random not hex", "CLIENT_RANDOM " + strings.Repeat("zz", 32) + " " + strings.Repeat("11", 48), false, true},
		{"odd secret", "CLIENT_RANDOM " + cr + " 123", false, true},
		{"secret longer than any hash", "CLIENT_RANDOM " + cr + " " + strings.Repeat("11", 65), false, true},
		{"line longer than the cap", "CLIENT_RANDOM " + cr + " " + strings.Repeat("1", 600), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok, err := ParseKeyLogLine(tc.line)
			if ok != tc.ok || (err != nil) != tc.bad {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if err != nil && (strings.Contains(err.Error(), "1111") || !errors.Is(err, ErrKeyLog)) {
				t.Errorf("error %q quotes the secret or is not ErrKeyLog", err)
			}
			if ok && e.ClientRandom[0] != 0x0a {
				t.Errorf("client_random %x", e.ClientRandom)
			}
		})
	}
}

func TestReadKeyLogSkipsBrokenLines(t *testing.T) {
	cr1, cr2 := strings.Repeat("01", 32), strings.Repeat("02", 32)
	in := "# header\nCLIENT_RANDOM " + cr1 + " " + strings.Repeat("aa", 48) + "\n" +
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET " + cr2 + " " + strings.Repeat("bb", 32) + "\n" +
		strings.Repeat("x", 10000) + "\n" + // a runaway line, dropped whole
		"SERVER_HANDSHAKE_TRAFFIC_SECRET " + cr2 + " " + strings.Repeat("cc", 32) + "\n" +
		"CLIENT_RANDOM " + cr1[:10] // cut by a writer still appending
	kl, bad, err := ReadKeyLog(strings.NewReader(in))
	if err != nil || bad != 2 {
		t.Fatalf("bad %d, err %v; want 2 bad lines", bad, err)
	}
	s1, ok1 := kl.Lookup([32]byte(bytes.Repeat([]byte{1}, 32)))
	s2, ok2 := kl.Lookup([32]byte(bytes.Repeat([]byte{2}, 32)))
	if !ok1 || len(s1.Master) != 48 || !ok2 || !s2.Has13() || s2.Master != nil {
		t.Fatalf("secrets: %v %v / %v %v", ok1, s1, ok2, s2)
	}
}
