package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The curl mode measures what people run: curl (OpenSSL) as the client,
// nginx as the server, each path driven the same way. It complements the
// Go client above, whose tight loop in one process hides what a proxy
// pays when tunnels come one at a time from another program.

const smallPath = "/small" // 1 KiB: the sequential tunnels' request

// nginxAddrs are the servers of the bench's nginx: main for curl, and one
// per TLS version for Chromium (see chromium.go).
type nginxAddrs struct {
	main     string
	chromium [2]string
}

// nginxOrigin serves b.size bytes at /bulk and 1 KiB at /small over TLS
// 1.2 and 1.3, asks for a client certificate (optional, the bench's own
// CA), and closes each connection after its response, so that every
// request a client makes opens a new tunnel.
func (b *bench) nginxOrigin() (addr nginxAddrs, stop func(), err error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return addr, nil, errors.New("nginx not found: install the Debian package nginx (apt-get install nginx)")
	}
	d := filepath.Join(b.dir, "nginx")
	www := filepath.Join(d, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return addr, nil, err
	}
	f, err := os.Create(filepath.Join(www, "bulk"))
	if err == nil {
		err = f.Truncate(b.size) // sparse: nginx reads zeros from the page cache
		f.Close()
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(www, "small"), bytes.Repeat([]byte("x"), 1024), 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(www, "seq.html"), []byte(seqPage), 0o644)
	}
	if err != nil {
		return addr, nil, err
	}
	addr = nginxAddrs{main: freeAddr(), chromium: [2]string{freeAddr(), freeAddr()}}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	access_log off;
	keepalive_timeout 0;
	server {
		listen %[2]s ssl;
		ssl_certificate %[3]s/origin.pem;
		ssl_certificate_key %[3]s/origin.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_client_certificate %[3]s/origin.pem;
		ssl_verify_client optional;
		root %[4]s;
	}
	# Chromium, sent a certificate request, drops the connection to ask
	# which certificate (and retries): its servers ask for none.
	server {
		listen %[5]s ssl;
		ssl_certificate %[3]s/origin.pem;
		ssl_certificate_key %[3]s/origin.key;
		ssl_protocols TLSv1.2;
		root %[4]s;
	}
	server {
		listen %[6]s ssl;
		ssl_certificate %[3]s/origin.pem;
		ssl_certificate_key %[3]s/origin.key;
		ssl_protocols TLSv1.3;
		root %[4]s;
	}
}
`, d, addr.main, b.dir, www, addr.chromium[0], addr.chromium[1])
	cf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return addr, nil, err
	}
	p, err := startProc("nginx", addr.main, exec.Command(bin, "-p", d+"/", "-c", cf, "-e", filepath.Join(d, "error.log")))
	if err != nil {
		return addr, nil, err
	}
	return addr, p.stop, nil
}

// curlRow is one path's line in the curl table.
type curlRow struct {
	name               string
	mbps, cpuPerGB     [2]float64 // TLS 1.2, TLS 1.3; CPU in ms per GB
	seq                seqStats
	throughputFailures []string
}

// seqStats are one path's sequential tunnels, per TLS version.
type seqStats struct {
	cpuPerTunnel [2]time.Duration
	wakeups      [2]float64 // the proxy's context switches per tunnel
	p50          [2]time.Duration
	errors       [2]int
}

var tlsFlags = [2][]string{{"--tlsv1.2", "--tls-max", "1.2"}, {"--tlsv1.3"}}

// curlArgs are curl's options for one path: through the proxy (CONNECT),
// to the sidecar as if it were the server, or straight to nginx.
func (b *bench) curlArgs(p *peer, origin string, version int, path string) []string {
	host := origin
	args := []string{"-sS", "-o", "/dev/null", "--cacert", filepath.Join(b.dir, "origin.pem"),
		"--cert", filepath.Join(b.dir, "origin.pem"), "--key", filepath.Join(b.dir, "origin.key")}
	args = append(args, tlsFlags[version]...)
	switch {
	case p.sidecar:
		host = p.addr
		args = append(args, "--noproxy", "*")
	case p.addr != "":
		args = append(args, "-x", "http://"+p.addr)
	default:
		args = append(args, "--noproxy", "*")
	}
	return append(args, "https://"+host+path)
}

// curl runs curl with args and returns what it printed.
func curl(args ...string) (string, error) {
	cmd := exec.Command("curl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// No proxy from the environment: the path is the bench's choice.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("curl: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// curlMode runs the curl table: throughput per TLS version (median of
// b.rounds interleaved rounds, proxy CPU per GB), then b.seq sequential
// tunnels per path and version, one at a time from one curl process
// without session reuse, in interleaved blocks: proxy CPU and context
// switches per tunnel, and each transfer's own time.
func (b *bench) curlMode(peers []*peer, withCurl, withChromium bool) ([]curlRow, []chromiumRow) {
	addrs, stop, err := b.nginxOrigin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "skip the curl and chromium clients: %v\n", err)
		return nil, nil
	}
	defer stop()
	var chromium []chromiumRow
	if withChromium {
		// Before the sidecars join: Chromium's servers are not theirs.
		chromium = b.chromiumMode(peers, addrs.chromium)
	}
	origin := addrs.main
	if !withCurl {
		return nil, chromium
	}
	if err := need("curl", "curl"); err != nil {
		fmt.Fprintf(os.Stderr, "skip the curl client: %v\n", err)
		return nil, chromium
	}
	sidecar, err := b.certlens(b.certlensBin, "certlens-sidecar", []string{"CERTLENS_MODE=sidecar", "CERTLENS_UPSTREAM=" + origin})
	if err == nil {
		sidecar.sidecar = true
		peers = append(peers, sidecar)
		defer sidecar.stop()
	} else {
		fmt.Fprintf(os.Stderr, "skip certlens-sidecar: %v\n", err)
	}
	if b.baselineBin != "" {
		bs, err := b.certlens(b.baselineBin, "certlens-baseline-sidecar", []string{"CERTLENS_MODE=sidecar", "CERTLENS_UPSTREAM=" + origin})
		if err == nil {
			bs.sidecar = true
			peers = append(peers, bs)
			defer bs.stop()
		}
	}
	rows := make([]curlRow, len(peers))
	for i, p := range peers {
		rows[i].name = p.name
	}
	fmt.Fprintf(os.Stderr, "curl: throughput, %d rounds through each path, interleaved...\n", b.rounds)
	mbps := make([][2][]float64, len(peers))
	cpu := make([][2][]float64, len(peers))
	for round := range b.rounds {
		for k := range peers {
			i := (round + k) % len(peers)
			p := peers[i]
			for v := range 2 {
				c0 := sampleCPU(p.pid)
				args := append([]string{"-w", "%{size_download} %{time_total}"}, b.curlArgs(p, origin, v, "/bulk")...)
				out, err := curl(args...)
				var size, secs float64
				if err == nil {
					_, err = fmt.Sscan(out, &size, &secs)
				}
				if err == nil && int64(size) != b.size {
					err = fmt.Errorf("read %.0f of %d bytes", size, b.size)
				}
				if err != nil {
					rows[i].throughputFailures = append(rows[i].throughputFailures, fmt.Sprintf("TLS 1.%d: %v", 2+v, err))
					continue
				}
				mbps[i][v] = append(mbps[i][v], size/1e6/secs)
				if p.pid > 0 {
					time.Sleep(20 * time.Millisecond)
					cpu[i][v] = append(cpu[i][v], float64(c0.since(p.pid).Microseconds())/1000/(size/1e9))
				}
			}
		}
	}
	for i := range peers {
		for v := range 2 {
			rows[i].mbps[v], rows[i].cpuPerGB[v] = median(mbps[i][v]), median(cpu[i][v])
		}
	}
	fmt.Fprintf(os.Stderr, "curl: %d sequential tunnels through each path and TLS version, interleaved...\n", b.seq)
	seq := b.sequential(peers, 10, 0, func(p *peer, v, n int) ([]time.Duration, int) {
		args := []string{"--no-sessionid", "-w", "%{time_total} %{http_code} %{num_connects}\n"}
		one := b.curlArgs(p, origin, v, smallPath)
		args = append(args, one...)
		for range n - 1 {
			// -o goes with each URL: every response is discarded.
			args = append(args, "-o", "/dev/null", one[len(one)-1])
		}
		out, err := curl(args...)
		if err != nil {
			return nil, n
		}
		var lat []time.Duration
		failed := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var secs float64
			var code, connects int
			if _, err := fmt.Sscan(sc.Text(), &secs, &code, &connects); err != nil || code != 200 || connects != 1 {
				failed++
				continue
			}
			lat = append(lat, time.Duration(secs*float64(time.Second)))
		}
		return lat, failed
	})
	for i := range rows {
		rows[i].seq = seq[i]
	}
	return rows, chromium
}

// sequential makes b.seq tunnels through each path and TLS version, one at
// a time, in interleaved blocks (each round starting with the next path):
// run makes n of them through p and returns each one's time and how many
// failed; extra is how many more tunnels a run opens than it times (a
// browser's page). The proxy's CPU time and context switches are counted
// over each run.
func (b *bench) sequential(peers []*peer, blocks, extra int, run func(p *peer, v, n int) ([]time.Duration, int)) []seqStats {
	per := max(1, b.seq/blocks)
	lat := make([][2][]time.Duration, len(peers))
	cpuSum := make([][2]time.Duration, len(peers))
	wake := make([][2]int64, len(peers))
	stats := make([]seqStats, len(peers))
	for round := 0; round*per < b.seq; round++ {
		n := min(per, b.seq-round*per)
		for k := range peers {
			i := (round + k) % len(peers)
			p := peers[i]
			for v := range 2 {
				c0, w0 := sampleCPU(p.pid), procWakeups(p.pid)
				l, failed := run(p, v, n)
				time.Sleep(20 * time.Millisecond) // the last tunnel's close
				cpuSum[i][v] += c0.since(p.pid)
				wake[i][v] += procWakeups(p.pid) - w0
				lat[i][v] = append(lat[i][v], l...)
				stats[i].errors[v] += failed
			}
		}
	}
	for i, p := range peers {
		for v := range 2 {
			l := lat[i][v]
			if len(l) == 0 {
				continue
			}
			sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
			stats[i].p50[v] = l[len(l)/2]
			if p.pid > 0 {
				tunnels := len(l) + extra*(b.seq+per-1)/per
				stats[i].cpuPerTunnel[v] = cpuSum[i][v] / time.Duration(tunnels)
				stats[i].wakeups[v] = float64(wake[i][v]) / float64(tunnels)
			}
		}
	}
	return stats
}

func printCurlTable(w io.Writer, rows []curlRow, b *bench) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\ncurl (%s) to nginx (%s): %s per throughput run (median of %d, interleaved); %d sequential tunnels per path and TLS version (mutual TLS, no session reuse, GET 1 KiB), in interleaved blocks\n\n",
		firstLine("curl", "--version"), firstLine("nginx", "-v"), humanBytes(b.size), b.rounds, b.seq)
	fmt.Fprintln(w, "| path | TLS 1.2 MB/s | TLS 1.3 MB/s | proxy CPU/GB (1.2 / 1.3) | sequential: proxy CPU/tunnel (1.2 / 1.3) | added p50 (1.2 / 1.3) | proxy context switches/tunnel (1.2 / 1.3) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	var direct *curlRow
	for i := range rows {
		if rows[i].name == "direct" {
			direct = &rows[i]
		}
	}
	for _, r := range rows {
		cpuGB := "-"
		if r.cpuPerGB[0] > 0 || r.cpuPerGB[1] > 0 {
			cpuGB = fmt.Sprintf("%.0f / %.0f ms", r.cpuPerGB[0], r.cpuPerGB[1])
		}
		var d *seqStats
		if direct != nil && r.name != "direct" {
			d = &direct.seq
		}
		cpuT, added, wake := r.seq.columns(d)
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %s |\n", r.name, r.mbps[0], r.mbps[1], cpuGB, cpuT, added, wake)
	}
	fmt.Fprintln(w)
	var squid *curlRow
	for i := range rows {
		if rows[i].name == "squid" {
			squid = &rows[i]
		}
	}
	for _, r := range rows {
		if squid == nil || r.name == "squid" || !strings.HasPrefix(r.name, "certlens") && r.name != "go-relay" {
			continue
		}
		ratio := func(a, b float64) string {
			if b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", a/b)
		}
		fmt.Fprintf(w, "- %s / squid: throughput TLS 1.2 %s, TLS 1.3 %s; CPU per tunnel TLS 1.2 %s, TLS 1.3 %s\n", r.name,
			ratio(r.mbps[0], squid.mbps[0]), ratio(r.mbps[1], squid.mbps[1]),
			ratio(float64(r.seq.cpuPerTunnel[0]), float64(squid.seq.cpuPerTunnel[0])), ratio(float64(r.seq.cpuPerTunnel[1]), float64(squid.seq.cpuPerTunnel[1])))
	}
	for _, r := range rows {
		for _, f := range r.throughputFailures {
			fmt.Fprintf(w, "- %s throughput failed: %s\n", r.name, f)
		}
		r.seq.printErrors(w, r.name)
	}
}

// columns are the sequential tunnels' cells: proxy CPU per tunnel, p50
// added to direct's (direct's own in parentheses when direct is nil) and
// context switches per tunnel.
func (s seqStats) columns(direct *seqStats) (cpu, added, wake string) {
	cpu, wake = "-", "-"
	if s.cpuPerTunnel[0] > 0 || s.cpuPerTunnel[1] > 0 {
		cpu = fmt.Sprintf("%d / %d us", s.cpuPerTunnel[0].Microseconds(), s.cpuPerTunnel[1].Microseconds())
		wake = fmt.Sprintf("%.1f / %.1f", s.wakeups[0], s.wakeups[1])
	}
	if direct != nil {
		added = ms(s.p50[0]-direct.p50[0]) + " / " + ms(s.p50[1]-direct.p50[1])
	} else {
		added = "(" + ms(s.p50[0]) + " / " + ms(s.p50[1]) + ")"
	}
	return cpu, added, wake
}

func (s seqStats) printErrors(w io.Writer, name string) {
	for v, n := range s.errors {
		if n > 0 {
			fmt.Fprintf(w, "- %s: %d sequential TLS 1.%d tunnels failed\n", name, n, 2+v)
		}
	}
}

// firstLine is a tool's version line, for the table's heading.
func firstLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if f := strings.Fields(line); bin == "curl" && len(f) >= 5 {
		return f[0] + " " + f[1] + ", " + f[4]
	}
	return strings.TrimPrefix(line, "nginx version: ")
}

// procWakeups counts a process's context switches, voluntary and not,
// over its threads: each is a wake-up the machine paid for.
func procWakeups(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	var n int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n
}

// since is the process's CPU time from s until now: to the nanosecond
// from its threads' run times, unless /proc/PID/stat, which keeps the time
// of threads that ended (tinyproxy runs one per connection) but counts in
// 10 ms ticks, saw more than a tick beyond that.
func (s cpuSample) since(pid int) time.Duration {
	now := sampleCPU(pid)
	fine, ticks := cpuSince(s, now), now.ticks-s.ticks
	if ticks-fine > 10*time.Millisecond {
		return ticks
	}
	return fine
}
