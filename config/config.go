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
// field has a config key, named in its key tag (which Changed and the
// reload read).
type Config struct {
	Listen      string   `key:"listen"`
	Mode        string   `key:"mode"`     // observe, intercept or sidecar
	Upstream    string   `key:"upstream"` // HOST:PORT, required in sidecar mode
	Log         Log      // log.*
	ExpectCerts []string `key:"expect_certs"`
	AllowPorts  PortSet  `key:"allow_ports"`
	// AllowHTTPPorts are the ports plain-HTTP requests through the proxy
	// may go to; CONNECT has allow_ports.
	AllowHTTPPorts PortSet `key:"allow_http_ports"`
	AdminListen    string  `key:"admin_listen"` // "" turns the admin server off
	AdminPprof     bool    `key:"admin_pprof"`  // /debug/pprof/ on the admin server
	AdminUI        bool    `key:"admin_ui"`     // the live page at the admin server's /
	// PACHosts are host patterns /proxy.pac sends through certlens, with
	// rules.client_cert_hosts; every other host goes DIRECT.
	PACHosts  []string  `key:"pac_hosts"`
	Keylog    string    `key:"keylog"` // intercept mode's upstream key log
	Decrypt   Decrypt   // decrypt.*
	Rules     Rules     // rules.*
	Tunnel    Tunnel    // tunnel.*
	Sidecar   Sidecar   // sidecar.*
	Access    Access    // access.*
	Limits    Limits    // limits.*
	Intercept Intercept // intercept.*
	OTLP      OTLP      // otlp.*

	ShutdownTimeout time.Duration `key:"shutdown_timeout"`

	// ConfigFile is the file that was read, "" if none. It is not a key.
	ConfigFile string
	// Warnings are what Load let pass but the user should hear, one line
	// each: CERTLENS_ variables that set nothing. Not a key.
	Warnings []string
}

// Log says where and how events are written.
type Log struct {
	Format string `key:"log.format"` // json, console or ecs
	Level  string `key:"log.level"`  // debug, info, warn or error
	File   string `key:"log.file"`   // "" means stdout
}

// Decrypt configures passive decryption of handshakes with the client's
// key log.
type Decrypt struct {
	KeylogFile string        `key:"decrypt.keylog_file"`
	MaxSecrets int           `key:"decrypt.max_secrets"`
	Wait       time.Duration `key:"decrypt.wait"`
}

// Rules tunes the diagnosis.
type Rules struct {
	IssuerListWarnBytes  int      `key:"rules.issuer_list_warn_bytes"`
	IssuerListErrorBytes int      `key:"rules.issuer_list_error_bytes"`
	ClientCertHosts      []string `key:"rules.client_cert_hosts"`
}

// Tunnel tunes the proxied connections.
type Tunnel struct {
	IdleTimeout        time.Duration `key:"tunnel.idle_timeout"`
	DialTimeout        time.Duration `key:"tunnel.dial_timeout"`
	WatchRenegotiation bool          `key:"tunnel.watch_renegotiation"`
	Parse              bool          `key:"tunnel.parse"` // false relays without looking
}

// Sidecar tunes sidecar mode.
type Sidecar struct {
	// Routes pick the upstream by SNI, first match wins; Upstream is the default.
	Routes               []Route `key:"sidecar.routes"` // "SNI_PATTERN=HOST:PORT"
	ProxyProtocol        bool    `key:"sidecar.proxy_protocol"`
	ProxyProtocolVersion int     `key:"sidecar.proxy_protocol_version"` // 1 or 2
}

// Access says who may use the proxy and where it may go.
type Access struct {
	// Users are "NAME:BCRYPT_HASH" items (access.users); when set, every
	// request needs Proxy-Authorization: Basic with one of them.
	Users []User `key:"access.users"`
	// AllowClients are the client networks that may connect
	// (access.allow_clients); empty allows any client that reaches the listener.
	AllowClients []netip.Prefix `key:"access.allow_clients"`
	// AllowHosts and DenyHosts are CONNECT target host patterns (path.Match
	// syntax, case-insensitive): deny wins; a non-empty allow list admits only its hosts.
	AllowHosts []string `key:"access.allow_hosts"`
	DenyHosts  []string `key:"access.deny_hosts"`
}

// User is one proxy user and the bcrypt hash of the password.
type User struct {
	Name string
	Hash string
}

// Limits bound what one client can make the proxy hold.
type Limits struct {
	MaxConns          int           `key:"limits.max_conns"` // client connections at once
	ReadHeaderTimeout time.Duration `key:"limits.read_header_timeout"`
	MaxHeaderBytes    int           `key:"limits.max_header_bytes"`
}

// Intercept configures intercept mode (and `certlens ca`).
type Intercept struct {
	CADir            string            `key:"intercept.ca_dir"`         // "" is the default data dir
	ClientCerts      []ClientCertEntry `key:"intercept.client_certs"`   // "HOST_PATTERN=FILE"
	UpstreamRoots    []string          `key:"intercept.upstream_roots"` // PEM, DER or PKCS#12 without a password
	InsecureUpstream bool              `key:"intercept.insecure_upstream"`
}

// OTLP sends the events (as log records) and the metrics to an
// OpenTelemetry Collector.
type OTLP struct {
	// Endpoint is the collector's base URL ("http://collector:4317"); ""
	// exports nothing. http:// is plaintext, https:// TLS. With
	// http/protobuf, /v1/logs and /v1/metrics are appended to its path.
	Endpoint string `key:"otlp.endpoint"`
	Protocol string `key:"otlp.protocol"` // grpc or http/protobuf
	// Headers are "NAME=VALUE" items sent with every export (an API key):
	// never logged.
	Headers []Header `key:"otlp.headers"`
	TLS     OTLPTLS  // otlp.tls.*
	// Timeout bounds one export, its retries included: a collector that is
	// down costs the events of that batch, never a tunnel.
	Timeout time.Duration `key:"otlp.timeout"`
	// QueueSize is how many events wait for the collector at most; more are
	// dropped and counted (certlens_export_dropped_total).
	QueueSize       int           `key:"otlp.queue_size"`
	MetricsInterval time.Duration `key:"otlp.metrics_interval"`
}

// OTLPTLS is the TLS of the connection to the collector: the CA that signs
// its certificate (else the system roots) and the client certificate
// certlens presents to it.
type OTLPTLS struct {
	CA   string `key:"otlp.tls.ca"`
	Cert string `key:"otlp.tls.cert"`
	Key  string `key:"otlp.tls.key"`
}

// Header is one otlp.headers item.
type Header struct {
	Name, Value string
}

// OTLP protocols.
const (
	OTLPGRPC = "grpc"
	OTLPHTTP = "http/protobuf"
)

// ClientCertEntry presents the certificate and key in File (PEM with both,
// or PKCS#12) to servers whose host matches Pattern (path.Match syntax).
type ClientCertEntry struct {
	Pattern, File string
}

// StorePrefix marks an expect_certs item that names a certificate store
// (store:nss, store:nss:DIR, store:windows, store:macos) instead of a file.
const StorePrefix = "store:"

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
	name   string
	def    any
	flag   string // the serve flag bound to the key, "" if none
	reload Reload // what a reload does with a new value
}

var keys = []key{
	{name: "listen", def: "127.0.0.1:8080", flag: "listen", reload: Restart},
	{name: "mode", def: ModeObserve, flag: "mode", reload: Restart},
	{name: "upstream", def: "", flag: "upstream", reload: Restart},
	{name: "log.format", def: "json", flag: "log-format", reload: Restart},
	{name: "log.level", def: "info", flag: "log-level", reload: Live},
	{name: "log.file", def: "", flag: "log-file", reload: Restart},
	{name: "expect_certs", def: []string{}, flag: "expect-cert", reload: Live},
	{name: "allow_ports", def: "443,4443,8443", flag: "allow-ports", reload: Live},
	{name: "allow_http_ports", def: "80,8080", flag: "allow-http-ports", reload: Live},
	{name: "admin_listen", def: "127.0.0.1:9090", flag: "admin-listen", reload: Restart},
	{name: "admin_pprof", def: false, flag: "pprof", reload: Restart},
	{name: "admin_ui", def: true, flag: "ui", reload: Restart},
	{name: "pac_hosts", def: []string{}, flag: "pac-host", reload: Live},
	{name: "keylog", def: "", flag: "keylog", reload: Restart},
	{name: "decrypt.keylog_file", def: "", flag: "decrypt-keylog", reload: Restart},
	{name: "decrypt.max_secrets", def: 100000, reload: Restart},
	{name: "decrypt.wait", def: "1s", reload: Restart},
	{name: "rules.issuer_list_warn_bytes", def: 12288, reload: Live},
	{name: "rules.issuer_list_error_bytes", def: 16384, reload: Live},
	{name: "rules.client_cert_hosts", def: []string{}, flag: "client-cert-host", reload: Live},
	{name: "tunnel.idle_timeout", def: "5m", flag: "idle-timeout", reload: Live},
	{name: "tunnel.dial_timeout", def: "10s", reload: Live},
	{name: "tunnel.watch_renegotiation", def: true, reload: Restart},
	{name: "tunnel.parse", def: true, reload: Restart},
	{name: "sidecar.routes", def: []string{}, reload: Restart},
	{name: "sidecar.proxy_protocol", def: false, reload: Restart},
	{name: "sidecar.proxy_protocol_version", def: 2, reload: Restart},
	{name: "access.users", def: []string{}, reload: Live},
	{name: "access.allow_clients", def: []string{}, flag: "allow-client", reload: Live},
	{name: "access.allow_hosts", def: []string{}, flag: "allow-host", reload: Live},
	{name: "access.deny_hosts", def: []string{}, flag: "deny-host", reload: Live},
	{name: "limits.max_conns", def: 1000, flag: "max-conns", reload: Restart},
	{name: "limits.read_header_timeout", def: "10s", reload: Restart},
	{name: "limits.max_header_bytes", def: 65536, reload: Restart},
	{name: "shutdown_timeout", def: "10s", reload: Live},
	{name: "intercept.ca_dir", def: "", reload: Restart},
	{name: "intercept.client_certs", def: []string{}, reload: Restart},
	{name: "intercept.upstream_roots", def: []string{}, reload: Restart},
	{name: "intercept.insecure_upstream", def: false, reload: Restart},
	{name: "otlp.endpoint", def: "", flag: "otlp-endpoint", reload: Restart},
	{name: "otlp.protocol", def: OTLPGRPC, reload: Restart},
	{name: "otlp.headers", def: []string{}, reload: Restart},
	{name: "otlp.tls.ca", def: "", reload: Restart},
	{name: "otlp.tls.cert", def: "", reload: Restart},
	{name: "otlp.tls.key", def: "", reload: Restart},
	{name: "otlp.timeout", def: "10s", reload: Restart},
	{name: "otlp.queue_size", def: 4096, reload: Restart},
	{name: "otlp.metrics_interval", def: "30s", reload: Restart},
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
