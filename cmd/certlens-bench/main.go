// Command certlens-bench measures certlens against a direct connection and
// the proxies people would pick instead (squid, tinyproxy as CONNECT
// proxies; mitmproxy for intercept mode), all on loopback, and prints one
// table. It installs nothing: a missing peer is named with its Debian
// package and left out of the table.
//
//	go build -o /tmp/certlens ./cmd/certlens
//	go run ./cmd/certlens-bench -certlens /tmp/certlens -size 1GiB -handshakes 2000 -idle 2000
//	go run ./cmd/certlens-bench -certlens /tmp/certlens -page 20000   # the live page's cost
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type bench struct {
	dir        string
	origin     string // the TLS server
	roots      *x509.CertPool
	cert       tls.Certificate
	size       int64
	handshakes int
	// issuerHandshakes is how many TLS 1.2 handshakes each issuer-list case
	// takes through each path (issuers.go); 0 leaves those rows out.
	issuerHandshakes int
	idle             int
	rateFor          time.Duration
	workers          int
	rounds           int // throughput runs per peer and version; the median is kept
	seq              int // sequential tunnels per path and TLS version (curl)
	// certlensBin is the certlens binary every certlens path runs.
	certlensBin string
	baselineBin string // -baseline: an older certlens to compare with, or ""
}

// peer is one way to the origin: direct, or through a proxy process.
type peer struct {
	name string
	addr string // proxy address, "" for direct
	pid  int
	stop func()
	mitm bool // terminates TLS: the client does not verify
	// sidecar: clients connect to addr as if it were the server, without
	// CONNECT (certlens --mode sidecar in front of the origin).
	sidecar bool
}

func main() {
	certlens := flag.String("certlens", "", "certlens binary (go build -o /tmp/certlens ./cmd/certlens)")
	size := flag.String("size", "64MiB", "bytes per throughput run (the README's table: 1GiB)")
	rounds := flag.Int("rounds", 3, "throughput runs per path and TLS version; the table shows the median")
	hs := flag.Int("handshakes", 300, "handshakes for the latency and CPU columns (README: 2000)")
	idle := flag.Int("idle", 300, "idle tunnels for the RSS column (README: 2000)")
	issuerHS := flag.Int("issuer-handshakes", 300, "TLS 1.2 handshakes per issuer-list case (2 or 261 CAs, per client answer) through each path; 0 skips them (README: 2000)")
	rate := flag.Duration("rate-for", 2*time.Second, "how long the new-tunnels/s load runs")
	only := flag.String("only", "", "comma-separated peers to run (direct,certlens,certlens-baseline,certlens-noparse,certlens-nowatch,certlens-sidecar,certlens-otlp,certlens-otlp-down,go-relay,squid,tinyproxy,certlens-intercept,mitmproxy); empty runs all found")
	baseline := flag.String("baseline", "", "another certlens binary (an older build) to run beside -certlens as the path certlens-baseline, interleaved with it: a before/after comparison in one run")
	seq := flag.Int("seq", 300, "curl: sequential tunnels per path and TLS version (README: 1000)")
	clients := flag.String("clients", "go,curl,chromium", "comma-separated clients that drive the paths: go (the bench's own Go client, against a Go TLS server), curl (curl against nginx), chromium (headless Chromium against nginx: sequential tunnels only)")
	relayAddr := flag.String("relay", "", "internal: run the go-relay peer on this address")
	pageHS := flag.Int("page", 0, "measure only the live page's cost instead: this many TLS 1.2 261-CA handshakes through certlens with the page off, closed, open and stalled (README: 20000)")
	flag.Parse()
	if *relayAddr != "" {
		fmt.Fprintln(os.Stderr, "certlens-bench -relay:", serveRelay(*relayAddr))
		os.Exit(2)
	}
	if *pageHS > 0 {
		if err := runPage(*certlens, *pageHS); err != nil {
			fmt.Fprintln(os.Stderr, "certlens-bench:", err)
			os.Exit(2)
		}
		return
	}
	if err := run(*certlens, *size, *hs, *idle, *issuerHS, *rate, *only, *rounds, *seq, *clients, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "certlens-bench:", err)
		os.Exit(2)
	}
}

func run(certlens, sizeText string, hs, idle, issuerHS int, rate time.Duration, only string, rounds, seq int, clientList, baseline string) error {
	if certlens == "" {
		return errors.New("-certlens is required: build it with go build -o /tmp/certlens ./cmd/certlens")
	}
	size, err := parseSize(sizeText)
	if err != nil {
		return fmt.Errorf("-size %q: %w", sizeText, err)
	}
	dir, err := os.MkdirTemp("", "certlens-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	clients := map[string]bool{}
	for _, c := range strings.Split(clientList, ",") {
		if c != "go" && c != "curl" && c != "chromium" {
			return fmt.Errorf("-clients %q: want a comma-separated list of go, curl and chromium", clientList)
		}
		clients[c] = true
	}
	b := &bench{dir: dir, size: size, handshakes: hs, issuerHandshakes: issuerHS, idle: idle, rateFor: rate, workers: 8, rounds: max(1, rounds),
		seq: max(1, seq), certlensBin: certlens, baselineBin: baseline}
	if err := b.keys(); err != nil {
		return err
	}
	stopOrigin, err := b.startOrigin()
	if err != nil {
		return err
	}
	defer stopOrigin()
	starters := []struct {
		name  string
		start func() (*peer, error)
	}{
		{"direct", func() (*peer, error) { return &peer{name: "direct", stop: func() {}}, nil }},
		{"certlens", func() (*peer, error) { return b.certlens(certlens, "certlens", nil) }},
		{"certlens-baseline", func() (*peer, error) {
			if baseline == "" {
				return nil, errSkip
			}
			return b.certlens(baseline, "certlens-baseline", nil)
		}},
		{"certlens-noparse", func() (*peer, error) {
			return b.certlens(certlens, "certlens-noparse", []string{"CERTLENS_TUNNEL_PARSE=false"})
		}},
		{"certlens-nowatch", func() (*peer, error) {
			return b.certlens(certlens, "certlens-nowatch", []string{"CERTLENS_TUNNEL_WATCH_RENEGOTIATION=false"})
		}},
		{"certlens-sidecar", func() (*peer, error) {
			if !clients["go"] {
				return nil, errSkip // the curl client starts its own, in front of nginx
			}
			p, err := b.certlens(certlens, "certlens-sidecar", []string{"CERTLENS_MODE=sidecar", "CERTLENS_UPSTREAM=" + b.origin})
			if p != nil {
				p.sidecar = true
			}
			return p, err
		}},
		{"certlens-otlp", func() (*peer, error) {
			sink, err := startOTLPSink()
			if err != nil {
				return nil, err
			}
			p, err := b.certlens(certlens, "certlens-otlp", otlpEnv(sink.url))
			if err != nil {
				sink.stop()
				return nil, err
			}
			stop := p.stop
			p.stop = func() {
				stop()
				fmt.Fprintf(os.Stderr, "certlens-otlp: the OTLP sink took %d export requests\n", sink.requests.Load())
				sink.stop()
			}
			return p, nil
		}},
		{"certlens-otlp-down", func() (*peer, error) {
			// Exporting to a collector that is not there: every event is
			// dropped and counted.
			return b.certlens(certlens, "certlens-otlp-down", otlpEnv("http://"+freeAddr()))
		}},
		{"go-relay", b.goRelay},
		{"squid", b.squid},
		{"tinyproxy", b.tinyproxy},
		{"certlens-intercept", func() (*peer, error) {
			p, err := b.certlens(certlens, "certlens-intercept", []string{"CERTLENS_MODE=intercept",
				"CERTLENS_INTERCEPT_CA_DIR=" + filepath.Join(dir, "ca"), "CERTLENS_INTERCEPT_INSECURE_UPSTREAM=true"})
			if p != nil {
				p.mitm = true
			}
			return p, err
		}},
		{"mitmproxy", b.mitmproxy},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	// Every peer runs for the whole measurement, so that the latency
	// column can interleave them: handshake i goes through each peer in
	// turn, and a drift of the machine (another process, the CPU's clock)
	// falls on all of them alike instead of on whichever ran then.
	var peers []*peer
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()
	for _, s := range starters {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		p, err := s.start()
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "skip %s: %v\n", s.name, err)
			continue
		}
		peers = append(peers, p)
	}
	var curlRows []curlRow
	var chromiumRows []chromiumRow
	if clients["curl"] || clients["chromium"] {
		var cp []*peer
		for _, p := range peers {
			if !p.mitm && !p.sidecar && (len(want) == 0 || want[p.name]) {
				cp = append(cp, p)
			}
		}
		curlRows, chromiumRows = b.curlMode(cp, clients["curl"], clients["chromium"])
	}
	if clients["go"] {
		b.goMode(peers)
	}
	printCurlTable(os.Stdout, curlRows, b)
	printChromiumTable(os.Stdout, chromiumRows, b)
	return nil
}

// goMode measures every path with the bench's own Go client and prints
// its table.
func (b *bench) goMode(peers []*peer) {
	rows := make([]row, len(peers))
	for i, p := range peers {
		rows[i] = row{name: p.name, mitm: p.mitm}
	}
	fmt.Fprintf(os.Stderr, "throughput, %d rounds through each path, interleaved...\n", b.rounds)
	b.throughputs(peers, rows)
	fmt.Fprintf(os.Stderr, "latency and CPU, %d handshakes through each path, interleaved...\n", b.handshakes)
	b.latency(peers, rows)
	fmt.Fprintf(os.Stderr, "issuer lists, %d TLS 1.2 handshakes per case through each path, interleaved...\n", b.issuerHandshakes)
	cases, issuerRows, err := b.issuerLists(peers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skip the issuer-list rows: %v\n", err)
	}
	fmt.Fprintf(os.Stderr, "new tunnels/s, interleaved...\n")
	b.rates(peers, rows)
	for i, p := range peers {
		fmt.Fprintf(os.Stderr, "idle memory through %s...\n", p.name)
		if p.pid > 0 && !p.mitm {
			rows[i].rssPerTunnel, rows[i].rssBase, rows[i].rssAfter = b.idleRSS(p)
		}
	}
	printTable(os.Stdout, rows, b)
	printIssuerTable(os.Stdout, cases, issuerRows, b.issuerHandshakes)
}

// errSkip leaves a path out without a word: it was not asked for.
var errSkip = errors.New("not asked for")

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 64MiB or 1GiB")
	}
	return n * mult, nil
}

// keys makes a throwaway ECDSA certificate with openssl (a real peer, the
// same tool people use), for the origin and as the client certificate.
func (b *bench) keys() error {
	cert, key := filepath.Join(b.dir, "origin.pem"), filepath.Join(b.dir, "origin.key")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		return fmt.Errorf("openssl req (Debian package openssl): %v: %s", err, out)
	}
	b.cert, err = tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	b.roots = x509.NewCertPool()
	b.roots.AddCert(b.cert.Leaf)
	return nil
}

// startOrigin runs the TLS server every peer reaches: mutual TLS, HTTP/1.1,
// GET /N answers N bytes.
func (b *bench) startOrigin() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.cert.Leaf)
	chunk := make([]byte, 256<<10)
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{b.cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				k := min(n, int64(len(chunk)))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
		}),
		ErrorLog: nil,
	}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	b.origin = ln.Addr().String()
	return func() { _ = srv.Close() }, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc starts a proxy process and waits until addr accepts.
func startProc(name, addr string, cmd *exec.Cmd) (*peer, error) {
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not listen on %s", name, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &peer{name: name, addr: addr, pid: cmd.Process.Pid, stop: stop}, nil
}

func (b *bench) certlens(bin, name string, env []string) (*peer, error) {
	return b.certlensArgs(bin, name, env, adminArgs())
}

// certlensArgs is certlens with these admin server flags.
func (b *bench) certlensArgs(bin, name string, env, admin []string) (*peer, error) {
	addr := freeAddr()
	cmd := exec.Command(bin, append([]string{"serve", "--config", "", "--listen", addr, "--allow-ports", "1-65535", "--max-conns", "100000"}, admin...)...)
	cmd.Env = append(os.Environ(), env...)
	// Events are built and written, to a pipe the bench drains (startProc),
	// as to journald or a terminal: that is the cost users pay.
	return startProc(name, addr, cmd)
}

func need(bin, pkg string) error {
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("%s not found: install the Debian package %s (apt-get install %s)", bin, pkg, pkg)
	}
	return nil
}

func (b *bench) squid() (*peer, error) {
	if err := need("squid", "squid"); err != nil {
		return nil, err
	}
	addr := freeAddr()
	d := filepath.Join(b.dir, "squid")
	_ = os.MkdirAll(d, 0o777)
	_ = os.Chmod(d, 0o777)
	conf := fmt.Sprintf(`http_port %s
http_access allow all
cache deny all
access_log none
cache_log %s/cache.log
pid_filename %s/squid.pid
coredump_dir %s
max_filedescriptors 65536
`, addr, d, d, d)
	f := filepath.Join(d, "squid.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startProc("squid", addr, exec.Command("squid", "-N", "-f", f))
}

func (b *bench) tinyproxy() (*peer, error) {
	if err := need("tinyproxy", "tinyproxy"); err != nil {
		return nil, err
	}
	addr := freeAddr()
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("User nobody\nGroup nogroup\nPort %s\nListen %s\nTimeout 600\nMaxClients 10000\nLogLevel Critical\n", port, host)
	f := filepath.Join(b.dir, "tinyproxy.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startProc("tinyproxy", addr, exec.Command("tinyproxy", "-d", "-c", f))
}

func (b *bench) mitmproxy() (*peer, error) {
	if err := need("mitmdump", "mitmproxy"); err != nil {
		return nil, err
	}
	addr := freeAddr()
	host, port, _ := net.SplitHostPort(addr)
	p, err := startProc("mitmproxy", addr, exec.Command("mitmdump", "-q", "--listen-host", host, "--listen-port", port,
		"--ssl-insecure", "--set", "stream_large_bodies=1m", "--set", "confdir="+filepath.Join(b.dir, "mitmproxy")))
	if p != nil {
		p.mitm = true
	}
	return p, err
}

// dial opens a TCP path to the origin: direct, or a CONNECT tunnel.
func (b *bench) dial(p *peer) (net.Conn, error) {
	if p.addr == "" {
		return net.Dial("tcp", b.origin)
	}
	if p.sidecar {
		return net.Dial("tcp", p.addr)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", b.origin, b.origin)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("CONNECT through %s: %v %v", p.name, resp, err)
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, errors.New("bytes after the CONNECT reply")
	}
	return c, nil
}

func (b *bench) tlsConfig(p *peer, version uint16) *tls.Config {
	cfg := &tls.Config{RootCAs: b.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{b.cert},
		MinVersion: version, MaxVersion: version, NextProtos: []string{"http/1.1"}}
	if p.mitm {
		// The proxy's own CA signed what the client sees; trust is not measured here.
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// handshake opens one tunnel and completes a mutual-TLS handshake in it;
// through an intercepting proxy the handshake with the origin only
// happens for a request, so one small request is part of it.
func (b *bench) handshake(p *peer, version uint16) (*tls.Conn, error) {
	return b.open(p, version, p.mitm)
}

// open is handshake; warm sends the small request that makes an
// intercepting proxy reach the origin. The throughput run leaves it out:
// its own request does that, and the origin (no keep-alive) answers with
// Connection: close, which an intercepting proxy passes on.
func (b *bench) open(p *peer, version uint16, warm bool) (*tls.Conn, error) {
	c, err := b.dial(p)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, b.tlsConfig(p, version))
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	if warm {
		if _, err := b.get(tc, 1); err != nil {
			tc.Close()
			return nil, err
		}
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// get sends GET /n and reads the body to its end.
func (b *bench) get(tc *tls.Conn, n int64) (int64, error) {
	fmt.Fprintf(tc, "GET /%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", n, b.origin)
	resp, err := http.ReadResponse(bufio.NewReaderSize(tc, 256<<10), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 256<<10))
	if err == nil && got != n {
		err = fmt.Errorf("read %d of %d bytes", got, n)
	}
	return got, err
}

type row struct {
	name               string
	mitm               bool
	mbps12, mbps13     float64
	p50, p99           time.Duration
	cpuPerHS           time.Duration
	cpuPerGB12         time.Duration // proxy CPU time per GB relayed, TLS 1.2
	cpuPerGB13         time.Duration
	rate               float64
	rateErrors         int64
	rssPerTunnel       float64 // KiB
	rssBase, rssAfter  int     // KiB
	hsErrors           int
	throughputFailures []string
}

// throughputs downloads b.size through every peer over TLS 1.2 and over
// TLS 1.3, b.rounds times, each round starting with the next peer, and
// keeps the median MB/s and the median proxy CPU time per GB of each.
func (b *bench) throughputs(peers []*peer, rows []row) {
	mbps := make([][2][]float64, len(peers))
	cpu := make([][2][]float64, len(peers))
	for round := range b.rounds {
		for k := range peers {
			i := (round + k) % len(peers)
			p := peers[i]
			for j, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				c0 := sampleCPU(p.pid)
				start := time.Now()
				tc, err := b.open(p, v, false)
				var n int64
				if err == nil {
					n, err = b.get(tc, b.size)
					tc.Close()
				}
				if err != nil {
					rows[i].throughputFailures = append(rows[i].throughputFailures, tls.VersionName(v)+": "+err.Error())
					continue
				}
				mbps[i][j] = append(mbps[i][j], float64(n)/1e6/time.Since(start).Seconds())
				if p.pid > 0 {
					time.Sleep(20 * time.Millisecond) // the tunnel's close
					cpu[i][j] = append(cpu[i][j], float64(c0.since(p.pid))/(float64(n)/1e9))
				}
			}
		}
	}
	for i := range peers {
		r := &rows[i]
		r.mbps12, r.mbps13 = median(mbps[i][0]), median(mbps[i][1])
		r.cpuPerGB12, r.cpuPerGB13 = time.Duration(median(cpu[i][0])), time.Duration(median(cpu[i][1]))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// latency runs b.handshakes sequential TLS 1.3 mutual handshakes through
// every peer, in blocks: a block through each peer in turn, each round
// starting with the next peer. Each proxy's CPU time is counted only
// during its own blocks. Interleaving spreads over all peers alike what
// drifts during a run: the TIME_WAIT sockets every tunnel leaves (tens of
// thousands, which make connect(2) dearer), another process, the CPU's
// clock.
func (b *bench) latency(peers []*peer, rows []row) {
	const blocks = 20
	per := max(1, b.handshakes/blocks)
	cpu := make([]time.Duration, len(peers))
	lat := make([][]time.Duration, len(peers))
	for round := 0; round*per < b.handshakes; round++ {
		n := min(per, b.handshakes-round*per)
		for k := range peers {
			i := (round + k) % len(peers)
			p := peers[i]
			c0 := sampleCPU(p.pid)
			for range n {
				start := time.Now()
				tc, err := b.handshake(p, tls.VersionTLS13)
				if err != nil {
					rows[i].hsErrors++
					continue
				}
				lat[i] = append(lat[i], time.Since(start))
				tc.Close()
			}
			time.Sleep(20 * time.Millisecond) // the last tunnel's close work
			cpu[i] += c0.since(p.pid)
		}
	}
	for i, p := range peers {
		r := &rows[i]
		if p.pid > 0 && len(lat[i]) > 0 {
			r.cpuPerHS = cpu[i] / time.Duration(len(lat[i]))
		}
		l := lat[i]
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		if len(l) > 0 {
			r.p50, r.p99 = l[len(l)/2], l[len(l)*99/100]
		}
	}
}

// rates measures new tunnels/s through every peer in slices of rateFor/4,
// interleaved like latency.
func (b *bench) rates(peers []*peer, rows []row) {
	const slices = 4
	ok := make([]int64, len(peers))
	for round := range slices {
		for k := range peers {
			i := (round + k) % len(peers)
			n, bad := b.tunnelRate(peers[i], b.rateFor/slices)
			ok[i] += n
			rows[i].rateErrors += bad
		}
	}
	for i := range peers {
		rows[i].rate = float64(ok[i]) / b.rateFor.Seconds()
	}
}

// tunnelRate runs new tunnels (each a mutual TLS 1.3 handshake, then
// closed) from several workers for d: how many succeeded and failed.
func (b *bench) tunnelRate(p *peer, d time.Duration) (ok, bad int64) {
	var okN, badN atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range b.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				tc, err := b.handshake(p, tls.VersionTLS13)
				if err != nil {
					badN.Add(1)
					continue
				}
				tc.Close()
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), badN.Load()
}

// idleRSS opens b.idle tunnels with a finished handshake and leaves them
// idle: the proxy's VmRSS grows by the returned KiB per tunnel. base and
// after are its VmRSS before and a few seconds after they all closed.
func (b *bench) idleRSS(p *peer) (perTunnel float64, base, after int) {
	time.Sleep(time.Second)
	base = vmRSS(p.pid)
	conns := make([]*tls.Conn, 0, b.idle)
	for range b.idle {
		tc, err := b.handshake(p, tls.VersionTLS13)
		if err != nil {
			break
		}
		conns = append(conns, tc)
	}
	time.Sleep(time.Second)
	loaded := vmRSS(p.pid)
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(5 * time.Second)
	after = vmRSS(p.pid)
	if len(conns) == 0 {
		return 0, base, after
	}
	return float64(loaded-base) / float64(len(conns)), base, after
}

// procCPU is a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func vmRSS(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func printTable(w io.Writer, rows []row, b *bench) {
	var direct *row
	for i := range rows {
		if rows[i].name == "direct" {
			direct = &rows[i]
		}
	}
	fmt.Fprintf(w, "certlens-bench: %s per throughput run (median of %d, interleaved), %d handshakes through each path, in interleaved blocks (TLS 1.3, mutual, ECDSA P-256), %d idle tunnels, %d workers for %s\n\n",
		humanBytes(b.size), b.rounds, b.handshakes, b.idle, b.workers, b.rateFor)
	fmt.Fprintln(w, "| path | TLS 1.2 MB/s | TLS 1.3 MB/s | proxy CPU/GB (1.2 / 1.3) | handshake p50 | p99 | added p50 | added p99 | proxy CPU/handshake | new tunnels/s (errors) | RSS/idle tunnel | RSS base -> after close |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		added50, added99 := "-", "-"
		if direct != nil && r.name != "direct" && !r.mitm {
			added50, added99 = ms(r.p50-direct.p50), ms(r.p99-direct.p99)
		}
		cpu, cpuGB, rss, base := "-", "-", "-", "-"
		if r.cpuPerGB12 > 0 || r.cpuPerGB13 > 0 {
			cpuGB = fmt.Sprintf("%d / %d ms", r.cpuPerGB12.Milliseconds(), r.cpuPerGB13.Milliseconds())
		}
		if r.cpuPerHS > 0 {
			cpu = fmt.Sprintf("%d us", r.cpuPerHS.Microseconds())
		}
		if r.rssBase > 0 {
			rss = fmt.Sprintf("%.1f KiB", r.rssPerTunnel)
			base = fmt.Sprintf("%d -> %d KiB", r.rssBase, r.rssAfter)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %.0f (%d) | %s | %s |\n", r.name, r.mbps12, r.mbps13, cpuGB,
			ms(r.p50), ms(r.p99), added50, added99, cpu, r.rate, r.rateErrors, rss, base)
	}
	fmt.Fprintln(w)
	ratios := func(a, bname string) {
		var x, y *row
		for i := range rows {
			if rows[i].name == a {
				x = &rows[i]
			}
			if rows[i].name == bname {
				y = &rows[i]
			}
		}
		if x == nil || y == nil || y.mbps12 == 0 || y.mbps13 == 0 || y.rate == 0 {
			return
		}
		fmt.Fprintf(w, "- %s / %s: throughput TLS 1.2 %.2fx, TLS 1.3 %.2fx, new tunnels/s %.2fx\n", a, bname, x.mbps12/y.mbps12, x.mbps13/y.mbps13, x.rate/y.rate)
	}
	for _, pair := range [][2]string{{"certlens", "certlens-noparse"}, {"certlens-nowatch", "certlens-noparse"}, {"certlens", "direct"},
		{"certlens", "certlens-baseline"}, {"certlens", "go-relay"}, {"certlens", "squid"}, {"certlens-sidecar", "squid"}, {"certlens", "tinyproxy"}, {"certlens-intercept", "mitmproxy"}} {
		ratios(pair[0], pair[1])
	}
	for _, r := range rows {
		for _, f := range r.throughputFailures {
			fmt.Fprintf(w, "- %s throughput failed: %s\n", r.name, f)
		}
		if r.hsErrors > 0 {
			fmt.Fprintf(w, "- %s: %d handshakes failed\n", r.name, r.hsErrors)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// adminArgs turns certlens's admin server off, or, with
// CERTLENS_BENCH_PPROF=HOST:PORT, on with the profiler, to profile a run.
func adminArgs() []string {
	if a := os.Getenv("CERTLENS_BENCH_PPROF"); a != "" {
		return []string{"--admin-listen", a, "--pprof"}
	}
	return []string{"--admin-listen="}
}
