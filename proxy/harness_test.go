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

	"github.com/certlens/certlens/internal/event"
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

// line is one logged JSON line and its msg.
type line struct {
	msg string
	raw []byte
}

// lines returns every line logged so far.
func (e *events) lines(t testing.TB) []line {
	t.Helper()
	e.mu.Lock()
	data := append([]byte(nil), e.buf.Bytes()...)
	e.mu.Unlock()
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var head struct{ Msg string }
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		out = append(out, line{head.Msg, append([]byte(nil), sc.Bytes()...)})
	}
	return out
}

// all returns every log line with the given msg, for the lines no event
// type describes ("http", "request refused", ...); handshake and
// connection closed events are read with handshakes and closed.
func (e *events) all(t testing.TB, msg string) []map[string]any {
	t.Helper()
	if msg == "handshake" || msg == "connection closed" {
		t.Fatalf("%s events have a type: read them with handshakes, closed and the like", msg)
	}
	var out []map[string]any
	for _, l := range e.lines(t) {
		if l.msg != msg {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l.raw, &m); err != nil {
			t.Fatalf("log line: %v: %s", err, l.raw)
		}
		out = append(out, m)
	}
	return out
}

// wait polls until n log lines with msg exist; for lines no event type
// describes.
func (e *events) wait(t testing.TB, msg string, n int) []map[string]any {
	t.Helper()
	return poll(t, e, msg, n, func() []map[string]any { return e.all(t, msg) })
}

// poll calls read until it returns n or more (lines are written by the
// tunnel goroutines, after the client already has its answer).
func poll[T any](t testing.TB, e *events, msg string, n int, read func() []T) []T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := read()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("waited for %d %q lines, got %d; log:\n%s", n, msg, len(got), e.text())
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loggedEvent is an event type the proxy logs.
type loggedEvent interface {
	event.Handshake | event.Closed
}

// msgFor is the msg the log writes T with.
func msgFor[T loggedEvent]() string {
	var v T
	if _, ok := any(&v).(*event.Handshake); ok {
		return "handshake"
	}
	return "connection closed"
}

// connOf says which connection, to which target, an event is of.
func connOf[T loggedEvent](v *T) (connID, target string) {
	switch v := any(v).(type) {
	case *event.Handshake:
		return v.ConnID, v.Target
	case *event.Closed:
		return v.ConnID, v.Target
	}
	panic("unreachable")
}

// decoded returns every T logged so far, decoded into the event type.
func decoded[T loggedEvent](t testing.TB, e *events) []*T {
	t.Helper()
	msg := msgFor[T]()
	var out []*T
	for _, l := range e.lines(t) {
		if l.msg != msg {
			continue
		}
		v := new(T)
		if err := json.Unmarshal(l.raw, v); err != nil {
			t.Fatalf("%s event does not decode into its type: %v: %s", msg, err, l.raw)
		}
		out = append(out, v)
	}
	return out
}

// waitFor polls until n events of type T exist.
func waitFor[T loggedEvent](t testing.TB, e *events, n int) []*T {
	t.Helper()
	return poll(t, e, msgFor[T](), n, func() []*T { return decoded[T](t, e) })
}

// forTarget returns the T events of connections to target, in the order
// they were logged.
func forTarget[T loggedEvent](t testing.TB, e *events, target string) []*T {
	t.Helper()
	var out []*T
	for _, v := range decoded[T](t, e) {
		if _, tg := connOf(v); tg == target {
			out = append(out, v)
		}
	}
	return out
}

func (e *events) handshakes(t testing.TB) []*event.Handshake { return decoded[event.Handshake](t, e) }
func (e *events) closed(t testing.TB) []*event.Closed        { return decoded[event.Closed](t, e) }

func (e *events) waitHandshakes(t testing.TB, n int) []*event.Handshake {
	t.Helper()
	return waitFor[event.Handshake](t, e, n)
}

func (e *events) waitClosed(t testing.TB, n int) []*event.Closed {
	t.Helper()
	return waitFor[event.Closed](t, e, n)
}

func (e *events) handshakesFor(t testing.TB, target string) []*event.Handshake {
	t.Helper()
	return forTarget[event.Handshake](t, e, target)
}

func (e *events) closedFor(t testing.TB, target string) []*event.Closed {
	t.Helper()
	return forTarget[event.Closed](t, e, target)
}

// levelOf is the level the log wrote h at.
func (e *events) levelOf(t testing.TB, h *event.Handshake) string {
	t.Helper()
	for _, l := range e.lines(t) {
		var head struct {
			Level  string
			ConnID string `json:"conn_id"`
			Index  int    `json:"handshake"`
		}
		if l.msg == "handshake" && json.Unmarshal(l.raw, &head) == nil && head.ConnID == h.ConnID && head.Index == h.Index {
			return head.Level
		}
	}
	t.Fatalf("no handshake %d of conn %s in the log", h.Index, h.ConnID)
	return ""
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

// settle waits until at least n handshake events exist for target and every
// connection that logged one has also logged "connection closed", so that
// no late event changes what a test counts; it returns target's handshake
// events. Clients that open several connections (Chromium) need this.
func (e *events) settle(t testing.TB, target string, n int) []*event.Handshake {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		hs := e.handshakesFor(t, target)
		closed := map[string]bool{}
		for _, c := range e.closedFor(t, target) {
			closed[c.ConnID] = true
		}
		open := 0
		for _, h := range hs {
			if !closed[h.ConnID] {
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
func findingIDs(h *event.Handshake) []string {
	var ids []string
	for _, f := range h.Findings {
		ids = append(ids, f.ID)
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
