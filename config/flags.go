package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// AddServeFlags defines the flags of `certlens serve` on fs. Their defaults
// are the keys' defaults, so that --help shows what applies when nothing
// else is set; Load still lets the file and environment override a flag
// that was not given.
func AddServeFlags(fs *pflag.FlagSet) {
	fs.String("config", "", `config file (YAML); without it certlens reads ./certlens.yaml or else $XDG_CONFIG_HOME/certlens/certlens.yaml (~/.config when unset), if one exists; "" reads none [CERTLENS_CONFIG]`)

	str := func(name, usage string) {
		k := flagKey(name)
		fs.String(name, k.def.(string), usage+" "+keyRef(k.name))
	}
	strs := func(name, usage string) {
		k := flagKey(name)
		fs.StringArray(name, nil, usage+" "+strings.TrimSuffix(keyRef(k.name), "]")+", comma separated]")
	}

	str("listen", "address the proxy listens on, HOST:PORT; a host other than loopback lets other machines use it")
	str("mode", "observe (watch TLS handshakes in passing), intercept (terminate TLS with certlens's own CA, to see TLS 1.3, renegotiation and the HTTP status) or sidecar (plain TCP listener in front of --upstream)")
	str("upstream", "the server's HOST:PORT that sidecar mode forwards every connection to; required in sidecar mode")
	str("log-format", "log format: json (one JSON line per event, for jq), console (for humans) or ecs (Elastic Common Schema JSON lines, for Filebeat/Elastic Agent)")
	str("log-level", "least severe events written: debug, info, warn or error; handshakes predicting a 403 are warn or error")
	str("otlp-endpoint", "send every handshake and connection event (as OpenTelemetry log records) and the metrics to this OpenTelemetry Collector, a URL: http://collector:4317 (gRPC; otlp.protocol http/protobuf for :4318); empty sends nothing")
	str("log-file", "also append every event as a JSON line to this file (created 0600), for tail -f | jq; stdout keeps the --log-format output")
	strs("expect-cert", "client certificate file (PEM, DER or PKCS#12 without a password) you expect the client to send, or store:nss[:DIR], store:windows, store:macos for every certificate of a store; findings then say why it was not offered; repeat for several")
	str("allow-ports", "ports the proxy will open CONNECT tunnels to: ports and ranges, e.g. 443,8443,10000-20000")
	str("allow-http-ports", "ports plain-HTTP requests through the proxy may go to (http:// URLs, not CONNECT), e.g. 80,8080")
	str("admin-listen", `address of the admin HTTP server, HOST:PORT; "" turns it off`)
	str("keylog", "intercept mode: write the TLS secrets of both sides, the browser's connection to certlens and certlens's own to the server, to this file (NSS key log format, for Wireshark); empty writes none")
	str("decrypt-keylog", "the client's key log (the file its SSLKEYLOGFILE names), followed as it grows, to decrypt TLS 1.3 and renegotiation handshakes passively; empty decrypts nothing")
	strs("pac-host", "host (or pattern, *.corp.example) that the admin server's /proxy.pac sends through certlens, besides rules.client_cert_hosts; every other host goes DIRECT; repeat for several")
	strs("client-cert-host", "host (or pattern) known to want a client certificate, so a TLS 1.3 connection to it that cannot get one is flagged; repeat for several")

	strs("allow-client", "client address or network (CIDR) that may use the proxy; repeat for several; required with proxy authentication unset when --listen is not loopback")
	strs("allow-host", "CONNECT target host pattern the proxy may reach (e.g. *.corp.example); none set allows every host; repeat for several")
	strs("deny-host", "CONNECT target host pattern the proxy refuses, before --allow-host; repeat for several")
	pp := flagKey("pprof")
	fs.Bool("pprof", pp.def.(bool), "serve Go's profiler (net/http/pprof) under /debug/pprof/ on the admin server; it shows goroutine stacks and memory, keep the admin server on loopback "+keyRef(pp.name))
	ui := flagKey("ui")
	fs.Bool("ui", ui.def.(bool), "serve the live page (handshakes as they happen, issuer lists, chains) at the admin server's / ; --ui=false turns it off "+keyRef(ui.name))
	mc := flagKey("max-conns")
	fs.Int("max-conns", mc.def.(int), "client connections held at once; more are answered 503 "+keyRef(mc.name))

	k := flagKey("idle-timeout")
	def, err := time.ParseDuration(k.def.(string))
	if err != nil {
		panic("config: bad default for " + k.name + ": " + err.Error())
	}
	fs.Duration("idle-timeout", def, "close a tunnel after this long without a byte either way "+keyRef(k.name))
}

func flagKey(flag string) key {
	for _, k := range keys {
		if k.flag == flag {
			return k
		}
	}
	panic("config: no key for flag --" + flag)
}

// keyRef is the "[key, ENV]" tail of a flag's help: every flag is also a
// config key and an environment variable, and the help is where people
// find out.
func keyRef(key string) string {
	return fmt.Sprintf("[%s, %s]", key, envVar(key))
}
