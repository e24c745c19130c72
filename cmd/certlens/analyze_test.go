package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/invariant"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

const transcripts = "../../handshake/testdata/transcripts/"

// runIn runs certlens with stdin, like run.
func runIn(t *testing.T, stdin []byte, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}, env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	// analyze --json and probe --json write events; reports for people are
	// left out by the collector.
	_, _ = invariant.NewSource(t).Write([]byte(out.String()))
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func abs(t *testing.T, rel string) string {
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAnalyzeExitCodesAndOutput(t *testing.T) {
	okPcap := abs(t, transcripts+"tls12-3ca-curl-cert.pcap")
	badPcap := abs(t, transcripts+"tls12-3ca-curl-nocert.pcap")
	data, err := os.ReadFile(badPcap)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(truncated, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	expect := filepath.Join(dir, "alice.pem")
	pkitest.WritePEM(t, expect, pkitest.NewCA(t, "unlisted CA").NewClient(t, "alice"))

	tests := []struct {
		name      string
		stdin     []byte
		args      []string
		code      int
		stdout    []string // substrings
		stderr    string
		noStdout  bool
		notStdout string
	}{
		{name: "a certificate sent: no problem", args: []string{"analyze", okPcap}, code: 0,
			stdout: []string{"tcp.stream 0  127.0.0.1:40000 -> 127.0.0.1:443  (localhost)  TLS 1.2", "Certificate request (frame 6): 3 CA names, 339 bytes of the 16,384-byte limit",
				"1  CN=certlens Client CA 1", "Client certificate (frame 8): sent", "Verdict: ok (certain)", "1 TCP connection, 1 analysed, 1 with TLS"}},
		{name: "no certificate sent: 403.7 predicted, exit 1", args: []string{"analyze", badPcap}, code: 1,
			stdout: []string{"none sent (empty Certificate message)", "client-cert-not-sent", "Remedy:", "Verdict: 403.7 (predicted)"},
			stderr: "certlens: 1 handshake predicts a failure or has an error finding"},
		{name: "truncated capture: exit 2 with the file and offset", args: []string{"analyze", truncated}, code: 2,
			stderr: "certlens: " + truncated + ": byte "},
		{name: "missing file: exit 2", args: []string{"analyze", filepath.Join(dir, "none.pcap")}, code: 2, stderr: "no such file"},
		{name: "no file: exit 2", args: []string{"analyze"}, code: 2, stderr: "analyze needs at least one capture file", noStdout: true},
		{name: "bad filter: exit 2", args: []string{"analyze", "--filter", "port http", okPcap}, code: 2, stderr: `--filter: port "http" is not a port number`, noStdout: true},
		{name: "filter excluding everything", args: []string{"analyze", "--filter", "port 444", badPcap}, code: 0, stdout: []string{"No TLS handshake found.", "0 analysed"}},
		{name: "gzip on standard input, as JSON", stdin: gz.Bytes(), args: []string{"analyze", "--json", "-"}, code: 1,
			stdout: []string{`"msg":"handshake","conn_id":"stdin#0","mode":"analyze"`, `"pcap":{"stream":0,"frames":{"cert_request":6,"client_cert":8}}`, `"msg":"connection closed"`}},
		{name: "expected certificate", args: []string{"analyze", "--json", "--expect-cert", expect, badPcap}, code: 1,
			stdout: []string{`"id":"expected-cert-not-selectable"`}},
		{name: "no colour through a pipe", args: []string{"analyze", badPcap}, code: 1, notStdout: "\x1b["},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runIn(t, tt.stdin, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if tt.notStdout != "" && strings.Contains(stdout, tt.notStdout) {
				t.Errorf("stdout has %q", tt.notStdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			if tt.noStdout && stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
}

// TestAnalyzeJSONLines: every line is one event with the proxy's keys.
func TestAnalyzeJSONLines(t *testing.T) {
	stdout, _, code := runIn(t, nil, nil, "analyze", "--json", abs(t, transcripts+"tls12-renegotiation-sclient.pcap"), abs(t, transcripts+"tls13-3ca-curl-cert.pcap"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		l, err := decodeLine([]byte(line))
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, l.TS); err != nil || l.Level != "info" {
			t.Errorf("ts %v, level %v", l.TS, l.Level)
		}
		var pcap *event.PCAPRef
		var connID string
		switch {
		case l.Handshake != nil:
			pcap, connID = l.Handshake.PCAP, l.Handshake.ConnID
		case l.Closed != nil:
			pcap, connID = l.Closed.PCAP, l.Closed.ConnID
		default:
			t.Fatalf("not an event: %s", line)
		}
		if pcap == nil || pcap.Stream != 0 {
			t.Errorf("pcap %+v", pcap)
		}
		msgs = append(msgs, l.Msg+"/"+strconv.Quote(connID))
	}
	want := []string{`handshake/"tls12-renegotiation-sclient.pcap#0"`, `handshake/"tls12-renegotiation-sclient.pcap#0"`,
		`connection closed/"tls12-renegotiation-sclient.pcap#0"`, `handshake/"tls13-3ca-curl-cert.pcap#0"`, `connection closed/"tls13-3ca-curl-cert.pcap#0"`}
	if strings.Join(msgs, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", msgs, want)
	}
}

// serveEvents starts certlens serve, runs fn with its address, stops it
// and returns the lines it logged.
func serveEvents(t *testing.T, allowPorts string, fn func(proxy string), extra ...string) []eventLine {
	t.Helper()
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	cmd := exec.Command(binary, append([]string{"serve", "--listen", listen, "--admin-listen=", "--allow-ports", allowPorts}, extra...)...)
	cmd.Dir = t.TempDir()
	// PATH: serve may run a store's own tool (certutil for --expect-cert store:nss).
	cmd.Env = []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan eventLine, 1000)
	src := invariant.NewSource(t)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			src.Line(sc.Bytes())
			l, err := decodeLine(sc.Bytes())
			if err != nil {
				t.Errorf("%v: %s", err, sc.Bytes())
				continue
			}
			lines <- l
		}
	}()
	peertest.WaitTCP(t, listen, 10*time.Second)
	fn(listen)
	// Let the tunnels' last events out, then stop gracefully.
	time.Sleep(500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var evs []eventLine
	for l := range lines {
		evs = append(evs, l)
	}
	_ = cmd.Wait()
	return evs
}

// TestAnalyzeMatchesServe: the same traffic, through certlens serve and
// captured with tshark, gives the same handshake events from serve's log
// and from analyze --json on the capture (but for who logged them, when
// and where: conn_id, mode, ts, pcap). The capture holds each TLS
// connection twice: curl to the proxy, inside its CONNECT tunnel (the same
// client_addr as serve's), and the proxy to the server.
func TestAnalyzeMatchesServe(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "tshark"} {
		peertest.Require(t, bin)
	}
	serverCA := pkitest.NewCA(t, "certlens analyze-vs-serve server CA")
	clientCA := pkitest.NewCA(t, "certlens analyze-vs-serve client CA")
	dir := t.TempDir()
	caPath := filepath.Join(dir, "server-ca.pem")
	pkitest.WritePEM(t, caPath, serverCA)
	certPath, keyPath := clientCA.NewClient(t, "alice").WriteFiles(t, dir, "client")
	cas := append(pkitest.ManyCAs(t, 2), clientCA)
	type target struct {
		cfg      peertest.OpenSSLServerConfig
		sendCert bool
	}
	targets := []target{
		{peertest.OpenSSLServerConfig{ClientCAs: cas, Verify: 1, TLS12: true}, false},
		{peertest.OpenSSLServerConfig{ClientCAs: cas, Verify: 1, TLS12: true}, true},
		{peertest.OpenSSLServerConfig{ClientCAs: append(pkitest.ManyCAs(t, 260), clientCA), Verify: 1, TLS12: true}, true},
		{peertest.OpenSSLServerConfig{ClientCAs: cas, Verify: 1, TLS13: true}, true},
	}
	var ports []int
	var addrs []string
	for _, tg := range targets {
		cfg := tg.cfg
		cfg.Cert, cfg.WWW = serverCA.NewServer(t, "127.0.0.1"), true
		addr, _ := peertest.OpenSSLServer(t, cfg)
		_, p, _ := strings.Cut(addr, ":")
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
		addrs = append(addrs, addr)
	}
	allow := make([]string, len(ports))
	for i, p := range ports {
		allow[i] = strconv.Itoa(p)
	}
	var capturePath string
	served := serveEvents(t, strings.Join(allow, ","), func(proxy string) {
		_, pp, _ := strings.Cut(proxy, ":")
		pn, _ := strconv.Atoi(pp)
		c := peertest.CaptureLoopback(t, append(ports, pn)...)
		for i, tg := range targets {
			args := []string{"-sS", "--max-time", "20", "--noproxy", "", "-x", "http://" + proxy, "--cacert", caPath, "-o", os.DevNull}
			if tg.sendCert {
				args = append(args, "--cert", certPath, "--key", keyPath)
			}
			out, err := exec.Command(peertest.Require(t, "curl"), append(args, "https://"+addrs[i]+"/")...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", addrs[i], err, out)
			}
		}
		time.Sleep(300 * time.Millisecond)
		capturePath = c.Stop()
	})
	stdout, stderr, _ := runIn(t, nil, nil, "analyze", "--json", capturePath)
	analyzed := map[string][]eventLine{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		l, err := decodeLine([]byte(line))
		if err != nil {
			t.Fatalf("analyze line: %v: %s (stderr %s)", err, line, stderr)
		}
		if h := l.Handshake; h != nil {
			if h.PCAP == nil {
				t.Errorf("no pcap field: %s", line)
			}
			analyzed[h.Target] = append(analyzed[h.Target], l)
		}
	}
	// comparable is the line without who logged it, when and where.
	comparable := func(l eventLine) []byte {
		h := *l.Handshake
		h.ConnID, h.Mode, h.ClientAddr, h.PCAP, h.CommunityID = "", "", "", nil, ""
		b, _ := json.Marshal(struct {
			Level string
			*event.Handshake
		}{l.Level, &h})
		return b
	}
	compared := 0
	for _, sl := range served {
		s := sl.Handshake
		if s == nil {
			continue
		}
		as := analyzed[s.Target]
		if len(as) != 2 {
			t.Errorf("analyze has %d handshakes to %s, want 2 (in the tunnel and upstream)", len(as), s.Target)
			continue
		}
		inTunnel := 0
		for _, a := range as {
			if a.Handshake.ClientAddr == s.ClientAddr {
				inTunnel++
				// What serve's own CONNECT front door carried.
				if a.Handshake.AppProtocol != "http-connect" {
					t.Errorf("the tunnelled handshake to %s has app_protocol %v, want http-connect", s.Target, a.Handshake.AppProtocol)
				}
				a.Handshake.AppProtocol = ""
			}
		}
		if inTunnel != 1 {
			t.Errorf("%d of the analyzed handshakes to %s come from serve's client %s, want 1", inTunnel, s.Target, s.ClientAddr)
		}
		// serve's community_id is its own connection to the server's: the
		// capture holds that flow too, and a sensor's hash of it (analyze's
		// of the upstream handshake) must be the same, to join the two.
		joined := 0
		for _, a := range as {
			if a.Handshake.ClientAddr != s.ClientAddr && s.CommunityID != "" && a.Handshake.CommunityID == s.CommunityID {
				joined++
			}
		}
		if joined != 1 {
			t.Errorf("serve's community_id %q is not that of the upstream flow analyze saw", s.CommunityID)
		}
		sb := comparable(sl)
		for _, a := range as {
			if ab := comparable(a); !bytes.Equal(sb, ab) {
				t.Errorf("to %s:\nserve   %s\nanalyze %s", s.Target, sb, ab)
			}
		}
		compared++
	}
	if compared != len(targets) {
		t.Errorf("compared %d handshakes, want %d", compared, len(targets))
	}
}

// TestAnalyzeReportsWhatItSkipped: packets inside encapsulations certlens
// cannot read, and IP fragments whose datagram never came whole, are
// counted and named on stderr, never dropped silently.
func TestAnalyzeReportsWhatItSkipped(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	write := func(ls ...gopacket.SerializableLayer) {
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), CaptureLength: len(sb.Bytes()), Length: len(sb.Bytes())}
		if err := w.WritePacket(ci, sb.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	}
	for range 3 {
		write(eth, ip(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 1194}, gopacket.Payload("openvpn"))
	}
	for range 2 {
		write(eth, ip(layers.IPProtocolESP), gopacket.Payload("\x00\x00\x10\x01encrypted"))
	}
	write(eth, ip(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 53}, gopacket.Payload("dns"))
	frag := ip(layers.IPProtocolTCP)
	frag.Flags, frag.Id = layers.IPv4MoreFragments, 9
	write(eth, frag, gopacket.Payload(make([]byte, 64)))
	path := filepath.Join(t.TempDir(), "skipped.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, nil, "analyze", path)
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"3 packets in OpenVPN (UDP 1194) not read: certlens cannot see inside it",
		"2 packets in IPsec ESP (encrypted) not read",
		"1 of 1 IP fragments were not read: their datagrams never came whole in the capture",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
}
