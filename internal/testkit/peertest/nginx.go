package peertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// NginxConfig describes an nginx TLS server.
type NginxConfig struct {
	// Cert is the server certificate; its intermediates are sent as its
	// chain. Required.
	Cert *pkitest.Cert
	// ClientCAs go to ssl_client_certificate in this order: they verify
	// client certificates and form the issuer list of the CertificateRequest.
	ClientCAs []*pkitest.Cert
	// VerifyClient is ssl_verify_client: "on", "optional",
	// "optional_no_ca", or "" for off (no certificate is requested).
	VerifyClient string
	// VerifyDepth is ssl_verify_depth; 0 means 2, enough for a leaf issued
	// by an intermediate.
	VerifyDepth int
	// Protocols is ssl_protocols, e.g. "TLSv1.2"; "" keeps nginx's default.
	Protocols string
	// Extra directives, appended to the server block.
	Extra string
}

// NginxPage describes what the server answers for any path: 200 with the
// body "verify=$ssl_client_verify" (SUCCESS, NONE or FAILED:reason) when no
// certificate is asked for or the client's one verified, otherwise 403 with
// the same body, the way IIS answers 403.7 on a site that requires one.
// With VerifyClient "on", nginx itself answers 400 before that when the
// client sent no certificate or a bad one.
const NginxPage = "verify=$ssl_client_verify"

// Nginx starts nginx on a free 127.0.0.1 port, as the current user, in the
// foreground as a single process, with its prefix, configuration, pid file
// and temp paths in the test's temp dir and its error and access logs on
// the process output (shown when the test fails). It returns the address
// once nginx accepts connections; nginx stops when the test ends.
func Nginx(tb testing.TB, cfg NginxConfig) (addr string) {
	tb.Helper()
	bin := Require(tb, "nginx")
	if cfg.Cert == nil {
		tb.Fatal("peertest: NginxConfig.Cert is nil")
	}
	dir := tb.TempDir()
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	addr = "127.0.0.1:" + strconv.Itoa(FreePort(tb))

	var srv strings.Builder
	fmt.Fprintf(&srv, "\t\tlisten %s ssl;\n", addr)
	fmt.Fprintf(&srv, "\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n", certPath, keyPath)
	if cfg.Protocols != "" {
		fmt.Fprintf(&srv, "\t\tssl_protocols %s;\n", cfg.Protocols)
	}
	if len(cfg.ClientCAs) > 0 {
		caPath := filepath.Join(dir, "client-cas.pem")
		pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
		fmt.Fprintf(&srv, "\t\tssl_client_certificate %s;\n", caPath)
	}
	deny := ""
	if cfg.VerifyClient != "" {
		depth := cfg.VerifyDepth
		if depth <= 0 {
			depth = 2
		}
		fmt.Fprintf(&srv, "\t\tssl_verify_client %s;\n\t\tssl_verify_depth %d;\n", cfg.VerifyClient, depth)
		deny = "\t\t\tif ($ssl_client_verify != SUCCESS) { return 403 \"" + NginxPage + "\\n\"; }\n"
	}
	srv.WriteString("\t\tlocation / {\n\t\t\tdefault_type text/plain;\n" + deny +
		"\t\t\treturn 200 \"" + NginxPage + "\\n\";\n\t\t}\n")
	srv.WriteString(cfg.Extra)

	// master_process off keeps nginx one process that never switches user,
	// so root (CI) and a developer run it alike. Every path nginx would
	// otherwise take from its build (/var/lib/nginx, /run/nginx.pid,
	// /var/log/nginx) is set here, so it touches nothing outside dir.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	log_format certlens '$remote_addr "$request" $status $ssl_protocol verify=$ssl_client_verify';
	access_log /dev/stderr certlens;
	server {
%[2]s	}
}
`, dir, srv.String())
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatalf("peertest: write %s: %v", confPath, err)
	}
	// -e stderr: the error log nginx opens before it has read the file.
	p := Start(tb, bin, []string{"-p", dir + "/", "-c", confPath, "-e", "stderr"}, WithDir(dir))
	waitListening(tb, p, addr, 10*time.Second)
	return addr
}

// waitListening waits until addr accepts connections, failing early with
// the output tail if the server exits first (a configuration error).
func waitListening(tb testing.TB, p *Process, addr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for probe(addr) != nil {
		if p.Exited() {
			tb.Fatalf("peertest: %s exited before listening on %s: %v\n%s", p.Name, addr, p.err, p.tail(tailBytes))
		}
		if time.Now().After(deadline) {
			tb.Fatalf("peertest: %s not listening on %s after %v:\n%s", p.Name, addr, timeout, p.tail(tailBytes))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
