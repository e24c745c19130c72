package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/certlens/certlens/internal/event"
)

// pacContentType is the type browsers and WinHTTP expect of a PAC file
// (Netscape's original; application/x-javascript-config is older still).
const pacContentType = "application/x-ns-proxy-autoconfig"

// servePAC answers /proxy.pac: a proxy auto-config file that sends the
// hosts under diagnosis (rules.client_cert_hosts and pac_hosts) through
// certlens and every other host DIRECT, so that a system pointed at it
// routes only those through certlens. It is built per request from the
// live configuration: a reload changes it at once.
func (s *Server) servePAC(w http.ResponseWriter, r *http.Request) {
	if s.opts.Mode == event.ModeSidecar {
		http.Error(w, "no proxy.pac in sidecar mode: certlens is not a forward proxy here, clients reach it as the server itself", http.StatusNotFound)
		return
	}
	addr := s.proxyAddr.Load()
	if addr == nil {
		http.Error(w, "the proxy is not listening yet", http.StatusServiceUnavailable)
		return
	}
	dyn := s.dyn.Load()
	w.Header().Set("Content-Type", pacContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(pacFile(pacProxy(addr, r.Host), pacPatterns(dyn.Rules.ClientCertHosts, dyn.PACHosts))))
}

// pacProxy is the proxy's address as the PAC's client should dial it: its
// listener's, or when that is every interface (0.0.0.0, ::), the host the
// client reached the admin server by.
func pacProxy(addr *net.TCPAddr, requestHost string) string {
	host := addr.IP.String()
	if addr.IP == nil || addr.IP.IsUnspecified() {
		host = "127.0.0.1"
		if h, _, err := net.SplitHostPort(requestHost); err == nil && h != "" {
			host = h
		} else if requestHost != "" {
			host = requestHost
		}
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(addr.Port))
}

// pacPatterns are the patterns, lower case, each once, in order.
func pacPatterns(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, p := range l {
			p = strings.ToLower(strings.TrimSpace(p))
			if p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// pacFile writes FindProxyForURL. Patterns are host patterns of path.Match
// syntax; shExpMatch reads * and ? the same way. Each is a JSON string,
// which JavaScript reads as a string literal whatever it holds.
func pacFile(proxy string, patterns []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// certlens: the hosts under diagnosis go through certlens's proxy at %s; every other host DIRECT.\n", proxy)
	if len(patterns) == 0 {
		b.WriteString("// No host is listed (rules.client_cert_hosts, pac_hosts / --pac-host): everything goes DIRECT.\n")
	}
	b.WriteString("function FindProxyForURL(url, host) {\n\thost = host.toLowerCase();\n")
	for _, p := range patterns {
		q, _ := json.Marshal(p)
		fmt.Fprintf(&b, "\tif (shExpMatch(host, %s)) return \"PROXY %s\";\n", q, proxy)
	}
	b.WriteString("\treturn \"DIRECT\";\n}\n")
	return b.String()
}
