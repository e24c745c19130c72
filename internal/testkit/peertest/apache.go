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

// ApacheSecurePath is the one location of an Apache server that requires a
// client certificate. Everything else answers without asking for one.
const ApacheSecurePath = "/secure/"

// ApacheConfig describes an Apache httpd TLS server.
type ApacheConfig struct {
	// Cert is the server certificate; its intermediates are sent as its
	// chain. Required.
	Cert *pkitest.Cert
	// ClientCAs go to SSLCACertificateFile in this order: they verify client
	// certificates and form the issuer list of the CertificateRequest.
	ClientCAs []*pkitest.Cert
	// TLS12Only limits the server to TLS 1.2, so that the certificate for
	// ApacheSecurePath is asked for by renegotiation after the request has
	// been read, as IIS does by default. Otherwise a TLS 1.3 client gets a
	// post-handshake CertificateRequest if it offered that, and a 403 if not.
	TLS12Only bool
	// VerifyDepth is SSLVerifyDepth; 0 means 2.
	VerifyDepth int
}

// Apache starts Debian's apache2 (prefork MPM, modules loaded by path from
// /usr/lib/apache2/modules) on a free 127.0.0.1 port, in the foreground,
// with its own configuration, ServerRoot, PidFile and runtime dir in the
// test's temp dir and its error and access logs on the process output. It
// returns the address once Apache accepts connections.
//
// Every page is an SSI page showing "verify=SSL_CLIENT_VERIFY
// subject=SSL_CLIENT_S_DN": "/" answers without a certificate, and
// ApacheSecurePath has `SSLVerifyClient require` in its <Location> only.
// Apache ends the TLS handshake, reads the request, and only then asks for
// the certificate (renegotiation in TLS 1.2).
func Apache(tb testing.TB, cfg ApacheConfig) (addr string) {
	tb.Helper()
	bin := Require(tb, "apache2")
	if cfg.Cert == nil {
		tb.Fatal("peertest: ApacheConfig.Cert is nil")
	}
	modules := "/usr/lib/apache2/modules"
	if _, err := os.Stat(filepath.Join(modules, "mod_ssl.so")); err != nil {
		missingPeer(tb, "apache2 mod_ssl ("+filepath.Join(modules, "mod_ssl.so")+")", "apache2")
	}
	dir := tb.TempDir()
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	caPath := filepath.Join(dir, "client-cas.pem")
	pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
	runDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	docRoot := apacheDocRoot(tb)
	addr = "127.0.0.1:" + strconv.Itoa(FreePort(tb))

	depth := cfg.VerifyDepth
	if depth <= 0 {
		depth = 2
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "ServerRoot %q\nServerName localhost\nPidFile %q\nDefaultRuntimeDir %q\n", dir, filepath.Join(dir, "apache2.pid"), runDir)
	for _, m := range []string{"mpm_prefork", "authz_core", "ssl", "socache_shmcb", "dir", "include"} {
		fmt.Fprintf(&conf, "LoadModule %s_module %s/mod_%s.so\n", m, modules, m)
	}
	if os.Geteuid() == 0 {
		// Apache refuses to serve as root; its children become www-data,
		// hence the world-readable document root.
		conf.WriteString("User www-data\nGroup www-data\n")
	}
	protocols := "-all +TLSv1.2 +TLSv1.3"
	if cfg.TLS12Only {
		protocols = "-all +TLSv1.2"
	}
	fmt.Fprintf(&conf, `StartServers 1
MinSpareServers 1
MaxSpareServers 2
ErrorLog /proc/self/fd/2
LogLevel warn ssl:info
LogFormat "%%a \"%%r\" %%>s %%{SSL_PROTOCOL}x verify=%%{SSL_CLIENT_VERIFY}x" certlens
CustomLog /proc/self/fd/2 certlens
Listen %s
SSLSessionCache "shmcb:%s(512000)"
<VirtualHost %s>
	SSLEngine on
	SSLProtocol %s
	SSLCertificateFile %q
	SSLCertificateKeyFile %q
	SSLCACertificateFile %q
	SSLVerifyDepth %d
	DocumentRoot %q
	DirectoryIndex index.shtml
	<Directory %q>
		Require all granted
		Options +Includes
		ForceType text/html
		SetOutputFilter INCLUDES
		SSLOptions +StdEnvVars
	</Directory>
	<Location %s>
		SSLVerifyClient require
	</Location>
</VirtualHost>
`, addr, filepath.Join(runDir, "ssl_scache"), addr, protocols, certPath, keyPath, caPath, depth,
		docRoot, docRoot, ApacheSecurePath)
	confPath := filepath.Join(dir, "apache2.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		tb.Fatalf("peertest: write %s: %v", confPath, err)
	}
	// -DFOREGROUND keeps the parent in the process group Start made (the
	// NO_DETACH define would call setsid); the -f file is the whole
	// configuration, so Debian's envvars and /etc/apache2 play no part.
	p := Start(tb, bin, []string{"-f", confPath, "-DFOREGROUND"}, WithDir(dir))
	// Apache listens before it has checked the whole configuration, and
	// writes its pid file only once it has.
	pidFile := filepath.Join(dir, "apache2.pid")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			tb.Fatalf("peertest: apache2 did not start (no %s):\n%s", pidFile, p.tail(tailBytes))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitListening(tb, p, addr, 15*time.Second)
	return addr
}

// apacheDocRoot makes a world-readable directory for Apache's children
// (www-data when the test runs as root) with the two SSI pages. The test's
// own temp dir is private to its user, so this one lives beside it.
func apacheDocRoot(tb testing.TB) string {
	tb.Helper()
	root, err := os.MkdirTemp("", "certlens-apache-docroot-")
	if err != nil {
		tb.Fatalf("peertest: apache docroot: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(root) })
	page := `verify=<!--#echo var="SSL_CLIENT_VERIFY" --> subject=<!--#echo var="SSL_CLIENT_S_DN" -->` + "\n"
	secure := filepath.Join(root, strings.Trim(ApacheSecurePath, "/"))
	for _, d := range []string{root, secure} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		// MkdirTemp made root 0700 whatever the umask.
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "index.shtml"), []byte(page), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}
