package transcript

import (
	"bytes"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

var record = flag.Bool("record", false, "TestRecordGolden writes the transcripts it records into "+goldenDir)

// goldenDir is where the handshake package's tests read transcripts from.
const goldenDir = "../../../handshake/testdata/transcripts"

// goldenPKI is the certificates every scenario shares: three client CAs
// (the client certificate is issued by the second, so it is neither first
// nor last in the list) and a separate server CA.
type goldenPKI struct {
	serverCA  *pkitest.Cert
	server    *pkitest.Cert
	clientCAs []*pkitest.Cert
	client    *pkitest.Cert
	manyCAs   []*pkitest.Cert // 260 long-named roots, then the client's CA
}

func newGoldenPKI(t *testing.T) *goldenPKI {
	p := &goldenPKI{serverCA: pkitest.NewCA(t, "certlens golden server CA")}
	p.server = p.serverCA.NewServer(t, "localhost")
	for i := 1; i <= 3; i++ {
		p.clientCAs = append(p.clientCAs, pkitest.NewCA(t, "", pkitest.WithSubject(pkix.Name{
			Country:            []string{"US"},
			Organization:       []string{"certlens test"},
			OrganizationalUnit: []string{"Client Certificate Authorities"},
			CommonName:         fmt.Sprintf("certlens Client CA %d", i),
		})))
	}
	p.client = p.clientCAs[1].NewClient(t, "", pkitest.WithSubject(pkix.Name{
		Organization: []string{"certlens test"},
		CommonName:   "certlens golden client",
	}))
	p.manyCAs = append(pkitest.ManyCAs(t, 260), p.clientCAs[1])
	return p
}

type clientKind int

const (
	curl clientKind = iota
	sClient
)

type scenario struct {
	name, description string
	tls13             bool
	verify            bool // -verify 1
	require           bool // -Verify 1
	noCANames         bool
	many              bool // 260 CAs + the client's CA instead of 3
	client            clientKind
	sendCert          bool
	renegotiate       bool // s_server asks by renegotiation ('R' on stdin)
	wantFail          bool // the client is expected to fail the handshake
}

var scenarios = []scenario{
	{name: "tls12-3ca-curl-cert", verify: true, sendCert: true,
		description: "TLS 1.2, s_server -verify 1 lists 3 CAs; curl sends a certificate issued by the second"},
	{name: "tls12-3ca-curl-nocert", verify: true,
		description: "TLS 1.2, s_server -verify 1 lists 3 CAs; curl has no certificate and sends an empty Certificate"},
	{name: "tls12-3ca-sclient-cert", verify: true, client: sClient, sendCert: true,
		description: "TLS 1.2, s_server -verify 1 lists 3 CAs; s_client sends a certificate issued by the second"},
	{name: "tls12-3ca-sclient-nocert", verify: true, client: sClient,
		description: "TLS 1.2, s_server -verify 1 lists 3 CAs; s_client has no certificate and sends an empty Certificate"},
	{name: "tls12-require-nocert", require: true, wantFail: true,
		description: "TLS 1.2, s_server -Verify 1 (certificate required) lists 3 CAs; curl sends none and the server answers with an alert"},
	{name: "tls12-260ca-curl-cert", verify: true, many: true, sendCert: true,
		description: "TLS 1.2, s_server -verify 1 lists 261 CAs (260 long names, then the client's CA): a ~60 KB CertificateRequest over several records; curl sends its certificate"},
	{name: "tls12-nocanames-curl-nocert", verify: true, noCANames: true,
		description: "TLS 1.2, s_server -verify 1 -no_ca_names: CertificateRequest with an empty issuer list; curl sends an empty Certificate"},
	{name: "tls12-norequest-curl",
		description: "TLS 1.2, s_server without -verify: no CertificateRequest"},
	{name: "tls13-3ca-curl-cert", tls13: true, verify: true, sendCert: true,
		description: "TLS 1.3, s_server -verify 1 lists 3 CAs (certificate_authorities, encrypted); curl sends a certificate issued by the second"},
	{name: "tls13-3ca-curl-nocert", tls13: true, verify: true,
		description: "TLS 1.3, s_server -verify 1 lists 3 CAs (encrypted); curl sends an empty Certificate"},
	{name: "tls13-3ca-sclient-nocert", tls13: true, verify: true, client: sClient,
		description: "TLS 1.3, s_server -verify 1 lists 3 CAs (encrypted); s_client sends an empty Certificate"},
	{name: "tls13-norequest-curl", tls13: true,
		description: "TLS 1.3, s_server without -verify: no CertificateRequest"},
	{name: "tls12-renegotiation-sclient", renegotiate: true, client: sClient, sendCert: true,
		description: "TLS 1.2, s_server asks for nothing at first, then renegotiates with a CertificateRequest listing 3 CAs ('R' on its stdin); s_client sends its certificate in the (encrypted) renegotiation"},
}

// TestRecordGolden records every scenario with openssl, curl and tshark
// and checks what the wire shows against what was configured. With
// -record it writes the golden transcripts the handshake package replays,
// under version control; without, it records into a temp dir, so that a
// new peer version that changes what the goldens rest on is seen in CI:
//
//	go test ./internal/testkit/transcript -run TestRecordGolden -record
func TestRecordGolden(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "tshark"} {
		peertest.Require(t, bin)
	}
	dir := t.TempDir()
	if *record {
		dir = goldenDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pki := newGoldenPKI(t)
	versions := map[string]string{
		"openssl": peertest.Version(t, "openssl"),
		"curl":    peertest.Version(t, "curl"),
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tr, keylog := recordScenario(t, pki, sc, versions)
			saveGolden(t, dir, tr, keylog)
		})
	}
}

func recordScenario(t *testing.T, pki *goldenPKI, sc scenario, versions map[string]string) (*Transcript, []byte) {
	dir := t.TempDir()
	cas := pki.clientCAs
	if sc.many {
		cas = pki.manyCAs
	}
	cfg := peertest.OpenSSLServerConfig{
		Cert: pki.server, ClientCAs: cas, TLS12: !sc.tls13, TLS13: sc.tls13,
		NoCANames: sc.noCANames, WWW: !sc.renegotiate,
	}
	switch {
	case sc.require:
		cfg.Verify, cfg.Require = 1, true
	case sc.verify:
		cfg.Verify = 1
	}
	if sc.renegotiate {
		cfg.Start = []peertest.StartOption{peertest.WithStdinPipe()}
		// Otherwise the client resumes its session and the abbreviated
		// handshake has no CertificateRequest.
		cfg.Extra = []string{"-no_resumption_on_reneg"}
	}
	addr, server := peertest.OpenSSLServer(t, cfg)
	rec, err := NewRecorder(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(rec.Addr(), ":")
	serverCAPath := filepath.Join(dir, "server-ca.pem")
	pkitest.WritePEM(t, serverCAPath, pki.serverCA)
	certPath, keyPath := pki.client.WriteFiles(t, dir, "client")
	keylogPath := filepath.Join(dir, "keylog")

	var client *peertest.Process
	var clientName string
	switch sc.client {
	case curl:
		clientName = "curl"
		args := []string{"-sS", "--max-time", "20", "--cacert", serverCAPath,
			"--resolve", "localhost:" + port + ":127.0.0.1", "-o", filepath.Join(dir, "body")}
		if sc.tls13 {
			args = append(args, "--tlsv1.3", "--tls-max", "1.3")
		} else {
			args = append(args, "--tlsv1.2", "--tls-max", "1.2")
		}
		if sc.sendCert {
			args = append(args, "--cert", certPath, "--key", keyPath)
		}
		args = append(args, "https://localhost:"+port+"/")
		client = peertest.Start(t, "curl", args, peertest.WithEnv("SSLKEYLOGFILE="+keylogPath))
	case sClient:
		clientName = "openssl s_client"
		args := []string{"s_client", "-connect", rec.Addr(), "-servername", "localhost",
			"-CAfile", serverCAPath, "-verify_return_error", "-keylogfile", keylogPath}
		if sc.tls13 {
			args = append(args, "-tls1_3")
		} else {
			args = append(args, "-tls1_2")
		}
		if sc.sendCert {
			args = append(args, "-cert", certPath, "-key", keyPath)
		}
		if sc.renegotiate {
			client = peertest.Start(t, "openssl", args, peertest.WithStdinPipe())
		} else {
			// -ign_eof: send the request, then read until the server closes.
			args = append(args, "-ign_eof")
			client = peertest.Start(t, "openssl", args, peertest.WithStdin(strings.NewReader("GET / HTTP/1.0\r\n\r\n")))
		}
	}

	if sc.renegotiate {
		renegotiate(t, server, client)
	}
	err = client.Wait(30 * time.Second)
	switch {
	case sc.wantFail && err == nil:
		t.Fatalf("%s succeeded, want a failed handshake:\n%s", clientName, client.Output())
	case !sc.wantFail && err != nil:
		t.Fatalf("%s: %v\n%s", clientName, err, client.Output())
	}
	if sc.client == curl && !sc.wantFail {
		body, _ := os.ReadFile(filepath.Join(dir, "body"))
		if !bytes.Contains(body, []byte("s_server")) {
			t.Fatalf("curl got no s_server status page: %q", body)
		}
	}
	if sc.client == sClient && !sc.renegotiate && !strings.Contains(client.Output(), "HTTP/1.0 200 ok") {
		t.Fatalf("s_client got no status page:\n%s", client.Output())
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	trs := rec.Transcripts()
	if len(trs) != 1 {
		t.Fatalf("recorded %d connections, want 1", len(trs))
	}
	tr := trs[0]
	if len(tr.Stream(ClientToServer)) == 0 || len(tr.Stream(ServerToClient)) == 0 {
		t.Fatalf("transcript lacks a direction: %d chunks", len(tr.Chunks))
	}
	keylog, err := os.ReadFile(keylogPath)
	if err != nil || len(keylog) == 0 {
		t.Fatalf("no key log from %s: %v", clientName, err)
	}

	tr.Meta = Meta{
		Name:        sc.name,
		Description: sc.description,
		Date:        time.Now().UTC().Truncate(time.Second),
		Peers: []Peer{
			{Role: "server", Program: "openssl s_server", Version: versions["openssl"], Command: commandLine(server)},
			{Role: "client", Program: clientName, Version: versions[strings.Fields(clientName)[0]], Command: commandLine(client)},
		},
		Notes: expectedNotes(pki, sc, cas),
	}
	checkWire(t, sc, tr, server)
	return tr, keylog
}

// renegotiate waits for the first handshake, types 'R' to s_server (verify
// peer + renegotiate, so the new handshake carries a CertificateRequest),
// proves the renegotiated session carries data both ways, then lets the
// client close.
func renegotiate(t *testing.T, server, client *peertest.Process) {
	t.Helper()
	if !server.WaitOutput("CIPHER is", 10*time.Second) || !client.WaitOutput("Verify return code", 10*time.Second) {
		t.Fatalf("first handshake did not complete:\nserver:\n%s\nclient:\n%s", server.Output(), client.Output())
	}
	fmt.Fprint(server.Stdin, "R\n")
	if !server.WaitOutput("SSL_do_handshake -> 1", 10*time.Second) {
		t.Fatalf("s_server did not start renegotiation:\n%s", server.Output())
	}
	// The client's data is read by s_server only once the new handshake,
	// with the client's certificate, is done.
	fmt.Fprint(client.Stdin, "after renegotiation\n")
	if !server.WaitOutput("after renegotiation", 10*time.Second) {
		t.Fatalf("no data after renegotiation:\nserver:\n%s\nclient:\n%s", server.Output(), client.Output())
	}
	fmt.Fprint(server.Stdin, "server reply\n")
	if !client.WaitOutput("server reply", 10*time.Second) {
		t.Fatalf("client got no reply:\n%s", client.Output())
	}
	client.Stdin.Close()
}

// expectedNotes states what the wire should show, from the configuration;
// checkWire adds what was measured.
func expectedNotes(pki *goldenPKI, sc scenario, cas []*pkitest.Cert) map[string]string {
	n := map[string]string{"tls_version": "TLS 1.2", "keylog": sc.name + ".keylog"}
	if sc.tls13 {
		n["tls_version"] = "TLS 1.3"
	}
	switch {
	case sc.renegotiate:
		n["cert_request"] = "renegotiation"
	case sc.verify || sc.require:
		n["cert_request"] = "initial"
	default:
		n["cert_request"] = "none"
	}
	if n["cert_request"] != "none" {
		count, size := 0, 0
		if !sc.noCANames {
			for _, ca := range cas {
				count++
				size += 2 + len(ca.Cert.RawSubject)
			}
		}
		n["issuer_count"] = strconv.Itoa(count)
		n["issuer_bytes"] = strconv.Itoa(size)
		n["client_cert_sent"] = strconv.FormatBool(sc.sendCert)
	}
	if sc.sendCert {
		n["client_cert_subject"] = pki.client.Cert.Subject.String()
		n["client_cert_issuer"] = pki.client.Cert.Issuer.String()
	}
	return n
}

// checkWire reads the records in clear and records what they show in the
// notes: how many records carried the CertificateRequest, the alerts.
func checkWire(t *testing.T, sc scenario, tr *Transcript, server *peertest.Process) {
	t.Helper()
	msgs, alerts, err := clearRecords(tr.Stream(ServerToClient))
	if err != nil {
		t.Fatalf("server stream: %v", err)
	}
	var sawCR bool
	for _, m := range msgs {
		if m.typ == 13 {
			sawCR = true
			tr.Meta.Notes["cert_request_records"] = strconv.Itoa(m.records)
		}
	}
	wantClearCR := tr.Meta.Notes["cert_request"] == "initial" && !sc.tls13
	if sawCR != wantClearCR {
		t.Errorf("CertificateRequest in clear: %v, want %v", sawCR, wantClearCR)
	}
	if sc.many {
		if n, _ := strconv.Atoi(tr.Meta.Notes["cert_request_records"]); n < 4 {
			t.Errorf("the 60 KB CertificateRequest came in %d records, want 4 or more", n)
		}
	}
	for _, a := range alerts {
		tr.Meta.Notes["server_alert"] = fmt.Sprintf("level %d description %d", a[0], a[1])
	}
	if sc.require {
		if len(alerts) == 0 {
			t.Errorf("no clear alert from the server; s_server said:\n%s", server.Output())
		}
		if !strings.Contains(server.Output(), "peer did not return a certificate") {
			t.Logf("s_server output:\n%s", server.Output())
		}
	}
}

type handshakeMsg struct {
	typ     byte
	length  int
	records int // records that carried part of it
}

// clearRecords walks TLS records up to the first ChangeCipherSpec (after
// which they are encrypted) and returns the handshake messages, with how
// many records each spanned, and the alerts in clear.
func clearRecords(stream []byte) ([]handshakeMsg, [][2]byte, error) {
	var hs []byte
	var recEnds []int // end offset in hs of each handshake record
	var alerts [][2]byte
	for len(stream) >= 5 {
		typ, n := stream[0], int(stream[3])<<8|int(stream[4])
		if len(stream) < 5+n {
			return nil, nil, errors.New("truncated record")
		}
		body := stream[5 : 5+n]
		stream = stream[5+n:]
		if typ == 20 {
			break
		}
		switch typ {
		case 21:
			if len(body) == 2 {
				alerts = append(alerts, [2]byte{body[0], body[1]})
			}
		case 22:
			hs = append(hs, body...)
			recEnds = append(recEnds, len(hs))
		}
	}
	var msgs []handshakeMsg
	for off := 0; off+4 <= len(hs); {
		n := int(hs[off+1])<<16 | int(hs[off+2])<<8 | int(hs[off+3])
		end := off + 4 + n
		if end > len(hs) {
			return nil, nil, fmt.Errorf("handshake type %d truncated", hs[off])
		}
		recs, start := 0, 0
		for _, e := range recEnds {
			if start < end && e > off {
				recs++
			}
			start = e
		}
		msgs = append(msgs, handshakeMsg{typ: hs[off], length: n, records: recs})
		off = end
	}
	return msgs, alerts, nil
}

// commandLine is p's command with temp paths cut to file names, so the
// metadata does not depend on where the recording ran.
func commandLine(p *peertest.Process) string {
	args := append([]string{p.Name}, p.Cmd.Args[1:]...)
	for i, a := range args {
		if filepath.IsAbs(a) {
			args[i] = filepath.Base(a)
		}
	}
	return strings.Join(args, " ")
}

// saveGolden writes NAME.transcript, NAME.pcap and NAME.keylog (the
// client's TLS secrets for this one connection, so TLS 1.3 and the
// renegotiation can be decrypted) into dir and cross-checks the pcap with
// tshark.
func saveGolden(t *testing.T, dir string, tr *Transcript, keylog []byte) {
	t.Helper()
	base := filepath.Join(dir, tr.Meta.Name)
	keylogPath := base + ".keylog"
	if err := os.WriteFile(keylogPath, keylog, 0o644); err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := tr.WritePcap(&pcap); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".pcap", pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sums := TsharkDNamesKeylog(t, base+".pcap", keylogPath)
	var got []string
	for _, s := range sums {
		got = append(got, fmt.Sprintf("frame %d: %d DNs, dnames_len %d", s.Frame, s.Count, s.DNamesLen))
	}
	if len(sums) > 0 {
		tr.Meta.Notes["tshark_dnames"] = strings.Join(got, "; ")
	}
	n := tr.Meta.Notes
	switch {
	case n["cert_request"] == "none" && len(sums) != 0:
		t.Errorf("tshark sees %d CertificateRequests, want none", len(sums))
	case n["cert_request"] != "none" && len(sums) != 1:
		t.Errorf("tshark sees %d CertificateRequests, want 1", len(sums))
	case len(sums) == 1 && (strconv.Itoa(sums[0].Count) != n["issuer_count"] || strconv.Itoa(sums[0].DNamesLen) != n["issuer_bytes"]):
		t.Errorf("tshark: %s; configured: %s DNs, %s bytes", got[0], n["issuer_count"], n["issuer_bytes"])
	}
	// The client's Certificate message, decrypted where needed: an empty
	// certificate_list is how "no certificate" looks on the wire.
	certLens := tsharkFields(t, base+".pcap", keylogPath, "tcp.srcport == 40000 && tls.handshake.type == 11", "tls.handshake.certificates_length")
	if want, ok := n["client_cert_sent"]; ok {
		if len(certLens) != 1 || (certLens[0] != "0") != (want == "true") {
			t.Errorf("tshark: client Certificate lengths %v, want one with a certificate sent = %s", certLens, want)
		}
	} else if len(certLens) != 0 {
		t.Errorf("tshark: client sent Certificate messages %v without being asked", certLens)
	}
	if err := tr.WriteFile(base + ".transcript"); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(base + ".transcript")
	if err != nil || len(back.Chunks) != len(tr.Chunks) {
		t.Fatalf("read back %s: %v", base, err)
	}
	t.Logf("%s: %d chunks, %d bytes client->server, %d bytes server->client; %v",
		tr.Meta.Name, len(tr.Chunks), len(tr.Stream(ClientToServer)), len(tr.Stream(ServerToClient)), got)
}

// tsharkFields returns one field of the packets matching filter, one value
// per line of tshark's output.
func tsharkFields(t *testing.T, pcapPath, keylogPath, filter, field string) []string {
	t.Helper()
	out, err := exec.Command(peertest.Require(t, "tshark"), "-r", pcapPath, "-o", "tls.keylog_file:"+keylogPath,
		"-Y", filter, "-T", "fields", "-e", field).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", filter, err)
	}
	return strings.Fields(string(out))
}
