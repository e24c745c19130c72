package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// isolate gives the test an empty working directory, home and
// XDG_CONFIG_HOME, and no CERTLENS_ variables, so that neither the
// developer's own certlens.yaml nor their environment leaks in.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CERTLENS_") {
			t.Setenv(name, "") // restores the variable after the test
			os.Unsetenv(name)
		}
	}
	return dir
}

// load parses args with a fresh serve flag set, as cobra would, and loads.
func load(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return Load(fs)
}

func mustLoad(t *testing.T, args ...string) *Config {
	t.Helper()
	c, err := load(t, args...)
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func mustPorts(t *testing.T, s string) PortSet {
	t.Helper()
	p, err := parsePortSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantDefaults spells the documented defaults out again instead of reading
// the key table, so that a changed default fails a test.
func wantDefaults(t *testing.T) *Config {
	return &Config{
		Listen:         "127.0.0.1:8080",
		Mode:           "observe",
		Log:            Log{Format: "json", Level: "info"},
		AllowPorts:     mustPorts(t, "443,4443,8443"),
		AllowHTTPPorts: mustPorts(t, "80,8080"),
		AdminListen:    "127.0.0.1:9090",
		AdminUI:        true,
		Decrypt:        Decrypt{MaxSecrets: 100000, Wait: time.Second},
		Rules:          Rules{IssuerListWarnBytes: 12288, IssuerListErrorBytes: 16384},
		Tunnel: Tunnel{
			IdleTimeout:        5 * time.Minute,
			DialTimeout:        10 * time.Second,
			WatchRenegotiation: true,
			Parse:              true,
		},
		Sidecar:         Sidecar{ProxyProtocolVersion: 2},
		Limits:          Limits{MaxConns: 1000, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10},
		OTLP:            OTLP{Protocol: "grpc", Timeout: 10 * time.Second, QueueSize: 4096, MetricsInterval: 30 * time.Second},
		ShutdownTimeout: 10 * time.Second,
	}
}

func TestDefaults(t *testing.T) {
	isolate(t)
	want := wantDefaults(t)
	if got := mustLoad(t); !reflect.DeepEqual(got, want) {
		t.Errorf("Load with nothing set:\n got %+v\nwant %+v", got, want)
	}
	if got := defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults():\n got %+v\nwant %+v", got, want)
	}
	c, err := Load(nil)
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Errorf("Load(nil) = %+v, %v; want the defaults", c, err)
	}
	if !defaults().ListenIsLoopback() {
		t.Error("the default listen address is not loopback")
	}
}

// Default must not read the environment: tests elsewhere use it as a
// known starting point.
func TestDefaultIgnoresEnvironment(t *testing.T) {
	isolate(t)
	t.Setenv("CERTLENS_LISTEN", "0.0.0.0:1")
	if got := defaults().Listen; got != "127.0.0.1:8080" {
		t.Errorf("defaults().Listen = %q with CERTLENS_LISTEN set", got)
	}
}

// TestPrecedence sets each key in more and more layers and checks that the
// highest layer wins: defaults < file < env < flag. The flags are always
// defined, so a flag's own default must never beat the file or env.
func TestPrecedence(t *testing.T) {
	type layer struct {
		yaml string // the key as it appears in certlens.yaml
		env  string
		flag string // "--name=value"; "" for a key without a flag
		want string
	}
	tests := []struct {
		key     string
		get     func(*Config) string
		def     string
		file    layer
		env     layer
		flagged layer
	}{
		{
			key:     "listen",
			get:     func(c *Config) string { return c.Listen },
			def:     "127.0.0.1:8080",
			file:    layer{yaml: "listen: 127.0.0.1:1001", want: "127.0.0.1:1001"},
			env:     layer{env: "127.0.0.1:1002", want: "127.0.0.1:1002"},
			flagged: layer{flag: "--listen=127.0.0.1:1003", want: "127.0.0.1:1003"},
		},
		{
			key:     "log.format",
			get:     func(c *Config) string { return c.Log.Format },
			def:     "json",
			file:    layer{yaml: "log:\n  format: console", want: "console"},
			env:     layer{env: "json", want: "json"},
			flagged: layer{flag: "--log-format=console", want: "console"},
		},
		{
			key:     "allow_ports",
			get:     func(c *Config) string { return c.AllowPorts.String() },
			def:     "443,4443,8443",
			file:    layer{yaml: "allow_ports: [1001, \"2000-2010\"]", want: "1001,2000-2010"},
			env:     layer{env: "1002, 3000-3010", want: "1002,3000-3010"},
			flagged: layer{flag: "--allow-ports=1003", want: "1003"},
		},
		{
			key:     "rules.issuer_list_warn_bytes",
			get:     func(c *Config) string { return strconv.Itoa(c.Rules.IssuerListWarnBytes) },
			def:     "12288",
			file:    layer{yaml: "rules:\n  issuer_list_warn_bytes: 1000", want: "1000"},
			env:     layer{env: "2000", want: "2000"},
			flagged: layer{want: "2000"},
		},
		{
			key:     "rules.issuer_list_error_bytes",
			get:     func(c *Config) string { return strconv.Itoa(c.Rules.IssuerListErrorBytes) },
			def:     "16384",
			file:    layer{yaml: "rules:\n  issuer_list_error_bytes: 20000", want: "20000"},
			env:     layer{env: "30000", want: "30000"},
			flagged: layer{want: "30000"},
		},
		{
			key:     "tunnel.idle_timeout",
			get:     func(c *Config) string { return c.Tunnel.IdleTimeout.String() },
			def:     "5m0s",
			file:    layer{yaml: "tunnel:\n  idle_timeout: 1m", want: "1m0s"},
			env:     layer{env: "2m", want: "2m0s"},
			flagged: layer{flag: "--idle-timeout=3m", want: "3m0s"},
		},
		{
			key:     "rules.client_cert_hosts",
			get:     func(c *Config) string { return strings.Join(c.Rules.ClientCertHosts, "|") },
			def:     "",
			file:    layer{yaml: "rules:\n  client_cert_hosts: [a.example, b.example]", want: "a.example|b.example"},
			env:     layer{env: "c.example, d.example", want: "c.example|d.example"},
			flagged: layer{flag: "--client-cert-host=e.example", want: "e.example"},
		},
		{
			key:     "admin_listen",
			get:     func(c *Config) string { return c.AdminListen },
			def:     "127.0.0.1:9090",
			file:    layer{yaml: "admin_listen: \"\"", want: ""},
			env:     layer{env: "127.0.0.1:1002", want: "127.0.0.1:1002"},
			flagged: layer{flag: "--admin-listen=", want: ""},
		},
		{
			key:     "admin_pprof",
			get:     func(c *Config) string { return strconv.FormatBool(c.AdminPprof) },
			def:     "false",
			file:    layer{yaml: "admin_pprof: true", want: "true"},
			env:     layer{env: "false", want: "false"},
			flagged: layer{flag: "--pprof", want: "true"},
		},
		{
			key:     "admin_ui",
			get:     func(c *Config) string { return strconv.FormatBool(c.AdminUI) },
			def:     "true",
			file:    layer{yaml: "admin_ui: false", want: "false"},
			env:     layer{env: "false", want: "false"},
			flagged: layer{flag: "--ui=false", want: "false"},
		},
		{
			key:     "tunnel.parse",
			get:     func(c *Config) string { return strconv.FormatBool(c.Tunnel.Parse) },
			def:     "true",
			file:    layer{yaml: "tunnel:\n  parse: false", want: "false"},
			env:     layer{env: "true", want: "true"},
			flagged: layer{want: "true"},
		},
		{
			key:     "tunnel.watch_renegotiation",
			get:     func(c *Config) string { return strconv.FormatBool(c.Tunnel.WatchRenegotiation) },
			def:     "true",
			file:    layer{yaml: "tunnel:\n  watch_renegotiation: false", want: "false"},
			env:     layer{env: "true", want: "true"},
			flagged: layer{want: "true"},
		},
	}
	for _, tt := range tests {
		layers := []struct {
			name string
			upTo int
			want string
		}{
			{"default", 0, tt.def},
			{"file over default", 1, tt.file.want},
			{"env over file", 2, tt.env.want},
			{"flag over env", 3, tt.flagged.want},
		}
		for _, l := range layers {
			t.Run(tt.key+"/"+l.name, func(t *testing.T) {
				dir := isolate(t)
				if l.upTo >= 1 {
					writeFile(t, filepath.Join(dir, "certlens.yaml"), tt.file.yaml+"\n")
				}
				if l.upTo >= 2 {
					t.Setenv(envVar(tt.key), tt.env.env)
				}
				var args []string
				if l.upTo >= 3 && tt.flagged.flag != "" {
					args = append(args, tt.flagged.flag)
				}
				if got := tt.get(mustLoad(t, args...)); got != l.want {
					t.Errorf("%s = %q, want %q", tt.key, got, l.want)
				}
			})
		}
	}
}

func TestListsFromEveryLayer(t *testing.T) {
	dir := isolate(t)
	for _, name := range []string{"a.pem", "b.pem", "c.pem", "with,comma.pem"} {
		writeFile(t, filepath.Join(dir, name), "cert")
	}
	writeFile(t, filepath.Join(dir, "certlens.yaml"), "expect_certs: [a.pem]\n")
	if got := mustLoad(t).ExpectCerts; !reflect.DeepEqual(got, []string{"a.pem"}) {
		t.Errorf("from the file: ExpectCerts = %q", got)
	}
	t.Setenv("CERTLENS_EXPECT_CERTS", "a.pem, b.pem,")
	if got := mustLoad(t).ExpectCerts; !reflect.DeepEqual(got, []string{"a.pem", "b.pem"}) {
		t.Errorf("from the env: ExpectCerts = %q", got)
	}
	got := mustLoad(t, "--expect-cert", "c.pem", "--expect-cert", "with,comma.pem").ExpectCerts
	if !reflect.DeepEqual(got, []string{"c.pem", "with,comma.pem"}) {
		t.Errorf("from repeated flags: ExpectCerts = %q", got)
	}
	t.Setenv("CERTLENS_EXPECT_CERTS", "")
	if got := mustLoad(t).ExpectCerts; got != nil {
		t.Errorf("an empty env variable should clear the file's list, got %q", got)
	}
}

func TestSectionLeftEmpty(t *testing.T) {
	dir := isolate(t)
	// What remains of the example file once every key of a section is
	// commented out.
	writeFile(t, filepath.Join(dir, "certlens.yaml"), "log:\ndecrypt:\n  # wait: 2s\nlisten:\n")
	if got, want := mustLoad(t), wantDefaults(t); !reflect.DeepEqual(got.Log, want.Log) || got.Decrypt != want.Decrypt || got.Listen != want.Listen {
		t.Errorf("empty sections and values should keep the defaults, got %+v", got)
	}
}

func TestConfigFileDiscovery(t *testing.T) {
	const (
		cwdFile  = "listen: 127.0.0.1:1001\n"
		xdgFile  = "listen: 127.0.0.1:1002\n"
		homeFile = "listen: 127.0.0.1:1003\n"
		named    = "listen: 127.0.0.1:1004\n"
		envNamed = "listen: 127.0.0.1:1005\n"
	)
	tests := []struct {
		name       string
		cwd        bool // write ./certlens.yaml
		xdg        bool // write $XDG_CONFIG_HOME/certlens/certlens.yaml
		home       bool // write ~/.config/certlens/certlens.yaml
		xdgEnv     string
		envConfig  *string // CERTLENS_CONFIG, relative to the temp dir
		args       []string
		wantFile   string // "" for none
		wantAbs    bool   // wantFile is relative to the temp dir, and reported absolute
		wantListen string
	}{
		{name: "no file anywhere", wantListen: "127.0.0.1:8080"},
		{name: "./certlens.yaml", cwd: true, xdg: true, wantFile: "certlens.yaml", wantListen: "127.0.0.1:1001"},
		{name: "XDG_CONFIG_HOME when there is none here", xdg: true, home: true, wantFile: "xdg/certlens/certlens.yaml", wantAbs: true, wantListen: "127.0.0.1:1002"},
		{name: "~/.config when XDG_CONFIG_HOME is unset", home: true, xdgEnv: "-", wantFile: "home/.config/certlens/certlens.yaml", wantAbs: true, wantListen: "127.0.0.1:1003"},
		{name: "~/.config when XDG_CONFIG_HOME is relative", home: true, xdgEnv: "xdg", wantFile: "home/.config/certlens/certlens.yaml", wantAbs: true, wantListen: "127.0.0.1:1003"},
		{name: "--config over ./certlens.yaml", cwd: true, args: []string{"--config", "named.yaml"}, wantFile: "named.yaml", wantListen: "127.0.0.1:1004"},
		{name: "CERTLENS_CONFIG over ./certlens.yaml", cwd: true, envConfig: ptr("env.yaml"), wantFile: "env.yaml", wantAbs: true, wantListen: "127.0.0.1:1005"},
		{name: "--config over CERTLENS_CONFIG", envConfig: ptr("env.yaml"), args: []string{"--config", "named.yaml"}, wantFile: "named.yaml", wantListen: "127.0.0.1:1004"},
		{name: "--config \"\" reads no file", cwd: true, xdg: true, args: []string{"--config", ""}, wantListen: "127.0.0.1:8080"},
		{name: "empty CERTLENS_CONFIG reads no file", cwd: true, envConfig: ptr(""), wantListen: "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			writeFile(t, filepath.Join(dir, "named.yaml"), named)
			writeFile(t, filepath.Join(dir, "env.yaml"), envNamed)
			if tt.cwd {
				writeFile(t, filepath.Join(dir, "certlens.yaml"), cwdFile)
			}
			if tt.xdg {
				writeFile(t, filepath.Join(dir, "xdg", "certlens", "certlens.yaml"), xdgFile)
			}
			if tt.home {
				writeFile(t, filepath.Join(dir, "home", ".config", "certlens", "certlens.yaml"), homeFile)
			}
			switch tt.xdgEnv {
			case "":
			case "-":
				os.Unsetenv("XDG_CONFIG_HOME") // isolate's t.Setenv restores it
			default:
				t.Setenv("XDG_CONFIG_HOME", tt.xdgEnv)
			}
			if tt.envConfig != nil {
				name := *tt.envConfig
				if name != "" {
					name = filepath.Join(dir, name)
				}
				t.Setenv("CERTLENS_CONFIG", name)
			}
			c := mustLoad(t, tt.args...)
			wantFile := tt.wantFile
			if tt.wantAbs {
				wantFile = filepath.Join(dir, wantFile)
			}
			if c.ConfigFile != wantFile {
				t.Errorf("ConfigFile = %q, want %q", c.ConfigFile, wantFile)
			}
			if c.Listen != tt.wantListen {
				t.Errorf("Listen = %q, want %q", c.Listen, tt.wantListen)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestLoadErrors checks each bad input's whole message: main prints it as
// is, so its wording is part of the interface.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // ./certlens.yaml, none when empty
		env  map[string]string
		args []string
		want string
	}{
		// The file itself.
		{
			name: "--config names a missing file",
			args: []string{"--config", "missing.yaml"},
			want: "config: missing.yaml: cannot read: no such file or directory",
		},
		{
			name: "--config names a directory",
			args: []string{"--config", "."},
			want: "config: .: cannot read: is a directory",
		},
		{
			name: "YAML syntax error keeps the line",
			file: "listen: 127.0.0.1:8080\nmode: observe\n  log: json\n",
			want: "config: certlens.yaml: not valid YAML: line 3: mapping values are not allowed in this context",
		},
		{
			name: "tab indentation",
			file: "log:\n\tformat: json\n",
			want: "config: certlens.yaml: not valid YAML: line 2: found character that cannot start any token",
		},
		{
			name: "a duplicated key",
			file: "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
			want: "config: certlens.yaml: not valid YAML: line 2: mapping key \"listen\" already defined at line 1",
		},
		{
			name: "a list instead of a mapping",
			file: "- listen\n",
			want: "config: certlens.yaml: not a YAML mapping of keys to values (line 1)",
		},
		{
			name: "unknown key",
			file: "lisen: 127.0.0.1:8080\n",
			want: "config: lisen: unknown key (in certlens.yaml)",
		},
		{
			name: "unknown key in a section",
			file: "log:\n  colour: red\n",
			want: "config: log.colour: unknown key (in certlens.yaml)",
		},
		{
			name: "a value where a section belongs",
			file: "log: console\n",
			want: "config: log: is a section (log.format, log.level, log.file), not a single value (in certlens.yaml)",
		},
		{
			name: "a section where a value belongs",
			file: "listen:\n  host: 127.0.0.1\n",
			want: "config: listen.host: unknown key (in certlens.yaml)",
		},
		{
			name: "a variable for a whole section",
			env:  map[string]string{"CERTLENS_LOG": "debug"},
			want: "config: log: is a section; set CERTLENS_LOG_FORMAT, CERTLENS_LOG_LEVEL, CERTLENS_LOG_FILE instead (from CERTLENS_LOG)",
		},
		// listen, mode, upstream.
		{
			name: "listen without a port",
			env:  map[string]string{"CERTLENS_LISTEN": "localhost"},
			want: `config: listen: "localhost" is not HOST:PORT: missing port in address (from CERTLENS_LISTEN)`,
		},
		{
			name: "listen with an IPv6 address not in brackets",
			args: []string{"--listen", "::1:8080"},
			want: `config: listen: "::1:8080" is not HOST:PORT: too many colons in address (from --listen)`,
		},
		{
			name: "listen on port 0",
			args: []string{"--listen", "127.0.0.1:0"},
			want: `config: listen: "127.0.0.1:0": port "0" is not a number from 1 to 65535 (from --listen)`,
		},
		{
			name: "listen on a port above 65535",
			file: "listen: 127.0.0.1:65536\n",
			want: `config: listen: "127.0.0.1:65536": port "65536" is not a number from 1 to 65535 (in certlens.yaml)`,
		},
		{
			name: "listen on a named port",
			file: "listen: localhost:http\n",
			want: `config: listen: "localhost:http": port "http" is not a number from 1 to 65535 (in certlens.yaml)`,
		},
		{
			name: "listen set empty",
			env:  map[string]string{"CERTLENS_LISTEN": ""},
			want: "config: listen: empty; give HOST:PORT, e.g. 127.0.0.1:8080 (from CERTLENS_LISTEN)",
		},
		{
			name: "listen as a list",
			file: "listen: [127.0.0.1:1, 127.0.0.1:2]\n",
			want: "config: listen: must be a single value, not a list or section (in certlens.yaml)",
		},
		{
			name: "unknown mode",
			args: []string{"--mode", "spy"},
			want: `config: mode: "spy" is not a mode; use observe, intercept or sidecar (from --mode)`,
		},
		{
			name: "mode in the wrong case",
			file: "mode: Observe\n",
			want: `config: mode: "Observe" is not a mode; use observe, intercept or sidecar (in certlens.yaml)`,
		},
		{
			name: "sidecar without upstream",
			args: []string{"--mode", "sidecar"},
			want: "config: upstream: required in sidecar mode; give the server's HOST:PORT",
		},
		{
			name: "upstream without a host",
			args: []string{"--mode", "sidecar", "--upstream", ":443"},
			want: `config: upstream: ":443" has no host (from --upstream)`,
		},
		{
			name: "upstream without a port outside sidecar mode",
			file: "upstream: intranet.example\n",
			want: `config: upstream: "intranet.example" is not HOST:PORT: missing port in address (in certlens.yaml)`,
		},
		// otlp.
		{
			name: "otlp endpoint without a scheme",
			args: []string{"--otlp-endpoint", "collector:4317"},
			want: `config: otlp.endpoint: "collector:4317": the scheme must be http (plaintext) or https (TLS), e.g. http://collector:4317 (from --otlp-endpoint)`,
		},
		{
			name: "otlp endpoint with credentials in it",
			env:  map[string]string{"CERTLENS_OTLP_ENDPOINT": "https://user:secret@collector:4317"},
			want: `config: otlp.endpoint: "https://user:xxxxx@collector:4317" carries credentials; send them in otlp.headers instead (from CERTLENS_OTLP_ENDPOINT)`,
		},
		{
			name: "unknown otlp protocol",
			file: "otlp:\n  protocol: http/json\n",
			want: `config: otlp.protocol: "http/json" is not an OTLP protocol; use grpc or http/protobuf (in certlens.yaml)`,
		},
		{
			name: "otlp client certificate without its key",
			file: "otlp:\n  tls:\n    cert: /etc/certlens/otlp.pem\n",
			want: `config: otlp.tls.cert: otlp.tls.cert and otlp.tls.key go together: set both (the client certificate for the collector and its key) or neither (in certlens.yaml)`,
		},
		{
			name: "otlp header that is not NAME=VALUE does not echo the item",
			env:  map[string]string{"CERTLENS_OTLP_HEADERS": "Bearer s3cr3t"},
			want: `config: otlp.headers: an item is not NAME=VALUE (header "<no = in the item>") (from CERTLENS_OTLP_HEADERS)`,
		},
		{
			name: "otlp queue of nothing",
			file: "otlp:\n  queue_size: 0\n",
			want: `config: otlp.queue_size: must be positive, got 0 (in certlens.yaml)`,
		},
		// log.
		{
			name: "unknown log format",
			env:  map[string]string{"CERTLENS_LOG_FORMAT": "xml"},
			want: `config: log.format: "xml" is not a log format; use json, console or ecs (from CERTLENS_LOG_FORMAT)`,
		},
		{
			name: "unknown log level",
			file: "log:\n  level: verbose\n",
			want: `config: log.level: "verbose" is not a log level; use debug, info, warn or error (in certlens.yaml)`,
		},
		{
			name: "log file in a missing directory",
			file: "log:\n  file: nodir/events.jsonl\n",
			want: `config: log.file: cannot create "nodir/events.jsonl": directory nodir: no such file or directory; create the directory or give another path (in certlens.yaml)`,
		},
		{
			name: "log file is a directory",
			args: []string{"--log-file", "."},
			want: `config: log.file: "." is a directory; give a file name (from --log-file)`,
		},
		// expect_certs.
		{
			name: "expected certificate missing",
			args: []string{"--expect-cert", "nope.pem"},
			want: `config: expect_certs: cannot read "nope.pem": no such file or directory (from --expect-cert)`,
		},
		{
			name: "expected certificate is a directory",
			file: "expect_certs: [.]\n",
			want: `config: expect_certs: cannot read ".": is a directory (in certlens.yaml)`,
		},
		{
			name: "expected certificates as a section",
			file: "expect_certs:\n  a: b\n",
			want: "config: expect_certs.a: unknown key (in certlens.yaml)",
		},
		// allow_ports.
		{
			name: "allow_ports with a word",
			args: []string{"--allow-ports", "443,abc"},
			want: `config: allow_ports: "abc" is not a port or range (from --allow-ports)`,
		},
		{
			name: "allow_ports with a reversed range",
			env:  map[string]string{"CERTLENS_ALLOW_PORTS": "9000-8000"},
			want: `config: allow_ports: "9000-8000" is a reversed range; write 8000-9000 (from CERTLENS_ALLOW_PORTS)`,
		},
		{
			name: "allow_ports with port 0",
			file: "allow_ports: 0\n",
			want: `config: allow_ports: "0" is not a port from 1 to 65535 (in certlens.yaml)`,
		},
		{
			name: "allow_ports list with a range past 65535",
			file: "allow_ports: [443, 10000-65536]\n",
			want: `config: allow_ports: "10000-65536": 65536 is not a port from 1 to 65535 (in certlens.yaml)`,
		},
		{
			name: "allow_ports empty",
			args: []string{"--allow-ports", ""},
			want: "config: allow_ports: empty; list at least one port, e.g. 443 (from --allow-ports)",
		},
		{
			name: "allow_ports list holding a list",
			file: "allow_ports: [[443]]\n",
			want: "config: allow_ports: must be a list of ports and ranges (in certlens.yaml)",
		},
		// admin_listen.
		{
			name: "admin_listen with only a port",
			file: "admin_listen: 9090\n",
			want: `config: admin_listen: "9090" is not HOST:PORT: missing port in address (in certlens.yaml)`,
		},
		{
			name: "listen moved onto the admin address",
			args: []string{"--listen", "127.0.0.1:9090"},
			want: `config: listen: 127.0.0.1:9090 is also admin_listen; change one of them, or set admin_listen to "" to turn the admin server off (from --listen)`,
		},
		{
			name: "admin moved onto the listen address",
			env:  map[string]string{"CERTLENS_ADMIN_LISTEN": ":8080"},
			want: `config: admin_listen: :8080 is also listen; change one of them, or set admin_listen to "" to turn the admin server off (from CERTLENS_ADMIN_LISTEN)`,
		},
		// decrypt.
		{
			name: "max_secrets zero",
			file: "decrypt:\n  max_secrets: 0\n",
			want: "config: decrypt.max_secrets: must be positive, got 0 (in certlens.yaml)",
		},
		{
			name: "max_secrets not a number",
			env:  map[string]string{"CERTLENS_DECRYPT_MAX_SECRETS": "lots"},
			want: `config: decrypt.max_secrets: "lots" is not a whole number (from CERTLENS_DECRYPT_MAX_SECRETS)`,
		},
		{
			name: "max_secrets a fraction",
			file: "decrypt:\n  max_secrets: 1.5\n",
			want: `config: decrypt.max_secrets: "1.5" is not a whole number (in certlens.yaml)`,
		},
		{
			name: "negative decrypt wait",
			env:  map[string]string{"CERTLENS_DECRYPT_WAIT": "-1s"},
			want: "config: decrypt.wait: must be positive, got -1s (from CERTLENS_DECRYPT_WAIT)",
		},
		// rules.
		{
			name: "warn threshold zero",
			file: "rules:\n  issuer_list_warn_bytes: 0\n",
			want: "config: rules.issuer_list_warn_bytes: must be positive, got 0 (in certlens.yaml)",
		},
		{
			name: "error threshold negative",
			env:  map[string]string{"CERTLENS_RULES_ISSUER_LIST_ERROR_BYTES": "-1"},
			want: "config: rules.issuer_list_error_bytes: must be positive, got -1 (from CERTLENS_RULES_ISSUER_LIST_ERROR_BYTES)",
		},
		{
			name: "warn threshold raised above the error threshold",
			file: "rules:\n  issuer_list_warn_bytes: 20000\n",
			want: "config: rules.issuer_list_warn_bytes: 20000 is above rules.issuer_list_error_bytes (16384); the warning threshold must not be above the error threshold (in certlens.yaml)",
		},
		{
			name: "error threshold lowered below the warn threshold",
			env:  map[string]string{"CERTLENS_RULES_ISSUER_LIST_ERROR_BYTES": "10000"},
			want: "config: rules.issuer_list_error_bytes: 10000 is below rules.issuer_list_warn_bytes (12288); the warning threshold must not be above the error threshold (from CERTLENS_RULES_ISSUER_LIST_ERROR_BYTES)",
		},
		// tunnel and shutdown.
		{
			name: "idle timeout zero",
			args: []string{"--idle-timeout", "0"},
			want: "config: tunnel.idle_timeout: must be positive, got 0s (from --idle-timeout)",
		},
		{
			name: "idle timeout without a unit",
			file: "tunnel:\n  idle_timeout: 300\n",
			want: `config: tunnel.idle_timeout: "300" has no unit; write e.g. 300s (in certlens.yaml)`,
		},
		{
			name: "dial timeout in words",
			env:  map[string]string{"CERTLENS_TUNNEL_DIAL_TIMEOUT": "soon"},
			want: `config: tunnel.dial_timeout: "soon" is not a duration; write e.g. 30s, 5m or 1h (from CERTLENS_TUNNEL_DIAL_TIMEOUT)`,
		},
		{
			name: "watch_renegotiation not a boolean",
			env:  map[string]string{"CERTLENS_TUNNEL_WATCH_RENEGOTIATION": "maybe"},
			want: `config: tunnel.watch_renegotiation: "maybe" is not true or false (from CERTLENS_TUNNEL_WATCH_RENEGOTIATION)`,
		},
		{
			name: "shutdown timeout as a list",
			file: "shutdown_timeout: [1s]\n",
			want: "config: shutdown_timeout: must be a duration such as 30s or 5m, not a list or section (in certlens.yaml)",
		},
		{
			name: "the first bad field is reported",
			file: "mode: spy\nshutdown_timeout: 0s\n",
			want: `config: mode: "spy" is not a mode; use observe, intercept or sidecar (in certlens.yaml)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			if tt.file != "" {
				writeFile(t, filepath.Join(dir, "certlens.yaml"), tt.file)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := load(t, tt.args...)
			if err == nil {
				t.Fatalf("Load succeeded with %+v, want error %q", c, tt.want)
			}
			if c != nil {
				t.Errorf("Load returned a Config with its error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is a %T, want *config.Error", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err.Error())
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" when valid
	}{
		{name: "the defaults", change: func(*Config) {}},
		{name: "sidecar with upstream", change: func(c *Config) { c.Mode, c.Upstream = "sidecar", "10.0.0.1:443" }},
		{name: "admin off", change: func(c *Config) { c.AdminListen = "" }},
		{name: "listen on every interface with users", change: func(c *Config) {
			c.Listen, c.AdminListen, c.Access.Users = ":8080", "", []User{{Name: "a", Hash: "$2a$10$x"}}
		}},
		{name: "listen on every interface for some clients", change: func(c *Config) {
			c.Listen, c.AdminListen, c.Access.AllowClients = ":8080", "", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}},
		{name: "sidecar on every interface", change: func(c *Config) { c.Listen, c.AdminListen, c.Mode, c.Upstream = ":8443", "", "sidecar", "10.0.0.1:443" }},
		{
			name:   "open relay",
			change: func(c *Config) { c.Listen, c.AdminListen = "0.0.0.0:8080", "" },
			want: "config: listen: 0.0.0.0:8080 is reachable from other machines and nothing limits who may use the proxy: " +
				"set access.users (proxy authentication) or access.allow_clients (client networks), or listen on 127.0.0.1",
		},
		{
			name:   "tiny header limit",
			change: func(c *Config) { c.Limits.MaxHeaderBytes = 100 },
			want:   "config: limits.max_header_bytes: 100 is too small for real requests; use at least 4096",
		},
		{name: "equal thresholds", change: func(c *Config) { c.Rules.IssuerListWarnBytes = c.Rules.IssuerListErrorBytes }},
		{
			name:   "empty mode",
			change: func(c *Config) { c.Mode = "" },
			want:   `config: mode: "" is not a mode; use observe, intercept or sidecar`,
		},
		{
			name:   "zero PortSet",
			change: func(c *Config) { c.AllowPorts = PortSet{} },
			want:   "config: allow_ports: empty; list at least one port, e.g. 443",
		},
		{
			name:   "zero shutdown timeout",
			change: func(c *Config) { c.ShutdownTimeout = 0 },
			want:   "config: shutdown_timeout: must be positive, got 0s",
		},
		{
			name:   "zero max secrets",
			change: func(c *Config) { c.Decrypt.MaxSecrets = 0 },
			want:   "config: decrypt.max_secrets: must be positive, got 0",
		},
		{
			name:   "admin on the wildcard of listen's port",
			change: func(c *Config) { c.AdminListen = "0.0.0.0:8080" },
			want:   `config: admin_listen: 0.0.0.0:8080 is also listen; change one of them, or set admin_listen to "" to turn the admin server off`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.change(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestListenIsLoopback(t *testing.T) {
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LocalHost.:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"192.168.1.10:8080", false},
		{"proxy.example:8080", false},
		{"not an address", false},
	}
	for _, tt := range tests {
		c := &Config{Listen: tt.listen}
		if got := c.ListenIsLoopback(); got != tt.want {
			t.Errorf("ListenIsLoopback() with %q = %v, want %v", tt.listen, got, tt.want)
		}
	}
}

// defaults is the configuration used when no file, variable or flag sets
// anything.
func defaults() *Config {
	l := newLoader(nil, false)
	c := l.decode()
	if l.err != nil {
		panic("config: bad built-in default: " + l.err.Error())
	}
	return c
}
