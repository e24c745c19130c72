package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// rawRequest writes req on a new connection to the proxy and returns the
// response's status line and body.
func rawRequest(t *testing.T, proxyAddr, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// refusal waits for the warning event msg whose reason contains want.
func refusal(t *testing.T, ev *events, msg, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range ev.all(t, msg) {
			if strings.Contains(fmt.Sprint(e["reason"]), want) {
				if e["level"] != "warn" {
					t.Errorf("%s event at level %v", msg, e["level"])
				}
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q event with reason %q; log:\n%s", msg, want, ev.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProxyAuthentication(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// The upstream shows what reached it: the proxy's credentials must not.
	seen := make(chan http.Header, 4)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		fmt.Fprint(w, "hello")
	}))
	defer upstream.Close()
	proxyAddr, ev := startProxy(t, Options{Access: Access{Users: map[string]string{"alice": string(hash)}}, Dial: loopbackOnly})

	t.Run("no credentials", func(t *testing.T) {
		out, _, _ := curl(t, proxyAddr, "-sS", "-o", "/dev/null", "-w", "%{http_code}", upstream.URL)
		if out != "407" {
			t.Errorf("status %s, want 407", out)
		}
		refusal(t, ev, "request refused", "proxy authentication: no Proxy-Authorization")
	})
	t.Run("wrong password", func(t *testing.T) {
		_, stderr, err := curl(t, proxyAddr, "-sS", "--proxy-user", "alice:wrong", "https://127.0.0.1:1/")
		if err == nil || !strings.Contains(stderr, "407") {
			t.Errorf("curl: %v %s; want the CONNECT refused with 407", err, stderr)
		}
		refusal(t, ev, "request refused", `wrong password for user "alice"`)
	})
	t.Run("good credentials", func(t *testing.T) {
		out, stderr, err := curl(t, proxyAddr, "-sS", "--proxy-user", "alice:s3cret-pw", upstream.URL)
		if err != nil || out != "hello" {
			t.Fatalf("curl: %v %q %s", err, out, stderr)
		}
		if h := <-seen; h.Get("Proxy-Authorization") != "" {
			t.Errorf("the proxy's credentials reached the server: %q", h.Get("Proxy-Authorization"))
		}
	})
	if log := ev.text(); strings.Contains(log, "s3cret-pw") || strings.Contains(log, "alice:wrong") {
		t.Error("a password is in the log")
	}
}

func TestAllowClients(t *testing.T) {
	proxyAddr, ev := startProxy(t, Options{Access: Access{AllowClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	status, body := rawRequest(t, proxyAddr, "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n")
	if status != http.StatusForbidden || !strings.Contains(body, "not in access.allow_clients") {
		t.Errorf("got %d %q", status, body)
	}
	refusal(t, ev, "connection refused", "is not in access.allow_clients")
}

func TestMaxConns(t *testing.T) {
	proxyAddr, ev := startProxy(t, Options{Limits: Limits{MaxConns: 2}})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Accept runs in the server's goroutine: until it has taken both, a
	// third connection is still served.
	var status int
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		status, body = rawRequest(t, proxyAddr, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
		if status == http.StatusServiceUnavailable {
			break
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "limits.max_conns is 2") {
		t.Errorf("got %d %q, want 503", status, body)
	}
	refusal(t, ev, "connection refused", "limits.max_conns is 2")
	// A freed slot is usable again.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _ = rawRequest(t, proxyAddr, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status == http.StatusServiceUnavailable {
		t.Error("still 503 after a connection closed")
	}
	held[1].Close()
}

func TestBadRequests(t *testing.T) {
	proxyAddr, ev := startProxy(t, Options{Limits: Limits{ReadHeaderTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096},
		DenyHosts: []string{"*.internal.example"}})

	t.Run("malformed request line", func(t *testing.T) {
		status, _ := rawRequest(t, proxyAddr, "HELLO\r\n\r\n")
		if status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
		refusal(t, ev, "request refused", "malformed request")
	})
	t.Run("malformed CONNECT target", func(t *testing.T) {
		status, body := rawRequest(t, proxyAddr, "CONNECT nohostport HTTP/1.1\r\nHost: nohostport\r\n\r\n")
		if status != http.StatusBadRequest || !strings.Contains(body, "not host:port") {
			t.Errorf("got %d %q", status, body)
		}
		refusal(t, ev, "connect refused", "CONNECT target is not host:port")
	})
	t.Run("header too large", func(t *testing.T) {
		status, _ := rawRequest(t, proxyAddr, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", status)
		}
		refusal(t, ev, "request refused", "over limits.max_header_bytes")
	})
	t.Run("header never ends (slowloris)", func(t *testing.T) {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Slow: ")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("the proxy did not close a stalled client: %v", err)
		}
		refusal(t, ev, "request refused", "no complete request header within limits.read_header_timeout")
	})
	t.Run("denied host", func(t *testing.T) {
		status, body := rawRequest(t, proxyAddr, "CONNECT db.Internal.example:443 HTTP/1.1\r\nHost: db.internal.example:443\r\n\r\n")
		if status != http.StatusForbidden || !strings.Contains(body, "access.deny_hosts") {
			t.Errorf("got %d %q", status, body)
		}
		refusal(t, ev, "connect refused", `matches access.deny_hosts "*.internal.example"`)
	})
	// After all that, the proxy still serves.
	upstream := tcpServer(t, echo)
	c, err := dialVia(proxyAddr, upstream)
	if err != nil {
		t.Fatalf("CONNECT after the bad requests: %v", err)
	}
	c.Close()
}

// access.allow_hosts: only the hosts it names are reached, and a reload
// changes the list for the next CONNECT.
func TestAllowHosts(t *testing.T) {
	upstream := tcpServer(t, echo)
	proxyAddr, s, ev := startServer(t, Options{AllowHosts: []string{"*.corp.example"}})
	connect := func(target string) (int, string) {
		return rawRequest(t, proxyAddr, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
	}
	status, body := connect(upstream)
	if status != http.StatusForbidden || !strings.Contains(body, "is not in access.allow_hosts") {
		t.Errorf("host outside allow_hosts: %d %q", status, body)
	}
	refusal(t, ev, "connect refused", "host 127.0.0.1 is not in access.allow_hosts")

	dyn := *s.dyn.Load()
	dyn.AllowHosts = []string{"*.corp.example", "127.0.0.1"}
	s.Reload(dyn)
	c, err := dialVia(proxyAddr, upstream)
	if err != nil {
		t.Fatalf("host allowed after the reload: %v", err)
	}
	c.Close()
}

// A reload changes who may use the proxy (access.users, access.allow_clients)
// and the idle timeout of the tunnels opened after it; a tunnel already
// open keeps the timeout it started with.
func TestReloadAccessAndIdleTimeout(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	upstream := tcpServer(t, echo)
	proxyAddr, s, ev := startServer(t, Options{Access: Access{AllowClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	connect := func(auth string) int {
		c, err := net.Dial("tcp", proxyAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", upstream, upstream, auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("no answer to CONNECT: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := connect(""); got != http.StatusForbidden {
		t.Fatalf("client outside access.allow_clients: %d, want 403", got)
	}

	dyn := *s.dyn.Load()
	dyn.Access = Access{Users: map[string]string{"alice": string(hash)}}
	s.Reload(dyn)
	if got := connect(""); got != http.StatusProxyAuthRequired {
		t.Errorf("after the reload to access.users, without credentials: %d, want 407", got)
	}
	if got := connect("Proxy-Authorization: Basic YWxpY2U6czNjcmV0LXB3\r\n"); got != http.StatusOK {
		t.Errorf("after the reload to access.users, as alice: %d, want 200", got)
	}

	dyn.Access = Access{}
	s.Reload(dyn)
	before, err := dialVia(proxyAddr, upstream) // idle timeout a minute
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	dyn.IdleTimeout = 300 * time.Millisecond
	s.Reload(dyn)
	after, err := dialVia(proxyAddr, upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	_ = after.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := after.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle tunnel opened after the reload: read %v, want EOF from the proxy closing it", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("closed after %s, want about 300ms", took)
	}
	idled := false
	for _, e := range ev.waitClosed(t, 2) {
		idled = idled || e.Reason == "idle timeout"
	}
	if !idled {
		t.Errorf("no tunnel closed for the idle timeout:\n%s", ev.text())
	}
	// The tunnel opened before the reload is still up.
	if _, err := before.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = before.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(before, buf); err != nil || string(buf) != "ping" {
		t.Errorf("tunnel opened before the reload: %q %v", buf, err)
	}
}
