package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/crypto/bcrypt"
)

// configFileEnv names the config file when --config is not given; it has no
// key because it says where the keys are.
const configFileEnv = "CERTLENS_CONFIG"

// Load builds the Config from defaults, the config file, CERTLENS_*
// variables and the flags in flags, which cobra has already parsed. Only
// flags that were set on the command line override the other sources.
// flags may be nil, or define only some of the serve flags (analyze shares
// a few). Every invalid input is reported as an *Error.
func Load(flags *pflag.FlagSet) (*Config, error) {
	l := newLoader(flags, true)
	file, e := findConfigFile(flags)
	if e != nil {
		return nil, e
	}
	if file != "" {
		if e := l.readFile(file); e != nil {
			return nil, e
		}
	}
	if e := checkSectionEnv(); e != nil {
		return nil, e
	}
	c := l.decode()
	if l.err != nil {
		return nil, l.err
	}
	c.ConfigFile = file
	if e := c.validate(l.userSet); e != nil {
		return nil, l.blame(e)
	}
	c.Warnings = unknownEnv(os.Environ())
	return c, nil
}

// loader reads keys through viper and converts them itself rather than with
// viper's Unmarshal: that way each bad value gets a one-line problem naming
// its key and its source, and YAML numbers are not silently taken as
// nanoseconds for durations.
type loader struct {
	v      *viper.Viper
	flags  map[string]*pflag.Flag // key -> the flag bound to it
	useEnv bool
	file   string
	err    *Error // the first problem decode met
}

func newLoader(flags *pflag.FlagSet, useEnv bool) *loader {
	v := viper.New()
	v.SetConfigType("yaml")
	if useEnv {
		v.SetEnvPrefix("certlens")
		v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
		// So that CERTLENS_ADMIN_LISTEN= turns the admin server off, as
		// admin_listen: "" does in the file.
		v.AllowEmptyEnv(true)
		v.AutomaticEnv()
	}
	l := &loader{v: v, flags: map[string]*pflag.Flag{}, useEnv: useEnv}
	for _, k := range keys {
		// viper reads a bound flag only when it was set on the command
		// line, and falls back to the flag's default only when the key has
		// no other value. Giving every key its own default keeps the key
		// table, not whichever flag set the caller built, the source of
		// defaults.
		v.SetDefault(k.name, k.def)
		if flags == nil || k.flag == "" {
			continue
		}
		if f := flags.Lookup(k.flag); f != nil {
			_ = v.BindPFlag(k.name, f) // fails only for a nil flag
			l.flags[k.name] = f
		}
	}
	return l
}

// findConfigFile picks the file to read: --config, then CERTLENS_CONFIG,
// then the first that exists of ./certlens.yaml and
// $XDG_CONFIG_HOME/certlens/certlens.yaml. An explicitly empty --config or
// CERTLENS_CONFIG reads no file at all.
func findConfigFile(flags *pflag.FlagSet) (string, *Error) {
	if flags != nil {
		if f := flags.Lookup("config"); f != nil && f.Changed {
			return f.Value.String(), nil
		}
	}
	if name, ok := os.LookupEnv(configFileEnv); ok {
		return name, nil
	}
	candidates := []string{"certlens.yaml"}
	if dir := xdgConfigHome(); dir != "" {
		candidates = append(candidates, filepath.Join(dir, "certlens", "certlens.yaml"))
	}
	for _, name := range candidates {
		_, err := os.Stat(name)
		if err == nil {
			return name, nil
		}
		// A file we may not look at may well exist; skipping it would
		// silently run without the settings the user wrote there.
		if errors.Is(err, fs.ErrPermission) {
			return "", &Error{File: name, Problem: "cannot read: " + osProblem(err)}
		}
	}
	return "", nil
}

// xdgConfigHome follows the XDG base directory spec, which says to ignore
// a relative XDG_CONFIG_HOME.
func xdgConfigHome() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return dir
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config")
	}
	return ""
}

func (l *loader) readFile(name string) *Error {
	b, err := os.ReadFile(name)
	if err != nil {
		return &Error{File: name, Problem: "cannot read: " + osProblem(err)}
	}
	// A reading of its own holds the file's keys without the defaults, to
	// find the ones certlens does not know.
	fileOnly := viper.New()
	fileOnly.SetConfigType("yaml")
	if err := fileOnly.ReadConfig(bytes.NewReader(b)); err != nil {
		return &Error{File: name, Problem: yamlProblem(err)}
	}
	if e := checkFileKeys(fileOnly); e != nil {
		e.File = name
		return e
	}
	if err := l.v.ReadConfig(bytes.NewReader(b)); err != nil {
		return &Error{File: name, Problem: yamlProblem(err)}
	}
	l.file = name
	return nil
}

// checkFileKeys rejects keys certlens does not know: a misspelt key would
// otherwise leave its setting at the default without a word.
func checkFileKeys(file *viper.Viper) *Error {
	names := file.AllKeys()
	slices.Sort(names)
	for _, name := range names {
		if _, ok := lookupKey(name); ok {
			continue
		}
		if children := sectionKeys(name); len(children) > 0 {
			// A section whose keys are all commented out reads as null;
			// that is a normal way to leave them at their defaults.
			if file.Get(name) == nil {
				continue
			}
			return &Error{Key: name, Problem: "is a section (" + strings.Join(children, ", ") + "), not a single value"}
		}
		return &Error{Key: name, Problem: "unknown key"}
	}
	return nil
}

// checkSectionEnv rejects a variable named after a whole section, such as
// CERTLENS_LOG: viper would take it to hide every key of the section, which
// would then read as empty with no hint why.
func checkSectionEnv() *Error {
	seen := map[string]bool{}
	for _, k := range keys {
		section, _, nested := strings.Cut(k.name, ".")
		if !nested || seen[section] {
			continue
		}
		seen[section] = true
		if _, ok := os.LookupEnv(envVar(section)); ok {
			children := sectionKeys(section)
			vars := make([]string, len(children))
			for i, child := range children {
				vars[i] = envVar(child)
			}
			return &Error{Key: section, Env: envVar(section), Problem: "is a section; set " + strings.Join(vars, ", ") + " instead"}
		}
	}
	return nil
}

func sectionKeys(section string) []string {
	var children []string
	for _, k := range keys {
		if strings.HasPrefix(k.name, section+".") {
			children = append(children, k.name)
		}
	}
	return children
}

// yamlProblem turns a YAML error, which may span lines, into one line that
// keeps the line number.
func yamlProblem(err error) string {
	var pe viper.ConfigParseError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap()
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	// yaml.v3 reports what is not a mapping, and duplicate keys, as
	// "unmarshal errors"; the first is worth its own words, as the Go type
	// it names means nothing to the reader.
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors: "); ok {
		if where, what, _ := strings.Cut(rest, ": "); strings.HasPrefix(what, "cannot unmarshal") {
			return "not a YAML mapping of keys to values (" + where + ")"
		}
		msg = rest
	}
	return "not valid YAML: " + msg
}

// osProblem drops the operation and path that *fs.PathError repeats, since
// the Error already names the file.
func osProblem(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// source names where key's current value comes from: at most one of the
// results is set, none for a default.
func (l *loader) source(key string) (file, env, flag string) {
	if f := l.flags[key]; f != nil && f.Changed {
		return "", "", f.Name
	}
	if l.useEnv {
		if _, ok := os.LookupEnv(envVar(key)); ok {
			return "", envVar(key), ""
		}
	}
	if l.file != "" && l.v.InConfig(key) {
		return l.file, "", ""
	}
	return "", "", ""
}

func (l *loader) userSet(key string) bool {
	file, env, flag := l.source(key)
	return file != "" || env != "" || flag != ""
}

func (l *loader) blame(e *Error) *Error {
	e.File, e.Env, e.Flag = l.source(e.Key)
	return e
}

func (l *loader) fail(key, problem string) {
	if l.err == nil {
		l.err = l.blame(&Error{Key: key, Problem: problem})
	}
}

// decode reads every key; Go evaluates the calls in the literal left to
// right, so the first problem reported is that of the earliest field.
func (l *loader) decode() *Config {
	return &Config{
		Listen:         l.str("listen"),
		Mode:           l.str("mode"),
		Upstream:       l.str("upstream"),
		Log:            Log{Format: l.str("log.format"), Level: l.str("log.level"), File: l.str("log.file")},
		ExpectCerts:    l.list("expect_certs"),
		AllowPorts:     l.ports("allow_ports"),
		AllowHTTPPorts: l.ports("allow_http_ports"),
		AdminListen:    l.str("admin_listen"),
		AdminPprof:     l.bool("admin_pprof"),
		AdminUI:        l.bool("admin_ui"),
		PACHosts:       l.patterns("pac_hosts"),
		Keylog:         l.str("keylog"),
		Decrypt: Decrypt{
			KeylogFile: l.str("decrypt.keylog_file"),
			MaxSecrets: l.int("decrypt.max_secrets"),
			Wait:       l.duration("decrypt.wait"),
		},
		Rules: Rules{
			IssuerListWarnBytes:  l.int("rules.issuer_list_warn_bytes"),
			IssuerListErrorBytes: l.int("rules.issuer_list_error_bytes"),
			ClientCertHosts:      l.list("rules.client_cert_hosts"),
		},
		Tunnel: Tunnel{
			IdleTimeout:        l.duration("tunnel.idle_timeout"),
			DialTimeout:        l.duration("tunnel.dial_timeout"),
			WatchRenegotiation: l.bool("tunnel.watch_renegotiation"),
			Parse:              l.bool("tunnel.parse"),
		},
		Sidecar: Sidecar{
			Routes:               l.routes("sidecar.routes"),
			ProxyProtocol:        l.bool("sidecar.proxy_protocol"),
			ProxyProtocolVersion: l.int("sidecar.proxy_protocol_version"),
		},
		Access: Access{
			Users:        l.users("access.users"),
			AllowClients: l.prefixes("access.allow_clients"),
			AllowHosts:   l.patterns("access.allow_hosts"),
			DenyHosts:    l.patterns("access.deny_hosts"),
		},
		Limits: Limits{
			MaxConns:          l.int("limits.max_conns"),
			ReadHeaderTimeout: l.duration("limits.read_header_timeout"),
			MaxHeaderBytes:    l.int("limits.max_header_bytes"),
		},
		ShutdownTimeout: l.duration("shutdown_timeout"),
		Intercept: Intercept{
			CADir:            l.str("intercept.ca_dir"),
			ClientCerts:      l.clientCerts("intercept.client_certs"),
			UpstreamRoots:    l.list("intercept.upstream_roots"),
			InsecureUpstream: l.bool("intercept.insecure_upstream"),
		},
		OTLP: OTLP{
			Endpoint:        l.str("otlp.endpoint"),
			Protocol:        l.str("otlp.protocol"),
			Headers:         l.headers("otlp.headers"),
			TLS:             OTLPTLS{CA: l.str("otlp.tls.ca"), Cert: l.str("otlp.tls.cert"), Key: l.str("otlp.tls.key")},
			Timeout:         l.duration("otlp.timeout"),
			QueueSize:       l.int("otlp.queue_size"),
			MetricsInterval: l.duration("otlp.metrics_interval"),
		},
	}
}

// headers reads "NAME=VALUE" items. A value is often a secret: a problem
// names the header, never its value.
func (l *loader) headers(key string) []Header {
	var out []Header
	for _, item := range l.list(key) {
		name, value, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t:") {
			l.fail(key, fmt.Sprintf("an item is not NAME=VALUE (header %q)", redactHeader(name, ok)))
			return nil
		}
		out = append(out, Header{Name: name, Value: strings.TrimSpace(value)})
	}
	return out
}

func redactHeader(name string, hasValue bool) string {
	if !hasValue {
		return "<no = in the item>"
	}
	return name
}

// users reads "NAME:BCRYPT_HASH" items. The hash is checked here so that a
// pasted password, or a hash cut short, fails at start and not at the
// first client.
func (l *loader) users(key string) []User {
	var out []User
	for _, item := range l.list(key) {
		name, hash, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || name == "" {
			l.fail(key, fmt.Sprintf("%q is not NAME:BCRYPT_HASH (make one with: certlens passwd NAME)", redact(item)))
			return nil
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			l.fail(key, fmt.Sprintf("user %q: the password is not a bcrypt hash (%v); make one with: certlens passwd %s", name, err, name))
			return nil
		}
		out = append(out, User{Name: name, Hash: hash})
	}
	return out
}

// redact keeps a user's name and hides what follows: the value may be a
// password pasted by mistake.
func redact(item string) string {
	if name, _, ok := strings.Cut(item, ":"); ok {
		return name + ":…"
	}
	if len(item) > 3 {
		return item[:3] + "…"
	}
	return "…"
}

// prefixes reads CIDRs; a bare address is a one-address network.
func (l *loader) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range l.list(key) {
		item = strings.TrimSpace(item)
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				l.fail(key, fmt.Sprintf("%q is not an address or CIDR (e.g. 10.0.0.0/8, 192.168.1.20)", item))
				return nil
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// patterns reads host patterns (path.Match syntax), lower-cased.
func (l *loader) patterns(key string) []string {
	var out []string
	for _, item := range l.list(key) {
		item = strings.ToLower(strings.TrimSpace(item))
		if _, err := path.Match(item, ""); err != nil || item == "" {
			l.fail(key, fmt.Sprintf("%q is not a host pattern (e.g. *.corp.example)", item))
			return nil
		}
		out = append(out, item)
	}
	return out
}

// clientCerts reads "HOST_PATTERN=FILE" items.
func (l *loader) clientCerts(key string) []ClientCertEntry {
	var out []ClientCertEntry
	ok := l.patternItems(key, "HOST_PATTERN=FILE", func(item, pattern, file string) bool {
		if file == "" {
			l.fail(key, fmt.Sprintf("%q is not HOST_PATTERN=FILE", item))
			return false
		}
		out = append(out, ClientCertEntry{Pattern: pattern, File: file})
		return true
	})
	if !ok {
		return nil
	}
	return out
}

// routes reads "SNI_PATTERN=HOST:PORT" items: one string per route keeps
// the list the same in YAML, in a comma separated variable and on a flag.
func (l *loader) routes(key string) []Route {
	var out []Route
	ok := l.patternItems(key, "SNI_PATTERN=HOST:PORT", func(item, pattern, upstream string) bool {
		if p := hostPortProblem(upstream, true); p != "" {
			l.fail(key, fmt.Sprintf("%q: %s", item, p))
			return false
		}
		out = append(out, Route{Pattern: pattern, Upstream: upstream})
		return true
	})
	if !ok {
		return nil
	}
	return out
}

// patternItems splits key's "PATTERN=VALUE" items, checks the pattern and
// hands each to take. The first bad item (or take's false) ends the list:
// the key has failed, and it returns false.
func (l *loader) patternItems(key, form string, take func(item, pattern, value string) bool) bool {
	for _, item := range l.list(key) {
		pattern, value, ok := strings.Cut(item, "=")
		pattern, value = strings.TrimSpace(pattern), strings.TrimSpace(value)
		if !ok || pattern == "" {
			l.fail(key, fmt.Sprintf("%q is not %s", item, form))
			return false
		}
		if _, err := path.Match(pattern, ""); err != nil {
			l.fail(key, fmt.Sprintf("%q: bad pattern: %v", pattern, err))
			return false
		}
		if !take(item, pattern, value) {
			return false
		}
	}
	return true
}

// scalar renders a single YAML, env or flag value as text; ok is false for
// a list or a section.
func scalar(v any) (s string, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case []any, []string, map[string]any:
		return "", false
	default:
		return fmt.Sprint(x), true
	}
}

func (l *loader) str(key string) string {
	s, ok := scalar(l.v.Get(key))
	if !ok {
		l.fail(key, "must be a single value, not a list or section")
	}
	return s
}

func (l *loader) int(key string) int {
	switch x := l.v.Get(key).(type) {
	case int:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < math.MaxInt32 {
			return int(x)
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n
		}
	}
	s, _ := scalar(l.v.Get(key))
	l.fail(key, fmt.Sprintf("%q is not a whole number", s))
	return 0
}

func (l *loader) duration(key string) time.Duration {
	v := l.v.Get(key)
	s, ok := scalar(v)
	if !ok {
		l.fail(key, "must be a duration such as 30s or 5m, not a list or section")
		return 0
	}
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	// A unitless number, which YAML also gives as an int, gets its own hint:
	// viper's own conversion would have taken 300 as 300 nanoseconds.
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		l.fail(key, fmt.Sprintf("%q has no unit; write e.g. %ss", s, s))
		return 0
	}
	l.fail(key, fmt.Sprintf("%q is not a duration; write e.g. 30s, 5m or 1h", s))
	return 0
}

func (l *loader) bool(key string) bool {
	switch x := l.v.Get(key).(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	s, _ := scalar(l.v.Get(key))
	l.fail(key, fmt.Sprintf("%q is not true or false", s))
	return false
}

// list accepts a YAML list, a repeated flag, or one comma separated string
// (how an environment variable carries a list).
func (l *loader) list(key string) []string {
	var out []string
	switch x := l.v.Get(key).(type) {
	case []string:
		out = slices.Clone(x)
	case []any:
		for _, item := range x {
			s, ok := scalar(item)
			if !ok {
				l.fail(key, "must be a list of single values")
				return nil
			}
			out = append(out, s)
		}
	case map[string]any:
		l.fail(key, "must be a list, not a section")
		return nil
	default:
		s, _ := scalar(x)
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ports accepts "443,8443", a YAML list of ports and ranges, or one port.
func (l *loader) ports(key string) PortSet {
	var text string
	switch x := l.v.Get(key).(type) {
	case []string:
		text = strings.Join(x, ",")
	case []any:
		items := make([]string, len(x))
		for i, item := range x {
			s, ok := scalar(item)
			if !ok {
				l.fail(key, "must be a list of ports and ranges")
				return PortSet{}
			}
			items[i] = s
		}
		text = strings.Join(items, ",")
	default:
		s, ok := scalar(x)
		if !ok {
			l.fail(key, "must be a list of ports and ranges, not a section")
			return PortSet{}
		}
		text = s
	}
	p, err := parsePortSet(text)
	if err != nil {
		l.fail(key, err.Error())
	}
	return p
}
