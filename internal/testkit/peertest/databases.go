package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// postgresBin finds a PostgreSQL server binary: Debian installs them in
// /usr/lib/postgresql/VERSION/bin, off PATH; the newest version wins.
func postgresBin(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	if len(dirs) == 0 {
		missingPeer(tb, name, "postgresql")
		return ""
	}
	return dirs[0]
}

func pgVersion(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// PostgresConfig describes a PostgreSQL server that takes TLS connections.
type PostgresConfig struct {
	// Cert is the server's certificate. Required.
	Cert *pkitest.Cert
	// ClientCAs go to ssl_ca_file: the server then asks every TLS client
	// for a certificate, with their names as the issuer list.
	ClientCAs []*pkitest.Cert
	// MaxTLS is ssl_max_protocol_version, e.g. "TLSv1.2"; "" leaves it.
	MaxTLS string
}

// Postgres initialises a database cluster in a fresh directory and starts
// the server on a free 127.0.0.1 port, as the postgres system user when the
// test runs as root. pg_hba.conf takes only TLS over TCP, with certificate
// authentication ("hostssl all all 127.0.0.1/32 cert"): a client logs in as
// the user its certificate's CN names. It returns the address once the
// server accepts connections; the server stops when the test ends.
func Postgres(tb testing.TB, cfg PostgresConfig) (addr string) {
	tb.Helper()
	initdb := postgresBin(tb, "initdb")
	server := postgresBin(tb, "postgres")
	if cfg.Cert == nil {
		tb.Fatal("peertest: PostgresConfig.Cert is nil")
	}
	dir := UserDir(tb, "postgres")
	data := filepath.Join(dir, "data")
	init := Start(tb, initdb, []string{"-D", data, "-U", "postgres", "--auth=trust", "--no-sync"}, WithUser("postgres"), WithDir(dir))
	if err := init.Wait(2 * time.Minute); err != nil {
		tb.Fatalf("peertest: initdb: %v\n%s", err, init.tail(tailBytes))
	}
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	caPath := filepath.Join(dir, "client-cas.pem")
	port := FreePort(tb)
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(port),
		"unix_socket_directories = '" + dir + "'",
		"ssl = on",
		"ssl_cert_file = '" + certPath + "'",
		"ssl_key_file = '" + keyPath + "'",
		"log_connections = on",
		"fsync = off",
	}
	if len(cfg.ClientCAs) > 0 {
		pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
		conf = append(conf, "ssl_ca_file = '"+caPath+"'")
	}
	if cfg.MaxTLS != "" {
		conf = append(conf, "ssl_max_protocol_version = '"+cfg.MaxTLS+"'")
	}
	appendFile(tb, filepath.Join(data, "postgresql.conf"), strings.Join(conf, "\n")+"\n")
	writeFile(tb, filepath.Join(data, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 cert\n")
	GiveTo(tb, dir, "postgres")
	if err := os.Chmod(keyPath, 0o600); err != nil {
		tb.Fatal(err)
	}
	Start(tb, server, []string{"-D", data}, WithUser("postgres"), WithDir(dir))
	addr = "127.0.0.1:" + strconv.Itoa(port)
	WaitTCP(tb, addr, time.Minute)
	return addr
}

// PsqlConfig is one psql login over TLS.
type PsqlConfig struct {
	// Addr is the server's address; User the database user.
	Addr, User string
	// Cert and Key are the client's certificate files (sslcert, sslkey);
	// empty sends none.
	Cert, Key string
	// RootCert is the file of the CA that issued the server's
	// certificate (sslrootcert, sslmode=verify-ca).
	RootCert string
}

// Psql runs psql once: a TLS login and SELECT 1. It returns psql's output
// and exit error; a refused login is an error, not a test failure.
func Psql(tb testing.TB, cfg PsqlConfig) (string, error) {
	tb.Helper()
	bin := postgresBin(tb, "psql")
	host, port, _ := strings.Cut(cfg.Addr, ":")
	conn := fmt.Sprintf("host=%s port=%s user=%s dbname=postgres sslmode=verify-ca sslrootcert=%s connect_timeout=10", host, port, cfg.User, cfg.RootCert)
	if cfg.Cert != "" {
		conn += " sslcert=" + cfg.Cert + " sslkey=" + cfg.Key
	} else {
		// Without this, libpq would offer ~/.postgresql/postgresql.crt.
		conn += " sslcert=/nonexistent sslkey=/nonexistent"
	}
	p := Start(tb, bin, []string{"-X", "-w", "-c", "SELECT 1", conn}, WithEnv("PGCONNECT_TIMEOUT=10"))
	err := p.Wait(time.Minute)
	return p.Output(), err
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func appendFile(tb testing.TB, path, content string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		tb.Fatal(err)
	}
}

// sbin finds a server binary that Debian installs in /usr/sbin, which is
// not on every user's PATH.
func sbin(tb testing.TB, name, pkg string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExecutable(p) {
		return p
	}
	missingPeer(tb, name, pkg)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// MariaDBConfig describes a MariaDB server that takes TLS connections.
type MariaDBConfig struct {
	// Cert is the server's certificate. Required.
	Cert *pkitest.Cert
	// ClientCAs go to ssl-ca: the server asks every TLS client for a
	// certificate, with their names as the issuer list.
	ClientCAs []*pkitest.Cert
	// User is created REQUIRE X509: it logs in only with a certificate
	// issued by one of ClientCAs (no password).
	User string
	// TLSVersion is tls-version, e.g. "TLSv1.2"; "" leaves it.
	TLSVersion string
}

// MariaDB initialises a data directory and starts mariadbd on a free
// 127.0.0.1 port, as the mysql system user when the test runs as root,
// with cfg.User created REQUIRE X509. It returns the address once the
// server accepts connections; the server stops when the test ends.
func MariaDB(tb testing.TB, cfg MariaDBConfig) (addr string) {
	tb.Helper()
	install := Require(tb, "mariadb-install-db")
	server := sbin(tb, "mariadbd", "mariadb-server")
	if cfg.Cert == nil || cfg.User == "" {
		tb.Fatal("peertest: MariaDBConfig needs Cert and User")
	}
	dir := UserDir(tb, "mysql")
	data := filepath.Join(dir, "data")
	p := Start(tb, install, []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"},
		WithUser("mysql"), WithDir(dir))
	if err := p.Wait(2 * time.Minute); err != nil {
		tb.Fatalf("peertest: mariadb-install-db: %v\n%s", err, p.tail(tailBytes))
	}
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	caPath := filepath.Join(dir, "client-cas.pem")
	pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
	initSQL := filepath.Join(dir, "init.sql")
	writeFile(tb, initSQL, fmt.Sprintf("CREATE USER '%s'@'%%' REQUIRE X509;\nGRANT USAGE ON *.* TO '%s'@'%%';\n", cfg.User, cfg.User))
	GiveTo(tb, dir, "mysql")
	port := FreePort(tb)
	args := []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--ssl-cert=" + certPath, "--ssl-key=" + keyPath, "--ssl-ca=" + caPath, "--init-file=" + initSQL,
		"--innodb-buffer-pool-size=16M", "--skip-name-resolve"}
	if cfg.TLSVersion != "" {
		args = append(args, "--tls-version="+cfg.TLSVersion)
	}
	Start(tb, server, args, WithUser("mysql"), WithDir(dir))
	addr = "127.0.0.1:" + strconv.Itoa(port)
	WaitTCP(tb, addr, time.Minute)
	return addr
}

// MariaDBLogin runs the mariadb client once over TLS: a login as user
// and SELECT 1, with the client certificate files when cert is not "". It
// returns the client's output and exit error; a refused login is an error,
// not a test failure.
func MariaDBLogin(tb testing.TB, addr, user, serverCA, cert, key string) (string, error) {
	tb.Helper()
	bin := Require(tb, "mariadb")
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"--no-defaults", "--host=" + host, "--port=" + port, "--user=" + user, "--ssl", "--ssl-ca=" + serverCA,
		"--connect-timeout=10", "-e", "SELECT 1"}
	if cert != "" {
		args = append(args, "--ssl-cert="+cert, "--ssl-key="+key)
	}
	p := Start(tb, bin, args)
	err := p.Wait(time.Minute)
	return p.Output(), err
}
