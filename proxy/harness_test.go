package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/certlens/certlens/internal/testkit/peertest"
)

// events collects the JSON lines the proxy logs, for assertions on parsed
// events, never on log text.
type events struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (e *events) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.Write(p)
}

func (e *events) Sync() error { return nil }

// text is the log so far. Fatalf must not be called with e.mu held: the
// proxy's cleanup still logs.
func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}

// all returns every event with the given msg.
func (e *events) all(t testing.TB, msg string) []map[string]any {
	t.Helper()
	e.mu.Lock()
	data := append([]byte(nil), e.buf.Bytes()...)
	e.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// wait polls until n events with msg exist (events are written by the tunnel
// goroutines, after the client already has its answer).
func (e *events) wait(t testing.TB, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.all(t, msg)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("waited for %d %q events, got %d; log:\n%s", n, msg, len(got), e.text())
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProxy runs an observe-mode Server on a free loopback port.
func startProxy(t testing.TB, opts Options) (string, *events) {
	t.Helper()
	addr, _, ev := startServer(t, opts)
	return addr, ev
}

// startServer is startProxy that also returns the Server.
func startServer(t testing.TB, opts Options) (string, *Server, *events) {
	t.Helper()
	ev := &events{}
	addr, s := startServerInto(t, opts, ev)
	return addr, s, ev
}

// startServerInto is startServer logging into ev, so that several servers
// (one sidecar per upstream) can share one event stream; ev may be any
// sink of JSON lines (the load test counts them instead).
func startServerInto(t testing.TB, opts Options, ev interface {
	zapcore.WriteSyncer
	text() string
}) (string, *Server) {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var sink zapcore.WriteSyncer = ev
	if src := invariant.NewSource(t); src != nil {
		sink = zapcore.NewMultiWriteSyncer(ev, src)
	}
	log := zap.New(zapcore.NewCore(enc, sink, zapcore.DebugLevel))
	if opts.AllowPort == nil {
		opts.AllowPort = func(int) bool { return true }
		opts.AllowPortsText = "1-65535"
	}
	if opts.AllowHTTPPort == nil {
		opts.AllowHTTPPort = func(int) bool { return true }
		opts.AllowHTTPPortsText = "1-65535"
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = time.Minute
	}
	s := New(opts, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if t.Failed() {
			t.Logf("proxy log:\n%s", ev.text())
		}
	})
	return ln.Addr().String(), s
}

// curl runs curl through the proxy and returns its stdout, stderr and error.
func curl(t testing.TB, proxyAddr string, args ...string) (string, string, error) {
	t.Helper()
	return runCurl(t, append([]string{"-sS", "--noproxy", "", "-x", "http://" + proxyAddr}, args...)...)
}

// runCurl runs curl with a clean environment: no proxy variables, no ~/.curlrc.
func runCurl(t testing.TB, args ...string) (string, string, error) {
	t.Helper()
	return runCurlEnv(t, nil, args...)
}

// runCurlEnv is runCurl with env added to the clean environment
// (SSLKEYLOGFILE, say).
func runCurlEnv(t testing.TB, env []string, args ...string) (string, string, error) {
	t.Helper()
	bin := peertest.Require(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// field walks a parsed event: field(ev, "cert_request", "issuer_count").
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// forTarget returns the events with msg for connections to target, in the
// order they were logged.
func (e *events) forTarget(t testing.TB, msg, target string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range e.all(t, msg) {
		if m["target"] == target {
			out = append(out, m)
		}
	}
	return out
}

// settle waits until at least n handshake events exist for target and every
// connection that logged one has also logged "connection closed", so that
// no late event changes what a test counts; it returns target's handshake
// events. Clients that open several connections (Chromium) need this.
func (e *events) settle(t testing.TB, target string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		hs := e.forTarget(t, "handshake", target)
		closed := map[any]bool{}
		for _, c := range e.forTarget(t, "connection closed", target) {
			closed[c["conn_id"]] = true
		}
		open := 0
		for _, h := range hs {
			if !closed[h["conn_id"]] {
				open++
			}
		}
		if len(hs) >= n && open == 0 {
			return hs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d handshake events for %s with their connections closed; have %d, %d open; log:\n%s", n, target, len(hs), open, e.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findingIDs lists the ids of an event's findings.
func findingIDs(m map[string]any) []string {
	var ids []string
	list, _ := m["findings"].([]any)
	for _, f := range list {
		if f, ok := f.(map[string]any); ok {
			ids = append(ids, fmt.Sprint(f["id"]))
		}
	}
	return ids
}

// loopbackOnly is the upstream dialer of proxies that real browsers use in
// tests: Chromium fetches things of its own in the background through the
// proxy, and no test may send traffic off this machine.
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("test proxy dials loopback addresses only, not %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// tcpServer is peertest.TCPServer.
func tcpServer(t testing.TB, handle func(net.Conn)) string { return peertest.TCPServer(t, handle) }

// echo sends back what it reads until the client half-closes.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }
