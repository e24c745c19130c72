package proxy

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/rules"
)

func getPAC(t *testing.T, s *Server, host string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/proxy.pac", nil)
	req.Host = host
	s.AdminHandler().ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

// /proxy.pac sends the hosts under diagnosis through the proxy's own
// address and the rest DIRECT, from the live configuration.
func TestProxyPAC(t *testing.T) {
	addr, s, _ := startServer(t, Options{Rules: rules.Options{ClientCertHosts: []string{"*.Corp.example"}},
		PACHosts: []string{"iis.test", "*.corp.example"}})
	deadline := time.Now().Add(5 * time.Second)
	for s.proxyAddr.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	code, ctype, body := getPAC(t, s, "127.0.0.1:9090")
	if code != 200 || ctype != "application/x-ns-proxy-autoconfig" {
		t.Fatalf("status %d, Content-Type %q", code, ctype)
	}
	want := "function FindProxyForURL(url, host) {\n\thost = host.toLowerCase();\n" +
		"\tif (shExpMatch(host, \"*.corp.example\")) return \"PROXY " + addr + "\";\n" +
		"\tif (shExpMatch(host, \"iis.test\")) return \"PROXY " + addr + "\";\n" +
		"\treturn \"DIRECT\";\n}\n"
	if !strings.HasSuffix(body, want) {
		t.Errorf("proxy.pac:\n%s\nwant it to end with\n%s", body, want)
	}

	// A reload changes it at once; with no host listed everything is DIRECT.
	dyn := *s.dyn.Load()
	dyn.Rules.ClientCertHosts, dyn.PACHosts = nil, nil
	s.Reload(dyn)
	_, _, body = getPAC(t, s, "127.0.0.1:9090")
	if strings.Contains(body, "PROXY") || !strings.Contains(body, "No host is listed") || !strings.Contains(body, "return \"DIRECT\"") {
		t.Errorf("proxy.pac with no host:\n%s", body)
	}

	// Sidecar mode is no forward proxy.
	side := New(Options{Mode: event.ModeSidecar}, s.log)
	if code, _, body := getPAC(t, side, "127.0.0.1:9090"); code != 404 || !strings.Contains(body, "sidecar") {
		t.Errorf("sidecar: %d %q", code, body)
	}
}

func TestPACProxyAddress(t *testing.T) {
	cases := []struct {
		listen, host, want string
	}{
		{"127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "proxyhost.corp.example:9090", "proxyhost.corp.example:8080"},
		{"[::]:8080", "[2001:db8::1]:9090", "[2001:db8::1]:8080"},
		{"0.0.0.0:8080", "10.0.0.5", "10.0.0.5:8080"},
	}
	for _, tc := range cases {
		a, err := net.ResolveTCPAddr("tcp", tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := pacProxy(a, tc.host); got != tc.want {
			t.Errorf("listen %s, admin reached as %s: PROXY %s, want %s", tc.listen, tc.host, got, tc.want)
		}
	}
}
