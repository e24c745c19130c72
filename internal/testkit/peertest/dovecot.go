package peertest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// DovecotConfig describes a Dovecot IMAP and POP3 server offering STARTTLS.
type DovecotConfig struct {
	// Cert is the server's certificate. Required.
	Cert *pkitest.Cert
	// ClientCAs go to ssl_ca with ssl_verify_client_cert = yes: the server
	// asks every client for a certificate after STARTTLS, with their
	// names as the issuer list.
	ClientCAs []*pkitest.Cert
}

// Dovecot starts dovecot in the foreground with its configuration, run
// and state directories in a fresh directory, IMAP and POP3 (both with
// STARTTLS) on free 127.0.0.1 ports, logging to the process output. It
// returns the two addresses once both accept connections; dovecot stops
// when the test ends.
func Dovecot(tb testing.TB, cfg DovecotConfig) (imapAddr, pop3Addr string) {
	tb.Helper()
	bin := sbin(tb, "dovecot", "dovecot-imapd dovecot-pop3d")
	if cfg.Cert == nil {
		tb.Fatal("peertest: DovecotConfig.Cert is nil")
	}
	dir := UserDir(tb, "dovecot")
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	caPath := filepath.Join(dir, "client-cas.pem")
	pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
	imapPort, pop3Port := FreePort(tb), FreePort(tb)
	conf := fmt.Sprintf(`protocols = imap pop3
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
info_log_path = /dev/stderr
default_internal_user = dovecot
default_login_user = dovenull
ssl = yes
ssl_cert = <%[2]s
ssl_key = <%[3]s
ssl_ca = <%[4]s
ssl_verify_client_cert = yes
auth_mechanisms = plain
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=%[1]s/home/%%u
}
service imap-login {
  inet_listener imap {
    port = %[5]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[6]d
  }
  inet_listener pop3s {
    port = 0
  }
}
`, dir, certPath, keyPath, caPath, imapPort, pop3Port)
	confPath := filepath.Join(dir, "dovecot.conf")
	writeFile(tb, confPath, conf)
	GiveTo(tb, dir, "dovecot")
	Start(tb, bin, []string{"-F", "-c", confPath}, WithDir(dir))
	imapAddr = "127.0.0.1:" + strconv.Itoa(imapPort)
	pop3Addr = "127.0.0.1:" + strconv.Itoa(pop3Port)
	WaitTCP(tb, imapAddr, time.Minute)
	WaitTCP(tb, pop3Addr, time.Minute)
	return imapAddr, pop3Addr
}
