package peertest

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// OpenSSLServerConfig describes an `openssl s_server`.
type OpenSSLServerConfig struct {
	// Cert is the server certificate; its intermediates are sent as its
	// chain. Required.
	Cert *pkitest.Cert
	// ClientCAs go to -CAfile in this order: they verify client certificates
	// and, unless NoCANames, form the issuer list of the CertificateRequest
	// in the same order.
	ClientCAs []*pkitest.Cert
	// Verify > 0 asks for a client certificate (-verify Verify) without
	// requiring one; it is also the verify depth when Require is set.
	Verify int
	// Require makes the certificate mandatory (-Verify): the handshake fails
	// with an alert when the client sends none.
	Require bool
	// TLS12 and TLS13 pin the protocol version (-tls1_2, -tls1_3).
	TLS12, TLS13 bool
	// NoCANames sends an empty issuer list (-no_ca_names).
	NoCANames bool
	// WWW answers "GET /" with a status page (-www), so that HTTP clients
	// complete a request and the server keeps accepting.
	WWW bool
	// Extra arguments, appended last.
	Extra []string
	// Options for Start, e.g. WithStdinPipe to type 'R' for renegotiation.
	Start []StartOption
}

// OpenSSLServer starts `openssl s_server` on a free 127.0.0.1 port with
// files in a temp dir and returns its address once it accepts connections.
// Default trust stores are disabled so that only ClientCAs count.
func OpenSSLServer(tb testing.TB, cfg OpenSSLServerConfig) (addr string, p *Process) {
	tb.Helper()
	bin := Require(tb, "openssl")
	if cfg.Cert == nil {
		tb.Fatal("peertest: OpenSSLServerConfig.Cert is nil")
	}
	dir := tb.TempDir()
	certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "server")
	port := FreePort(tb)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"s_server",
		"-accept", addr,
		"-cert", certPath, "-key", keyPath,
		"-no-CApath", "-no-CAstore",
	}
	args = append(args, chainArgs(tb, dir, "server", cfg.Cert)...)
	if len(cfg.ClientCAs) > 0 {
		caPath := filepath.Join(dir, "client-cas.pem")
		pkitest.WritePEM(tb, caPath, cfg.ClientCAs...)
		args = append(args, "-CAfile", caPath)
	} else {
		args = append(args, "-no-CAfile")
	}
	switch {
	case cfg.Require:
		depth := cfg.Verify
		if depth <= 0 {
			depth = 1
		}
		args = append(args, "-Verify", strconv.Itoa(depth))
	case cfg.Verify > 0:
		args = append(args, "-verify", strconv.Itoa(cfg.Verify))
	}
	if cfg.TLS12 {
		args = append(args, "-tls1_2")
	}
	if cfg.TLS13 {
		args = append(args, "-tls1_3")
	}
	if cfg.NoCANames {
		args = append(args, "-no_ca_names")
	}
	if cfg.WWW {
		args = append(args, "-www")
	}
	args = append(args, cfg.Extra...)
	p = Start(tb, bin, args, append([]StartOption{WithDir(dir)}, cfg.Start...)...)
	if slices.Contains(cfg.Extra, "-quiet") {
		WaitTCP(tb, addr, 10*time.Second)
		return addr, p
	}
	// s_server prints ACCEPT once it listens. Waiting for it rather than
	// dialling keeps a probe connection out of the server's output and out
	// of -naccept's count.
	if !p.WaitOutput("ACCEPT", 10*time.Second) {
		tb.Fatalf("peertest: openssl s_server on %s did not start:\n%s", addr, p.tail(tailBytes))
	}
	return addr, p
}

// OpenSSLClientConfig describes one `openssl s_client` connection.
type OpenSSLClientConfig struct {
	// Connect is the server's HOST:PORT. Required.
	Connect string
	// Proxy is the HOST:PORT of an HTTP proxy to tunnel through (-proxy,
	// which sends CONNECT); "" connects directly.
	Proxy string
	// Cert is the client certificate, sent with its intermediates when the
	// server asks for one; nil sends none.
	Cert *pkitest.Cert
	// ServerCAs verify the server's certificate; the connection fails if
	// it does not verify. Empty: the server is not verified.
	ServerCAs []*pkitest.Cert
	// ServerName is the SNI; "" sends none.
	ServerName string
	// TLS12 and TLS13 pin the protocol version.
	TLS12, TLS13 bool
	// Request is written once connected; "" means "GET / HTTP/1.0\r\n\r\n".
	// The client then reads until the server closes.
	Request string
	// Extra arguments, appended last.
	Extra []string
	// Timeout bounds the run; 0 means 30 seconds.
	Timeout time.Duration
}

// OpenSSLClient runs `openssl s_client` to completion and returns its
// output (the handshake summary, the server's answer and any error stack)
// and its exit error: non-nil when the handshake or the verification
// failed, so that tests can assert on either outcome.
func OpenSSLClient(tb testing.TB, cfg OpenSSLClientConfig) (string, error) {
	tb.Helper()
	bin := Require(tb, "openssl")
	if cfg.Connect == "" {
		tb.Fatal("peertest: OpenSSLClientConfig.Connect is empty")
	}
	dir := tb.TempDir()
	args := []string{"s_client", "-connect", cfg.Connect,
		// -ign_eof: the end of the request on stdin must not close the
		// connection before the server has answered.
		"-ign_eof", "-no-CApath", "-no-CAstore"}
	if cfg.Proxy != "" {
		args = append(args, "-proxy", cfg.Proxy)
	}
	if cfg.Cert != nil {
		certPath, keyPath := cfg.Cert.WriteFiles(tb, dir, "client")
		args = append(args, "-cert", certPath, "-key", keyPath)
		args = append(args, chainArgs(tb, dir, "client", cfg.Cert)...)
	}
	if len(cfg.ServerCAs) > 0 {
		caPath := filepath.Join(dir, "server-cas.pem")
		pkitest.WritePEM(tb, caPath, cfg.ServerCAs...)
		args = append(args, "-CAfile", caPath, "-verify_return_error")
	} else {
		args = append(args, "-no-CAfile")
	}
	if cfg.ServerName != "" {
		args = append(args, "-servername", cfg.ServerName)
	} else {
		args = append(args, "-noservername")
	}
	if cfg.TLS12 {
		args = append(args, "-tls1_2")
	}
	if cfg.TLS13 {
		args = append(args, "-tls1_3")
	}
	args = append(args, cfg.Extra...)
	req := cfg.Request
	if req == "" {
		req = "GET / HTTP/1.0\r\n\r\n"
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	p := Start(tb, bin, args, WithDir(dir), WithStdin(strings.NewReader(req)))
	err := p.Wait(timeout)
	if errors.Is(err, ErrTimeout) {
		tb.Fatalf("peertest: openssl s_client to %s: %v\n%s", cfg.Connect, err, p.tail(tailBytes))
	}
	return p.Output(), err
}

// chainArgs are the -cert_chain arguments that send cert's intermediates:
// s_server and s_client read only the first certificate of -cert, so the
// intermediates (not the root) go in a file of their own.
func chainArgs(tb testing.TB, dir, name string, cert *pkitest.Cert) []string {
	chain := cert.Chain()
	if len(chain) <= 2 {
		return nil
	}
	path := filepath.Join(dir, name+"-chain.pem")
	pkitest.WritePEM(tb, path, chain[1:len(chain)-1]...)
	return []string{"-cert_chain", path}
}
