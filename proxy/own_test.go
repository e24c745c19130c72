package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// proxyGet sends a plain-HTTP request for target through the proxy.
func proxyGet(t *testing.T, proxyAddr, target string) (int, string) {
	t.Helper()
	proxyURL, _ := url.Parse("http://" + proxyAddr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(target)
	if err != nil {
		t.Fatalf("GET %s through the proxy: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// connectStatus sends a CONNECT for target and returns the status line.
func connectStatus(t *testing.T, proxyAddr, target string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return strings.TrimSpace(line)
}

// TestPlainHTTPFollowsThePolicy: plain-HTTP requests get the checks that
// CONNECT gets: their own port list, allow and deny hosts; a refusal is a
// 403 that says why, and an event.
func TestPlainHTTPFollowsThePolicy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "reached")
	}))
	defer backend.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))

	t.Run("port not in allow_http_ports", func(t *testing.T) {
		proxyAddr, ev := startProxy(t, Options{AllowHTTPPort: func(p int) bool { return p == 80 || p == 8080 }, AllowHTTPPortsText: "80,8080"})
		status, body := proxyGet(t, proxyAddr, backend.URL+"/x")
		if status != http.StatusForbidden || !strings.Contains(body, "port "+port+" is not in allow_http_ports (80,8080)") {
			t.Fatalf("status %d body %q, want 403 naming the port", status, body)
		}
		e := ev.wait(t, "request refused", 1)[0]
		if !strings.Contains(e["reason"].(string), "allow_http_ports") || e["target"] != strings.TrimPrefix(backend.URL, "http://") {
			t.Errorf("event %v", e)
		}
		if got := ev.all(t, "http"); len(got) != 0 {
			t.Errorf("a refused request was forwarded: %v", got)
		}
	})
	t.Run("port allowed", func(t *testing.T) {
		proxyAddr, _ := startProxy(t, Options{AllowHTTPPort: func(p int) bool { return fmt.Sprint(p) == port }, AllowHTTPPortsText: port})
		if status, body := proxyGet(t, proxyAddr, backend.URL+"/x"); status != 200 || body != "reached" {
			t.Fatalf("status %d body %q", status, body)
		}
	})
	t.Run("deny_hosts", func(t *testing.T) {
		proxyAddr, ev := startProxy(t, Options{DenyHosts: []string{"127.0.0.*"}})
		status, body := proxyGet(t, proxyAddr, backend.URL+"/x")
		if status != http.StatusForbidden || !strings.Contains(body, "access.deny_hosts") {
			t.Fatalf("status %d body %q", status, body)
		}
		ev.wait(t, "request refused", 1)
	})
	t.Run("allow_hosts", func(t *testing.T) {
		proxyAddr, _ := startProxy(t, Options{AllowHosts: []string{"intranet.example"}})
		status, body := proxyGet(t, proxyAddr, backend.URL+"/x")
		if status != http.StatusForbidden || !strings.Contains(body, "not in access.allow_hosts") {
			t.Fatalf("status %d body %q", status, body)
		}
	})
}

// TestNeverRelaysToItself: neither CONNECT nor plain HTTP reaches the
// proxy's own listener or its admin server (pprof, metrics), by address or
// by a name that resolves there, even with every port allowed.
func TestNeverRelaysToItself(t *testing.T) {
	proxyAddr, srv, ev := startServer(t, Options{Pprof: true})
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.ServeAdmin(ctx, adminLn) }()
	admin := adminLn.Addr().String()
	_, adminPort, _ := net.SplitHostPort(admin)
	_, proxyPort, _ := net.SplitHostPort(proxyAddr)

	// The admin server answers when asked directly: the refusals below are the proxy's.
	direct := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := direct.Get("http://" + admin + "/debug/pprof/cmdline")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin server: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, target := range []string{
		"http://" + admin + "/debug/pprof/cmdline",
		"http://localhost:" + adminPort + "/metrics",
		"http://" + proxyAddr + "/",
	} {
		status, body := proxyGet(t, proxyAddr, target)
		if status != http.StatusForbidden || !strings.Contains(body, "own listeners") {
			t.Errorf("GET %s: status %d body %q, want 403", target, status, body)
		}
	}
	for _, target := range []string{admin, "localhost:" + proxyPort, proxyAddr} {
		if got := connectStatus(t, proxyAddr, target); !strings.Contains(got, " 403 ") {
			t.Errorf("CONNECT %s: %q, want 403", target, got)
		}
	}
	if got := len(ev.wait(t, "request refused", 3)); got != 3 {
		t.Errorf("%d request refused events, want 3", got)
	}
	if got := len(ev.wait(t, "connect refused", 3)); got != 3 {
		t.Errorf("%d connect refused events, want 3", got)
	}
	if strings.Contains(ev.text(), `"msg":"handshake"`) {
		t.Errorf("a tunnel to itself was opened:\n%s", ev.text())
	}
}

// TestOwnListenersWildcard: a listener on every interface is reached by any
// address of this host on its port, and only on its port.
func TestOwnListenersWildcard(t *testing.T) {
	var o ownListeners
	o.add(&net.TCPAddr{IP: net.IPv4zero, Port: 8080})
	o.add(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9090})
	local := ""
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				local = n.IP.String()
			}
		}
	}
	cases := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"127.0.0.1:9090", true},
		{"[::ffff:127.0.0.1]:9090", true},
		{"127.0.0.1:8081", false},
		{"192.0.2.10:8080", false},
		{"[::1]:9090", false},
	}
	if local != "" {
		cases = append(cases, struct {
			addr string
			want bool
		}{net.JoinHostPort(local, "8080"), true})
	}
	for _, c := range cases {
		err := o.control("tcp", c.addr, nil)
		if (err != nil) != c.want {
			t.Errorf("%s: err %v, want refused=%v", c.addr, err, c.want)
		}
	}
}
