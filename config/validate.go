package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Validate checks every field and returns an *Error for the first invalid
// one, in field order. Load has already called it; a Config built by hand
// should be.
func (c *Config) Validate() error {
	if e := c.validate(func(string) bool { return false }); e != nil {
		return e
	}
	return nil
}

// validate takes userSet, which tells a value someone set from a default,
// so that a clash between two keys blames the one the user actually wrote.
func (c *Config) validate(userSet func(key string) bool) *Error {
	bad := func(key, format string, args ...any) *Error {
		return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
	}

	if c.Listen == "" {
		return bad("listen", "empty; give HOST:PORT, e.g. 127.0.0.1:8080")
	}
	if p := hostPortProblem(c.Listen, false); p != "" {
		return bad("listen", "%s", p)
	}
	switch c.Mode {
	case ModeObserve, ModeIntercept, ModeSidecar:
	default:
		return bad("mode", "%q is not a mode; use observe, intercept or sidecar", c.Mode)
	}
	switch {
	case c.Upstream == "" && c.Mode == ModeSidecar:
		return bad("upstream", "required in sidecar mode; give the server's HOST:PORT")
	case c.Upstream != "":
		if p := hostPortProblem(c.Upstream, true); p != "" {
			return bad("upstream", "%s", p)
		}
	}
	if v := c.Sidecar.ProxyProtocolVersion; v != 1 && v != 2 {
		return bad("sidecar.proxy_protocol_version", "%d is not a PROXY protocol version; use 1 or 2", v)
	}
	if len(c.Sidecar.Routes) > 0 && c.Mode != ModeSidecar {
		return bad("sidecar.routes", "only used in sidecar mode (mode is %s)", c.Mode)
	}
	switch c.Log.Format {
	case "json", "console", "ecs":
	default:
		return bad("log.format", "%q is not a log format; use json, console or ecs", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q is not a log level; use debug, info, warn or error", c.Log.Level)
	}
	if c.Log.File != "" {
		if p := writableFileProblem(c.Log.File); p != "" {
			return bad("log.file", "%s", p)
		}
	}
	for _, name := range c.ExpectCerts {
		if strings.HasPrefix(name, StorePrefix) {
			continue // read, and judged, when the rules load it
		}
		if p := readableProblem(name); p != "" {
			return bad("expect_certs", "cannot read %q: %s", name, p)
		}
	}
	if c.AllowPorts.Empty() {
		return bad("allow_ports", "empty; list at least one port, e.g. 443")
	}
	if c.AllowHTTPPorts.Empty() {
		return bad("allow_http_ports", "empty; list at least one port, e.g. 80")
	}
	if c.AdminListen != "" {
		if p := hostPortProblem(c.AdminListen, false); p != "" {
			return bad("admin_listen", "%s", p)
		}
		if sameListener(c.Listen, c.AdminListen) {
			if userSet("listen") && !userSet("admin_listen") {
				return bad("listen", "%s is also admin_listen; change one of them, or set admin_listen to \"\" to turn the admin server off", c.Listen)
			}
			return bad("admin_listen", "%s is also listen; change one of them, or set admin_listen to \"\" to turn the admin server off", c.AdminListen)
		}
	}
	if c.Decrypt.MaxSecrets <= 0 {
		return bad("decrypt.max_secrets", "must be positive, got %d", c.Decrypt.MaxSecrets)
	}
	if p := keylogProblem(c.Decrypt.KeylogFile); p != "" {
		return bad("decrypt.keylog_file", "%q %s", c.Decrypt.KeylogFile, p)
	}
	if e := positive("decrypt.wait", c.Decrypt.Wait); e != nil {
		return e
	}
	if c.Rules.IssuerListWarnBytes <= 0 {
		return bad("rules.issuer_list_warn_bytes", "must be positive, got %d", c.Rules.IssuerListWarnBytes)
	}
	if c.Rules.IssuerListErrorBytes <= 0 {
		return bad("rules.issuer_list_error_bytes", "must be positive, got %d", c.Rules.IssuerListErrorBytes)
	}
	if warn, fail := c.Rules.IssuerListWarnBytes, c.Rules.IssuerListErrorBytes; warn > fail {
		if userSet("rules.issuer_list_error_bytes") && !userSet("rules.issuer_list_warn_bytes") {
			return bad("rules.issuer_list_error_bytes", "%d is below rules.issuer_list_warn_bytes (%d); the warning threshold must not be above the error threshold", fail, warn)
		}
		return bad("rules.issuer_list_warn_bytes", "%d is above rules.issuer_list_error_bytes (%d); the warning threshold must not be above the error threshold", warn, fail)
	}
	if e := positive("tunnel.idle_timeout", c.Tunnel.IdleTimeout); e != nil {
		return e
	}
	if e := positive("tunnel.dial_timeout", c.Tunnel.DialTimeout); e != nil {
		return e
	}
	if c.Mode != ModeSidecar && !c.ListenIsLoopback() && len(c.Access.Users) == 0 && len(c.Access.AllowClients) == 0 {
		// A sidecar forwards to one upstream only; a forward proxy on a
		// reachable address with no gate is an open relay.
		return bad("listen", "%s is reachable from other machines and nothing limits who may use the proxy: "+
			"set access.users (proxy authentication) or access.allow_clients (client networks), or listen on 127.0.0.1", c.Listen)
	}
	if c.Limits.MaxConns <= 0 {
		return bad("limits.max_conns", "must be positive, got %d", c.Limits.MaxConns)
	}
	if e := positive("limits.read_header_timeout", c.Limits.ReadHeaderTimeout); e != nil {
		return e
	}
	if c.Limits.MaxHeaderBytes < 4096 {
		return bad("limits.max_header_bytes", "%d is too small for real requests; use at least 4096", c.Limits.MaxHeaderBytes)
	}
	for _, cc := range c.Intercept.ClientCerts {
		if p := readableProblem(cc.File); p != "" {
			return bad("intercept.client_certs", "cannot read %q: %s", cc.File, p)
		}
	}
	for _, name := range c.Intercept.UpstreamRoots {
		if p := readableProblem(name); p != "" {
			return bad("intercept.upstream_roots", "cannot read %q: %s", name, p)
		}
	}
	if e := c.OTLP.validate(); e != nil {
		return e
	}
	return positive("shutdown_timeout", c.ShutdownTimeout)
}

// validate checks the otlp.* keys. Nothing here is needed while
// otlp.endpoint is empty, but a wrong value is still a mistake to report.
func (o *OTLP) validate() *Error {
	bad := func(key, format string, args ...any) *Error {
		return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil:
			return bad("otlp.endpoint", "%q is not a URL: %v; give the collector's URL, e.g. http://collector:4317", o.Endpoint, err)
		case u.Scheme != "http" && u.Scheme != "https":
			return bad("otlp.endpoint", "%q: the scheme must be http (plaintext) or https (TLS), e.g. http://collector:4317", o.Endpoint)
		case u.Host == "" || u.Port() == "" && strings.HasSuffix(u.Host, ":"):
			return bad("otlp.endpoint", "%q names no host, e.g. http://collector:4317", o.Endpoint)
		case u.User != nil:
			return bad("otlp.endpoint", "%q carries credentials; send them in otlp.headers instead", u.Redacted())
		}
	}
	if o.Protocol != OTLPGRPC && o.Protocol != OTLPHTTP {
		return bad("otlp.protocol", "%q is not an OTLP protocol; use grpc or http/protobuf", o.Protocol)
	}
	if (o.TLS.Cert == "") != (o.TLS.Key == "") {
		return bad("otlp.tls.cert", "otlp.tls.cert and otlp.tls.key go together: set both (the client certificate for the collector and its key) or neither")
	}
	for _, f := range []struct{ key, name string }{{"otlp.tls.ca", o.TLS.CA}, {"otlp.tls.cert", o.TLS.Cert}, {"otlp.tls.key", o.TLS.Key}} {
		if f.name == "" {
			continue
		}
		if p := readableProblem(f.name); p != "" {
			return bad(f.key, "cannot read %q: %s", f.name, p)
		}
	}
	if e := positive("otlp.timeout", o.Timeout); e != nil {
		return e
	}
	if o.QueueSize <= 0 {
		return bad("otlp.queue_size", "must be positive, got %d", o.QueueSize)
	}
	return positive("otlp.metrics_interval", o.MetricsInterval)
}

func positive(key string, d time.Duration) *Error {
	if d <= 0 {
		return &Error{Key: key, Problem: "must be positive, got " + d.String()}
	}
	return nil
}

// hostPortProblem checks a HOST:PORT address and says what is wrong with it,
// or returns "". A listener may leave the host empty (every interface); a
// dial target may not.
func hostPortProblem(addr string, needHost bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Sprintf("%q is not HOST:PORT: %s", addr, ae.Err)
		}
		return fmt.Sprintf("%q is not HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if needHost && host == "" {
		return fmt.Sprintf("%q has no host", addr)
	}
	return ""
}

// sameListener reports whether two valid listen addresses would fight over
// one socket: same port, and the same host or a wildcard on either side.
func sameListener(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || portA != portB {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return hostA == hostB || wildcard(hostA) || wildcard(hostB)
}

// keylogProblem checks the client's key log. It may not exist yet (the
// browser creates it when it starts) but it must be able to: a directory
// would be followed forever and every TLS 1.3 handshake held for a secret
// that never comes, blamed on the browser.
func keylogProblem(name string) string {
	if name == "" {
		return ""
	}
	info, err := os.Stat(name)
	switch {
	case err == nil && info.IsDir():
		return "is a directory; give the file that SSLKEYLOGFILE names"
	case err == nil && !info.Mode().IsRegular():
		return "is not a regular file; give the file that SSLKEYLOGFILE names"
	case err == nil:
		return ""
	case !errors.Is(err, os.ErrNotExist):
		return osProblem(err)
	}
	dir := filepath.Dir(name)
	if d, err := os.Stat(dir); err != nil || !d.IsDir() {
		return fmt.Sprintf("cannot be created: its directory %s does not exist", dir)
	}
	return ""
}

// readableProblem opens the file now, so that a wrong path is reported at
// start-up rather than when the first handshake needs the certificate.
func readableProblem(name string) string {
	f, err := os.Open(name)
	if err != nil {
		return osProblem(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return osProblem(err)
	}
	if info.IsDir() {
		return "is a directory"
	}
	return ""
}

// writableFileProblem says why a file to append to cannot be created, as far
// as looking tells without creating it: its directory missing, or a
// directory in its place.
func writableFileProblem(name string) string {
	if info, err := os.Stat(name); err == nil {
		if info.IsDir() {
			return fmt.Sprintf("%q is a directory; give a file name", name)
		}
		return ""
	}
	dir := filepath.Dir(name)
	info, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot create %q: directory %s: %s; create the directory or give another path", name, dir, osProblem(err))
	case !info.IsDir():
		return fmt.Sprintf("cannot create %q: %s is not a directory", name, dir)
	}
	return ""
}
