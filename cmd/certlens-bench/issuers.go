package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The issuer-list rows: proxy CPU per tunnelled TLS 1.2 handshake whose
// CertificateRequest lists 2 CAs or 261 (60 KB, what an IIS with a full
// Trusted Root store sends), for each thing a client may answer. In TLS 1.2
// the request is in clear, so an observing proxy reads and diagnoses it:
// this is where a long list could cost, and should not.

// manyCAs is how many long-named CAs come before the client's own CA in
// the long list: 260 + 1 = 261 names, about 60 KB, as in the issue that
// asked for these rows and in the recorded test transcripts.
const manyCAs = 260

// issuerPKI is the certificates of the issuer-list rows, made with openssl
// like the bench's other keys.
type issuerPKI struct {
	listed   tls.Certificate // leaf + its CA, which both lists name
	unlisted tls.Certificate // a leaf alone, from a CA neither list names
	short    *x509.CertPool  // the client's CA and one other: 2 names
	long     *x509.CertPool  // manyCAs long names, then the client's CA: 261 names
}

// issuerCase is one column group: a list and what the client answers.
type issuerCase struct {
	list   string // "2 CAs" or "261 CAs"
	client string
	origin string
	cfg    func() *tls.Config
}

func (b *bench) openssl(args ...string) error {
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("openssl %s (Debian package openssl): %v: %s", args[0], err, out)
	}
	return nil
}

// issuerKeys makes a CA and a leaf under it (listed), a foreign CA and a
// leaf under it (never listed), and manyCAs self-signed CAs with long
// subjects (C, ST, L, O, OU, CN; ~230 bytes each, a Windows root store's
// shape) that only lend their names to the long list.
func (b *bench) issuerKeys() (*issuerPKI, error) {
	d := filepath.Join(b.dir, "issuers")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	key := filepath.Join(d, "shared.key")
	if err := b.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key); err != nil {
		return nil, err
	}
	leafUnder := func(name string) (tls.Certificate, *x509.Certificate, error) {
		caPEM, leafPEM, csr := filepath.Join(d, name+"-ca.pem"), filepath.Join(d, name+".pem"), filepath.Join(d, name+".csr")
		if err := b.openssl("req", "-x509", "-new", "-key", key, "-subj", "/O=certlens bench/CN=certlens bench "+name+" CA",
			"-days", "1", "-out", caPEM); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := b.openssl("req", "-new", "-key", key, "-subj", "/O=certlens bench/CN="+name+" client", "-out", csr); err != nil {
			return tls.Certificate{}, nil, err
		}
		ext := filepath.Join(d, name+".ext")
		if err := os.WriteFile(ext, []byte("keyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"), 0o600); err != nil {
			return tls.Certificate{}, nil, err
		}
		if err := b.openssl("x509", "-req", "-in", csr, "-CA", caPEM, "-CAkey", key, "-set_serial", "2", "-days", "1",
			"-extfile", ext, "-out", leafPEM); err != nil {
			return tls.Certificate{}, nil, err
		}
		cert, err := tls.LoadX509KeyPair(leafPEM, key)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		ca, err := readCert(caPEM)
		return cert, ca, err
	}
	p := &issuerPKI{short: x509.NewCertPool(), long: x509.NewCertPool()}
	listed, listedCA, err := leafUnder("listed")
	if err != nil {
		return nil, err
	}
	// The leaf with its CA, as a browser sends a chain from its store.
	p.listed = listed
	p.listed.Certificate = append(p.listed.Certificate, listedCA.Raw)
	if p.unlisted, _, err = leafUnder("unlisted"); err != nil {
		return nil, err
	}
	for i := 1; i <= manyCAs; i++ {
		pem := filepath.Join(d, fmt.Sprintf("root%03d.pem", i))
		subj := fmt.Sprintf("/C=US/ST=Commonwealth of Massachusetts/L=Cambridge, Middlesex Co/O=certlens Interoperability Test Authority %03d Inc"+
			"/OU=Client Certificate Issuer List Size Test/CN=certlens bench CA %03d", i, i)
		if err := b.openssl("req", "-x509", "-new", "-key", key, "-subj", subj, "-days", "1", "-out", pem); err != nil {
			return nil, err
		}
		c, err := readCert(pem)
		if err != nil {
			return nil, err
		}
		p.long.AddCert(c)
		if i == 1 {
			p.short.AddCert(c)
		}
	}
	p.short.AddCert(listedCA)
	p.long.AddCert(listedCA)
	return p, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

// startIssuerOrigin is a TLS 1.2 server that asks every client for a
// certificate with the CAs of pool as its certificate_authorities, and does
// not verify what it gets: the handshake completes whatever the client
// sends, so the rows measure the request, not a failure.
func (b *bench) startIssuerOrigin(pool *x509.CertPool) (string, func(), error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{b.cert}, ClientAuth: tls.RequestClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }, nil
}

// issuerCases starts the two origins and returns the cases, in column order.
func (b *bench) issuerCases() ([]issuerCase, func(), error) {
	pki, err := b.issuerKeys()
	if err != nil {
		return nil, nil, err
	}
	short, stopShort, err := b.startIssuerOrigin(pki.short)
	if err != nil {
		return nil, nil, err
	}
	long, stopLong, err := b.startIssuerOrigin(pki.long)
	if err != nil {
		stopShort()
		return nil, nil, err
	}
	base := func() *tls.Config {
		return &tls.Config{RootCAs: b.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	}
	clients := []struct {
		name string
		cfg  func() *tls.Config
	}{
		{"chain under a listed CA", func() *tls.Config {
			c := base()
			c.Certificates = []tls.Certificate{pki.listed}
			return c
		}},
		{"leaf only, issuer not listed", func() *tls.Config {
			c := base()
			// Sent whatever the list says, as a user picks it in a browser's dialog.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				leaf := pki.unlisted
				leaf.Certificate = leaf.Certificate[:1]
				return &leaf, nil
			}
			return c
		}},
		{"no certificate", base},
	}
	var cases []issuerCase
	for _, c := range clients {
		cases = append(cases, issuerCase{list: "2 CAs", client: c.name, origin: short, cfg: c.cfg},
			issuerCase{list: fmt.Sprintf("%d CAs", manyCAs+1), client: c.name, origin: long, cfg: c.cfg})
	}
	return cases, func() { stopShort(); stopLong() }, nil
}

// issuerRow is one path's CPU per handshake in each case.
type issuerRow struct {
	name string
	// cpu is per case, from the threads' run times (cpuSince); ticks from
	// the whole process's. Go's runtime keeps its threads, so for a Go
	// proxy they agree but for rounding; a proxy whose threads end with
	// their tunnels (tinyproxy) used more than its live threads show, and
	// only ticks count it.
	cpu, ticks []time.Duration
	n          []int
	errors     int
	coarse     bool // ticks were used
}

// issuerLists runs b.issuerHandshakes TLS 1.2 handshakes per case through
// every proxy that relays without terminating TLS, in interleaved blocks as
// latency does, and counts each proxy's CPU time during its own blocks.
func (b *bench) issuerLists(peers []*peer) ([]issuerCase, []issuerRow, error) {
	var relays []*peer
	for _, p := range peers {
		if p.pid > 0 && !p.mitm {
			relays = append(relays, p)
		}
	}
	if len(relays) == 0 || b.issuerHandshakes <= 0 {
		return nil, nil, nil
	}
	cases, stop, err := b.issuerCases()
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	rows := make([]issuerRow, len(relays))
	for i, p := range relays {
		rows[i] = issuerRow{name: p.name, cpu: make([]time.Duration, len(cases)), ticks: make([]time.Duration, len(cases)), n: make([]int, len(cases))}
	}
	const blocks = 20
	per := max(1, b.issuerHandshakes/blocks)
	for round := 0; round*per < b.issuerHandshakes; round++ {
		n := min(per, b.issuerHandshakes-round*per)
		for k := range len(relays) * len(cases) {
			j := (round + k) % (len(relays) * len(cases))
			i, c := j/len(cases), j%len(cases)
			p, tc := relays[i], cases[c]
			c0 := sampleCPU(p.pid)
			for range n {
				if err := b.issuerHandshake(p, tc); err != nil {
					rows[i].errors++
					continue
				}
				rows[i].n[c]++
			}
			time.Sleep(20 * time.Millisecond) // the last tunnel's close work
			c1 := sampleCPU(p.pid)
			rows[i].cpu[c] += cpuSince(c0, c1)
			rows[i].ticks[c] += c1.ticks - c0.ticks
		}
	}
	for i := range rows {
		var fine, coarse time.Duration
		for c := range cases {
			fine, coarse = fine+rows[i].cpu[c], coarse+rows[i].ticks[c]
		}
		if coarse > fine*3/2+100*time.Millisecond {
			rows[i].cpu, rows[i].coarse = rows[i].ticks, true
		}
	}
	return cases, rows, nil
}

func (b *bench) issuerHandshake(p *peer, tc issuerCase) error {
	c, err := b.dialTo(p, tc.origin)
	if err != nil {
		return err
	}
	defer c.Close()
	conn := tls.Client(c, tc.cfg())
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.Handshake(); err != nil {
		return err
	}
	if conn.ConnectionState().Version != tls.VersionTLS12 {
		return errors.New("not TLS 1.2")
	}
	return nil
}

// dialTo is dial to another origin.
func (b *bench) dialTo(p *peer, origin string) (net.Conn, error) {
	saved := *b
	saved.origin = origin
	return saved.dial(p)
}

func printIssuerTable(w io.Writer, cases []issuerCase, rows []issuerRow, hs int) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nProxy CPU per TLS 1.2 handshake (mutual, ECDSA P-256; %d through each path per case, in interleaved blocks) by the CertificateRequest's issuer list and what the client sends:\n\n", hs)
	fmt.Fprintln(w, "| path | client sends | 2 CAs | 261 CAs (60 KB) | 261 / 2 |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		for c := 0; c+1 < len(cases); c += 2 {
			short, long := perHandshake(r.cpu[c], r.n[c]), perHandshake(r.cpu[c+1], r.n[c+1])
			ratio := "-"
			if short > 0 {
				ratio = fmt.Sprintf("%.2f", float64(long)/float64(short))
			}
			fmt.Fprintf(w, "| %s | %s | %d us | %d us | %s |\n", r.name, cases[c].client, short.Microseconds(), long.Microseconds(), ratio)
		}
	}
	for _, r := range rows {
		if r.coarse {
			fmt.Fprintf(w, "- %s: CPU counted in 10 ms ticks of the whole process (its threads end with their tunnels, and take their run time with them)\n", r.name)
		}
		if r.errors > 0 {
			fmt.Fprintf(w, "- %s: %d issuer-list handshakes failed\n", r.name, r.errors)
		}
	}
}

func perHandshake(cpu time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return cpu / time.Duration(n)
}

// cpuSample is a process's CPU time at one moment: each live thread's run
// time to the nanosecond (/proc/PID/task/*/schedstat), and the whole
// process's in 10 ms ticks (/proc/PID/stat), which also holds the time of
// threads that have exited.
type cpuSample struct {
	threads map[string]time.Duration
	ticks   time.Duration
}

func sampleCPU(pid int) cpuSample {
	s := cpuSample{threads: map[string]time.Duration{}, ticks: procCPU(pid)}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			s.threads[t.Name()] = time.Duration(ns)
		}
	}
	return s
}

// cpuSince is the CPU time the process's threads that lived through both
// samples (and those that started meanwhile and are still there) used
// between them, to the nanosecond.
func cpuSince(a, b cpuSample) time.Duration {
	var d time.Duration
	for tid, t1 := range b.threads {
		d += t1 - a.threads[tid]
	}
	return d
}
