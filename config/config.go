// Package config builds certlens's typed, validated Config from, in rising
// precedence, built-in defaults, a YAML config file, CERTLENS_* environment
// variables and command line flags.
package config

import (
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config is everything `certlens serve` needs to run. Load fills it; every
// field has a config key, named next to it.
type Config struct {
	Listen      string   // listen
	Mode        string   // mode: observe, intercept or sidecar
	Upstream    string   // upstream: HOST:PORT, required in sidecar mode
	Log         Log      // log.*
	ExpectCerts []string // expect_certs
	AllowPorts  PortSet  // allow_ports
	// AllowHTTPPorts are the ports plain-HTTP requests through the proxy
	// may go to (allow_http_ports); CONNECT has allow_ports.
	AllowHTTPPorts PortSet   // allow_http_ports
	AdminListen    string    // admin_listen; "" turns the admin server off
	AdminPprof     bool      // admin_pprof: /debug/pprof/ on the admin server
	Keylog         string    // keylog: intercept mode's upstream key log
	Decrypt        Decrypt   // decrypt.*
	Rules          Rules     // rules.*
	Tunnel         Tunnel    // tunnel.*
	Sidecar        Sidecar   // sidecar.*
	Access         Access    // access.*
	Limits         Limits    // limits.*
	Intercept      Intercept // intercept.*

	ShutdownTimeout time.Duration // shutdown_timeout

	// ConfigFile is the file that was read, "" if none. It is not a key.
	ConfigFile string
	// Warnings are what Load let pass but the user should hear, one line
	// each: CERTLENS_ variables that set nothing. Not a key.
	Warnings []string
}

// Log says where and how events are written.
type Log struct {
	Format string // log.format: json or console
	Level  string // log.level: debug, info, warn or error
	File   string // log.file: "" means stdout
}

// Decrypt configures passive decryption of handshakes with the client's
// key log.
type Decrypt struct {
	KeylogFile string        // decrypt.keylog_file
	MaxSecrets int           // decrypt.max_secrets
	Wait       time.Duration // decrypt.wait
}

// Rules tunes the diagnosis.
type Rules struct {
	IssuerListWarnBytes  int      // rules.issuer_list_warn_bytes
	IssuerListErrorBytes int      // rules.issuer_list_error_bytes
	ClientCertHosts      []string // rules.client_cert_hosts
}

// Tunnel tunes the proxied connections.
type Tunnel struct {
	IdleTimeout        time.Duration // tunnel.idle_timeout
	DialTimeout        time.Duration // tunnel.dial_timeout
	WatchRenegotiation bool          // tunnel.watch_renegotiation
	Parse              bool          // tunnel.parse: false relays without looking
}

// Sidecar tunes sidecar mode.
type Sidecar struct {
	// Routes pick the upstream by SNI, first match wins; Upstream is the default.
	Routes               []Route // sidecar.routes: "SNI_PATTERN=HOST:PORT"
	ProxyProtocol        bool    // sidecar.proxy_protocol
	ProxyProtocolVersion int     // sidecar.proxy_protocol_version: 1 or 2
}

// Access says who may use the proxy and where it may go.
type Access struct {
	// Users are "NAME:BCRYPT_HASH" items (access.users); when set, every
	// request needs Proxy-Authorization: Basic with one of them.
	Users []User
	// AllowClients are the client networks that may connect
	// (access.allow_clients); empty allows any client that reaches the listener.
	AllowClients []netip.Prefix
	// AllowHosts and DenyHosts are CONNECT target host patterns (path.Match
	// syntax, case-insensitive): deny wins; a non-empty allow list admits only its hosts.
	AllowHosts []string // access.allow_hosts
	DenyHosts  []string // access.deny_hosts
}

// User is one proxy user and the bcrypt hash of the password.
type User struct {
	Name string
	Hash string
}

// Limits bound what one client can make the proxy hold.
type Limits struct {
	MaxConns          int           // limits.max_conns: client connections at once
	ReadHeaderTimeout time.Duration // limits.read_header_timeout
	MaxHeaderBytes    int           // limits.max_header_bytes
}

// Intercept configures intercept mode (and `certlens ca`).
type Intercept struct {
	CADir            string            // intercept.ca_dir: "" is the default data dir
	ClientCerts      []ClientCertEntry // intercept.client_certs: "HOST_PATTERN=FILE"
	UpstreamRoots    []string          // intercept.upstream_roots: PEM files
	InsecureUpstream bool              // intercept.insecure_upstream
}

// ClientCertEntry presents the certificate and key in File (PEM with both,
// or PKCS#12) to servers whose host matches Pattern (path.Match syntax).
type ClientCertEntry struct {
	Pattern, File string
}

// PFXPasswordEnv holds the password of PKCS#12 files in
// intercept.client_certs; a secret, so it is no config key.
const PFXPasswordEnv = "CERTLENS_PFX_PASSWORD"

// Route sends connections whose SNI matches Pattern (path.Match syntax,
// e.g. *.example.com) to Upstream.
type Route struct {
	Pattern, Upstream string
}

// Modes are the values of the mode key.
const (
	ModeObserve   = "observe"
	ModeIntercept = "intercept"
	ModeSidecar   = "sidecar"
)

// key is one configuration key. The table below is the single list that
// defaults, flag binding, unknown-key detection and the tests all read, so
// a key cannot be added to one and forgotten in another.
type key struct {
	name string
	def  any
	flag string // the serve flag bound to the key, "" if none
}

var keys = []key{
	{name: "listen", def: "127.0.0.1:8080", flag: "listen"},
	{name: "mode", def: ModeObserve, flag: "mode"},
	{name: "upstream", def: "", flag: "upstream"},
	{name: "log.format", def: "json", flag: "log-format"},
	{name: "log.level", def: "info", flag: "log-level"},
	{name: "log.file", def: "", flag: "log-file"},
	{name: "expect_certs", def: []string{}, flag: "expect-cert"},
	{name: "allow_ports", def: "443,4443,8443", flag: "allow-ports"},
	{name: "allow_http_ports", def: "80,8080", flag: "allow-http-ports"},
	{name: "admin_listen", def: "127.0.0.1:9090", flag: "admin-listen"},
	{name: "admin_pprof", def: false, flag: "pprof"},
	{name: "keylog", def: "", flag: "keylog"},
	{name: "decrypt.keylog_file", def: "", flag: "decrypt-keylog"},
	{name: "decrypt.max_secrets", def: 100000},
	{name: "decrypt.wait", def: "1s"},
	{name: "rules.issuer_list_warn_bytes", def: 12288},
	{name: "rules.issuer_list_error_bytes", def: 16384},
	{name: "rules.client_cert_hosts", def: []string{}, flag: "client-cert-host"},
	{name: "tunnel.idle_timeout", def: "5m", flag: "idle-timeout"},
	{name: "tunnel.dial_timeout", def: "10s"},
	{name: "tunnel.watch_renegotiation", def: true},
	{name: "tunnel.parse", def: true},
	{name: "sidecar.routes", def: []string{}},
	{name: "sidecar.proxy_protocol", def: false},
	{name: "sidecar.proxy_protocol_version", def: 2},
	{name: "access.users", def: []string{}},
	{name: "access.allow_clients", def: []string{}, flag: "allow-client"},
	{name: "access.allow_hosts", def: []string{}, flag: "allow-host"},
	{name: "access.deny_hosts", def: []string{}, flag: "deny-host"},
	{name: "limits.max_conns", def: 1000, flag: "max-conns"},
	{name: "limits.read_header_timeout", def: "10s"},
	{name: "limits.max_header_bytes", def: 65536},
	{name: "shutdown_timeout", def: "10s"},
	{name: "intercept.ca_dir", def: ""},
	{name: "intercept.client_certs", def: []string{}},
	{name: "intercept.upstream_roots", def: []string{}},
	{name: "intercept.insecure_upstream", def: false},
}

// envVar is the environment variable that sets a key, spelled the way viper
// looks it up (prefix, upper case, dots as underscores), e.g.
// CERTLENS_LOG_FORMAT.
func envVar(key string) string {
	return "CERTLENS_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func lookupKey(name string) (key, bool) {
	for _, k := range keys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// Default returns the configuration used when no file, variable or flag
// sets anything.
func Default() *Config {
	l := newLoader(nil, false)
	c := l.decode()
	if l.err != nil {
		panic("config: bad built-in default: " + l.err.Error())
	}
	return c
}

// ListenIsLoopback reports whether Listen only accepts connections from this
// host. An empty host listens on every interface, and a name other than
// localhost may resolve anywhere, so both count as not loopback.
func (c *Config) ListenIsLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}
