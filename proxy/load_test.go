package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// tally counts the proxy's events by target without keeping them: a load
// test's log would otherwise be most of the memory it measures.
type tally struct {
	mu     sync.Mutex
	counts map[string]map[string]int // target -> kind -> count
	bad    []string                  // lines that are not JSON
}

func (y *tally) Write(p []byte) (int, error) {
	var e struct {
		Msg, Target, Visibility, Verdict, Reason string
		NotTLS                                   string `json:"not_tls"`
		Handshakes                               int
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		if err := json.Unmarshal(line, &e); err != nil {
			y.bad = append(y.bad, string(line))
			continue
		}
		c := y.counts[e.Target]
		if c == nil {
			c = map[string]int{}
			y.counts[e.Target] = c
		}
		switch e.Msg {
		case "handshake":
			c["handshake"]++
			c["handshake "+e.Visibility+" "+e.Verdict]++
		case "connection closed":
			c["closed"]++
			c["handshakes"] += e.Handshakes
			if e.NotTLS != "" {
				c["not_tls"]++
			}
			// Reasons carry addresses; keep their kind.
			kind, _, _ := strings.Cut(e.Reason, ":")
			c["reason "+kind]++
		default:
			// goproxy's warnings carry addresses; keep their kind.
			kind, _, _ := strings.Cut(e.Msg, ":")
			c["other "+kind]++
		}
	}
	return len(p), nil
}

func (y *tally) Sync() error { return nil }

func (y *tally) text() string { return y.String() }

func (y *tally) count(target, kind string) int {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.counts[target][kind]
}

func (y *tally) String() string {
	y.mu.Lock()
	defer y.mu.Unlock()
	var b strings.Builder
	for target, c := range y.counts {
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "%s:", target)
		for _, k := range keys {
			fmt.Fprintf(&b, " [%s]=%d", k, c[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// procKB reads a kB figure from /proc/self/status (VmRSS, VmHWM), or -1
// where there is no /proc.
func procKB(key string) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func settledRSS() int {
	runtime.GC()
	debug.FreeOSMemory()
	return procKB("VmRSS")
}

// loadReply is what the load's TLS servers answer. Not shorter: a TLS 1.3
// record of two bytes of data is the size of an alert, and inference would
// read the answer "ok" as the server refusing the handshake.
const loadReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// loadKind is one sort of connection the load mixes: what it does through
// the tunnel, and whether it starts a handshake.
type loadKind struct {
	name      string
	handshake bool
	run       func(c net.Conn) error
}

// TestLoadNothingLost runs a bounded mixed load through one observe-mode
// proxy and checks that no event is lost: one "connection closed" per
// connection, one "handshake" per handshake begun, each with the outcome its
// kind must have; then that the goroutines are gone and the memory returned.
// CERTLENS_LOAD=full runs 20,000 connections, the default 3,000.
func TestLoadNothingLost(t *testing.T) {
	total, workers := 3000, 8
	if os.Getenv("CERTLENS_LOAD") == "full" {
		total, workers = 20000, 16
	}
	if testing.Short() {
		t.Skip("load test: not with -short")
	}
	// Registered first, so it runs after every other cleanup: the proxy
	// and the servers must leave nothing running.
	leakOpts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpts) })

	ca := pkitest.NewCA(t, "certlens load CA")
	srvCert := ca.NewServer(t, "127.0.0.1").TLSCertificate()
	clientCert := ca.NewClient(t, "load@certlens.test").TLSCertificate()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	serve := func(max uint16) string {
		cfg := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MaxVersion: max}
		return loadServer(t, func(c net.Conn) {
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				_, _ = io.WriteString(tc, loadReply)
				_ = tc.Close()
			}
		})
	}
	client := func(v uint16, cert bool) func(net.Conn) error {
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v}
		if cert {
			cfg.Certificates = []tls.Certificate{clientCert}
		}
		return func(c net.Conn) error {
			tc := tls.Client(c, cfg)
			got, err := io.ReadAll(tc)
			if err == nil && string(got) != loadReply {
				err = fmt.Errorf("server said %q", got)
			}
			return err
		}
	}
	garbage := make([]byte, 4096)
	_, _ = rand.Read(garbage)
	garbage[0] = 0x80
	kinds := map[string]loadKind{
		serve(tls.VersionTLS12): {"mutual TLS 1.2", true, client(tls.VersionTLS12, true)},
		serve(tls.VersionTLS12): {"TLS 1.2 without a certificate", true, client(tls.VersionTLS12, false)},
		serve(tls.VersionTLS13): {"TLS 1.3", true, client(tls.VersionTLS13, true)},
		serve(tls.VersionTLS12): {"client reset mid-handshake", true, func(c net.Conn) error {
			err := tls.Client(resetAfterFirstRead{c}, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}).Handshake()
			if err == nil {
				return errors.New("handshake completed on a reset connection")
			}
			return nil
		}},
		loadServer(t, echo): {"garbage", false, func(c net.Conn) error {
			go func() {
				_, _ = c.Write(garbage)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
			n, err := io.Copy(io.Discard, c)
			if err == nil && n != int64(len(garbage)) {
				err = fmt.Errorf("echoed %d of %d bytes", n, len(garbage))
			}
			return err
		}},
	}
	targets := make([]string, 0, len(kinds))
	for target := range kinds {
		targets = append(targets, target)
	}
	sort.Strings(targets)

	y := &tally{counts: map[string]map[string]int{}}
	proxyAddr, _ := startServerInto(t, Options{WatchRenegotiation: true}, y)

	// One connection of each kind first, so that the baseline includes
	// what the first connections allocate once (TLS, goproxy, zap).
	run := func(i int) error {
		target := targets[i%len(targets)]
		c, err := dialVia(proxyAddr, target)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := kinds[target].run(c); err != nil {
			return fmt.Errorf("%s: %w", kinds[target].name, err)
		}
		return nil
	}
	for i := range targets {
		if err := run(i); err != nil {
			t.Fatal(err)
		}
	}
	made := map[string]int{}
	for i := range targets {
		made[targets[i]]++
	}
	waitTally(t, y, targets, made, kinds)
	baseline := settledRSS()

	start := time.Now()
	var next atomic.Int64
	var failures atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				if err := run(i); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d connections failed; first: %v", n, total, *firstErr.Load())
	}
	for i := range total {
		made[targets[i%len(targets)]]++
	}
	waitTally(t, y, targets, made, kinds)
	logged := time.Since(start)

	for _, target := range targets {
		k, n := kinds[target], made[target]
		want := map[string]int{"closed": n}
		switch k.name {
		case "mutual TLS 1.2":
			want["handshake clear ok"] = n
		case "TLS 1.2 without a certificate":
			want["handshake clear 403.7"] = n
		case "TLS 1.3":
			want["handshake inferred ok"] = n
		case "client reset mid-handshake":
			want["handshake partial unknown"] = n
			want["reason client error"] = n
		case "garbage":
			want["not_tls"] = n
			want["handshake"] = 0
		}
		if k.handshake {
			want["handshake"], want["handshakes"] = n, n
		}
		for kind, w := range want {
			if got := y.count(target, kind); got != w {
				t.Errorf("%s: %d [%s], want %d", k.name, got, kind, w)
			}
		}
	}
	if len(y.bad) > 0 {
		t.Errorf("%d log lines are not JSON, first: %s", len(y.bad), y.bad[0])
	}
	if t.Failed() {
		t.Logf("events:\n%s", y)
	}

	end := settledRSS()
	t.Logf("%d connections (%d workers) in %v (%.0f/s), all events logged after %v; RSS %d kB before, %d kB after, peak %d kB",
		total, workers, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), logged.Round(time.Millisecond), baseline, end, procKB("VmHWM"))
	if baseline > 0 && end > baseline+max(baseline/2, 32<<10) {
		t.Errorf("RSS %d kB after the load, %d kB before: memory is not returned", end, baseline)
	}
}

// waitTally waits until every target logged one "connection closed" per
// connection made and, for kinds that start one, a handshake event each.
func waitTally(t *testing.T, y *tally, targets []string, made map[string]int, kinds map[string]loadKind) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := true
		for _, target := range targets {
			hs := 0
			if kinds[target].handshake {
				hs = made[target]
			}
			if y.count(target, "closed") < made[target] || y.count(target, "handshake") < hs {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events missing after 30 s:\n%s", y)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadServer is tcpServer that also waits, at cleanup, for its handlers to
// return, so that the leak check sees none of them.
func loadServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			})
		}
	})
	return ln.Addr().String()
}

// resetAfterFirstRead resets the connection once the server's first bytes
// arrive: a client that gives up mid-handshake.
type resetAfterFirstRead struct{ net.Conn }

func (c resetAfterFirstRead) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
			_ = l.SetLinger(0)
		}
		_ = c.Conn.Close()
		return 0, errors.New("reset by the test")
	}
	return n, err
}
