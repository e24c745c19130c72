package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestServeConnectionVerdict: IIS's default, played by Apache (per-location
// SSLVerifyClient require over TLS 1.2): the certificate is asked for by
// renegotiation after the request. `certlens serve --decrypt-keylog
// --client-cert-host` reads both handshakes of curl's connection with its
// key log: the first waits (unknown), the renegotiation decides, and the
// "connection closed" event says what curl got: ok with a certificate,
// handshake_failed (Apache's alert) without.
func TestServeConnectionVerdict(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	serverCA := pkitest.NewCA(t, "certlens verdict server CA")
	clientCA := pkitest.NewCA(t, "certlens verdict client CA")
	dir := t.TempDir()
	caPath := filepath.Join(dir, "server-ca.pem")
	pkitest.WritePEM(t, caPath, serverCA)
	certPath, keyPath := clientCA.NewClient(t, "alice@verdict.test").WriteFiles(t, dir, "alice")
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: serverCA.NewServer(t, "127.0.0.1"), ClientCAs: []*pkitest.Cert{clientCA}, TLS12Only: true})
	_, port, _ := strings.Cut(addr, ":")
	keylog := filepath.Join(dir, "sslkeys.log")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServe(t, "serve", "--listen", listen, "--admin-listen=", "--allow-ports", port,
		"--decrypt-keylog", keylog, "--client-cert-host", "127.0.0.1")
	sp.next("listening")

	for _, tc := range []struct {
		name    string
		cert    bool
		verdict string
	}{{"with a certificate", true, "ok"}, {"without", false, "handshake_failed"}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-sS", "--noproxy", "", "-x", "http://" + listen, "--cacert", caPath, "-w", "\n%{http_code}"}
			if tc.cert {
				args = append(args, "--cert", certPath, "--key", keyPath)
			}
			cmd := exec.Command(curlBin, append(args, "https://"+addr+peertest.ApacheSecurePath)...)
			cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
			out, err := cmd.CombinedOutput()
			switch {
			case tc.cert && (err != nil || !strings.HasSuffix(string(out), "\n200")):
				t.Fatalf("curl with a certificate: %v\n%s", err, out)
			case !tc.cert && (err == nil || !strings.Contains(string(out), "alert handshake failure")):
				t.Fatalf("curl without a certificate: %v, want Apache's alert\n%s", err, out)
			}
			init, reneg, closed := sp.next("handshake"), sp.next("handshake"), sp.next("connection closed")
			if init["conn_id"] != reneg["conn_id"] || reneg["conn_id"] != closed["conn_id"] {
				t.Fatalf("conn_ids %v %v %v", init["conn_id"], reneg["conn_id"], closed["conn_id"])
			}
			if init["verdict"] != "unknown" || !strings.Contains(findingIDs(init), "cert-request-by-renegotiation") {
				t.Errorf("initial handshake: verdict %v findings %s", init["verdict"], findingIDs(init))
			}
			if reneg["phase"] != "renegotiation" || reneg["visibility"] != "decrypted" || get(reneg, "client_cert", "sent") != tc.cert {
				t.Errorf("renegotiation: phase %v visibility %v client_cert %v", reneg["phase"], reneg["visibility"], reneg["client_cert"])
			}
			for _, e := range []map[string]any{reneg, closed} {
				if e["verdict"] != tc.verdict || e["verdict_certain"] != true {
					t.Errorf("%v: verdict %v certain %v, want %s for sure", e["msg"], e["verdict"], e["verdict_certain"], tc.verdict)
				}
			}
		})
	}
}
