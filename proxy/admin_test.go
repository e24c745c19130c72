package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// TestPageGuard: the live page on loopback answers a loopback Host only
// (DNS rebinding); beyond loopback it needs access.users (Basic) or
// access.allow_clients, and with neither it is not served; the admin
// server's other paths are as before.
func TestPageGuard(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })
	users := Access{Users: map[string]string{"alice": string(hash)}}
	nets := Access{AllowClients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	for _, c := range []struct {
		name           string
		access         Access
		local, remote  string
		host, user, pw string
		want           int
	}{
		{"loopback, loopback Host", Access{}, "127.0.0.1:9090", "127.0.0.1:5000", "127.0.0.1:9090", "", "", 200},
		{"loopback, localhost", Access{}, "127.0.0.1:9090", "127.0.0.1:5000", "localhost:9090", "", "", 200},
		{"loopback, IPv6", Access{}, "[::1]:9090", "[::1]:5000", "[::1]:9090", "", "", 200},
		{"loopback, rebound name", Access{}, "127.0.0.1:9090", "127.0.0.1:5000", "attacker.example:9090", "", "", http.StatusMisdirectedRequest},
		{"beyond loopback, no rule", Access{}, "10.1.2.3:9090", "10.1.9.9:5000", "certlens.corp:9090", "", "", http.StatusForbidden},
		{"beyond loopback, users, no credentials", users, "10.1.2.3:9090", "10.1.9.9:5000", "certlens.corp:9090", "", "", http.StatusUnauthorized},
		{"beyond loopback, users, wrong password", users, "10.1.2.3:9090", "10.1.9.9:5000", "certlens.corp:9090", "alice", "no", http.StatusUnauthorized},
		{"beyond loopback, users, signed in", users, "10.1.2.3:9090", "10.1.9.9:5000", "certlens.corp:9090", "alice", "pw", 200},
		{"beyond loopback, allowed network", nets, "10.1.2.3:9090", "10.1.9.9:5000", "certlens.corp:9090", "", "", 200},
		{"beyond loopback, other network", nets, "10.1.2.3:9090", "10.2.0.1:5000", "certlens.corp:9090", "", "", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(Options{Page: page, Access: c.access}, zap.NewNop())
			r := httptest.NewRequest("GET", "/", nil)
			r.Host, r.RemoteAddr = c.host, c.remote
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(c.local))))
			if c.user != "" {
				r.SetBasicAuth(c.user, c.pw)
			}
			rec := httptest.NewRecorder()
			s.AdminHandler().ServeHTTP(rec, r)
			if rec.Code != c.want {
				t.Errorf("GET / = %d %q, want %d", rec.Code, rec.Body.String(), c.want)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate: the browser would not ask for a password")
			}
			health := httptest.NewRecorder()
			s.AdminHandler().ServeHTTP(health, httptest.NewRequest("GET", "/healthz", nil))
			if health.Code != 200 {
				t.Errorf("/healthz = %d beside the page", health.Code)
			}
		})
	}
	off := httptest.NewRecorder()
	New(Options{}, zap.NewNop()).AdminHandler().ServeHTTP(off, httptest.NewRequest("GET", "/", nil))
	if off.Code != http.StatusNotFound {
		t.Errorf("no page: GET / = %d, want 404", off.Code)
	}
}
