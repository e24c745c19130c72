package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
			init, reneg, closed := sp.nextHandshake(), sp.nextHandshake(), sp.nextClosed()
			if init.ConnID != reneg.ConnID || reneg.ConnID != closed.ConnID {
				t.Fatalf("conn_ids %v %v %v", init.ConnID, reneg.ConnID, closed.ConnID)
			}
			if init.Verdict != "unknown" || !slices.Contains(findingIDs(init), "cert-request-by-renegotiation") {
				t.Errorf("initial handshake: verdict %v findings %v", init.Verdict, findingIDs(init))
			}
			if reneg.Phase != "renegotiation" || reneg.Visibility != "decrypted" || reneg.ClientCert == nil || reneg.ClientCert.Sent != tc.cert {
				t.Errorf("renegotiation: phase %v visibility %v client_cert %+v", reneg.Phase, reneg.Visibility, reneg.ClientCert)
			}
			if reneg.Verdict != tc.verdict || !reneg.VerdictCertain {
				t.Errorf("handshake: verdict %v certain %v, want %s for sure", reneg.Verdict, reneg.VerdictCertain, tc.verdict)
			}
			if closed.Verdict != tc.verdict || closed.VerdictCertain == nil || !*closed.VerdictCertain {
				t.Errorf("connection closed: verdict %v certain %v, want %s for sure", closed.Verdict, closed.VerdictCertain, tc.verdict)
			}
		})
	}
}
