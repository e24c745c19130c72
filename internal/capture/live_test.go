package capture

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
	"github.com/certlens/certlens/rules"
)

// liveScenario is one connection of the live capture: a server asking for
// a certificate from cas CA names, and a client.
type liveScenario struct {
	name     string
	cas      int // the client's CA and cas-1 others
	tls13    bool
	sClient  bool // openssl s_client, else curl
	sendCert bool
	ipv6     bool // a Go server on [::1] instead of s_server
	verdict  string
}

var liveScenarios = []liveScenario{
	{name: "TLS 1.2, 1 CA, curl sends its certificate", cas: 1, sendCert: true, verdict: "ok"},
	{name: "TLS 1.2, 3 CAs, curl sends none", cas: 3, verdict: "403.7"},
	{name: "TLS 1.2, 3 CAs, s_client sends its certificate", cas: 3, sClient: true, sendCert: true, verdict: "ok"},
	{name: "TLS 1.2, 261 CAs, curl sends its certificate", cas: 261, sendCert: true, verdict: "ok"},
	{name: "TLS 1.2, 261 CAs, s_client sends none", cas: 261, sClient: true, verdict: "403.7"},
	// Without keys TLS 1.3 is read from its record sizes: inferred, never certain.
	{name: "TLS 1.3, 3 CAs, curl sends its certificate", cas: 3, tls13: true, sendCert: true, verdict: "ok"},
	{name: "TLS 1.3, 1 CA, s_client sends none", cas: 1, tls13: true, sClient: true, verdict: "403.7"},
	{name: "TLS 1.2 over IPv6, 3 CAs, curl sends its certificate", cas: 3, ipv6: true, sendCert: true, verdict: "ok"},
}

// livePKI is the certificates of the live scenarios: the client's
// certificate is issued by clientCA, which every list ends with.
type livePKI struct {
	serverCA, server, clientCA, client   *pkitest.Cert
	others                               []*pkitest.Cert // 260 long-named roots
	dir, serverCAPath, certPath, keyPath string
}

func newLivePKI(t *testing.T) *livePKI {
	p := &livePKI{serverCA: pkitest.NewCA(t, "certlens capture server CA"), dir: t.TempDir()}
	p.server = p.serverCA.NewServer(t, "localhost")
	p.clientCA = pkitest.NewCA(t, "certlens capture client CA")
	p.client = p.clientCA.NewClient(t, "certlens capture client")
	p.others = pkitest.ManyCAs(t, 260)
	p.serverCAPath = filepath.Join(p.dir, "server-ca.pem")
	pkitest.WritePEM(t, p.serverCAPath, p.serverCA)
	p.certPath, p.keyPath = p.client.WriteFiles(t, p.dir, "client")
	return p
}

func (p *livePKI) cas(n int) []*pkitest.Cert {
	return append(append([]*pkitest.Cert(nil), p.others[:n-1]...), p.clientCA)
}

// startServer starts the scenario's server and returns its port.
func (p *livePKI) startServer(t *testing.T, sc liveScenario) int {
	if sc.ipv6 {
		return p.goServerIPv6(t, sc)
	}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: p.server, ClientCAs: p.cas(sc.cas), Verify: 1, TLS12: !sc.tls13, TLS13: sc.tls13, WWW: true,
	})
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// goServerIPv6 serves HTTPS on [::1], asking for a certificate.
func (p *livePKI) goServerIPv6(t *testing.T, sc liveScenario) int {
	pool := x509.NewCertPool()
	for _, ca := range p.cas(sc.cas) {
		pool.AddCert(ca.Cert)
	}
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{p.server.TLSCertificate()},
			ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: pool,
			MaxVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// runClient makes the scenario's request to port.
func (p *livePKI) runClient(t *testing.T, sc liveScenario, port int) {
	ps := strconv.Itoa(port)
	var c *peertest.Process
	if sc.sClient {
		args := []string{"s_client", "-connect", "127.0.0.1:" + ps, "-servername", "localhost", "-CAfile", p.serverCAPath,
			"-verify_return_error", "-ign_eof"}
		if sc.tls13 {
			args = append(args, "-tls1_3")
		} else {
			args = append(args, "-tls1_2")
		}
		if sc.sendCert {
			args = append(args, "-cert", p.certPath, "-key", p.keyPath)
		}
		c = peertest.Start(t, "openssl", args, peertest.WithStdin(strings.NewReader("GET / HTTP/1.0\r\n\r\n")))
	} else {
		ip := "127.0.0.1"
		if sc.ipv6 {
			ip = "[::1]"
		}
		args := []string{"-sS", "--max-time", "20", "--cacert", p.serverCAPath, "--resolve", "localhost:" + ps + ":" + ip,
			"-o", filepath.Join(t.TempDir(), "body")}
		if sc.tls13 {
			args = append(args, "--tlsv1.3")
		} else {
			args = append(args, "--tlsv1.2", "--tls-max", "1.2")
		}
		if sc.sendCert {
			args = append(args, "--cert", p.certPath, "--key", p.keyPath)
		}
		c = peertest.Start(t, "curl", append(args, "-w", "HTTP %{http_code}", "https://localhost:"+ps+"/"))
	}
	if err := c.Wait(30 * time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", sc.name, err, c.Output())
	}
	// s_server -verify answers whatever the client sent: what the
	// verdicts must agree with when they are certain.
	if out := c.Output(); !strings.Contains(out, "HTTP 200") && !strings.Contains(out, "HTTP/1.0 200 ok") {
		t.Fatalf("%s: the server did not answer 200:\n%s", sc.name, out)
	}
}

// captureVariant is one way of capturing the same traffic.
type captureVariant struct {
	name, iface, linkType, format string
}

var captureVariants = []captureVariant{
	{"lo, Ethernet, pcapng", "lo", "", "pcapng"},
	{"any, Linux cooked v2, pcapng", "any", "LINUX_SLL2", "pcapng"},
	{"any, Linux cooked v1, pcap", "any", "LINUX_SLL", "pcap"},
}

// TestLiveCaptures records curl and openssl s_client against openssl
// s_server (and a Go server on [::1]) with tshark on lo and on any, as
// pcapng and pcap, and checks what analyze finds against the scenarios and
// against tshark reading the same files: the DN count and dnames_len of
// every CertificateRequest, the frames of the messages, and the tcp.stream
// numbers of every connection.
func TestLiveCaptures(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "tshark"} {
		peertest.Require(t, bin)
	}
	pki := newLivePKI(t)
	ports := make([]int, len(liveScenarios))
	for i, sc := range liveScenarios {
		ports[i] = pki.startServer(t, sc)
	}
	var caps []*peertest.Capture
	for _, v := range captureVariants {
		caps = append(caps, peertest.StartCapture(t, peertest.CaptureOptions{Interface: v.iface, LinkType: v.linkType, Format: v.format}, ports...))
	}
	for i, sc := range liveScenarios {
		pki.runClient(t, sc, ports[i])
	}
	var reference map[int]*event.Handshake
	for i, v := range captureVariants {
		path := caps[i].Stop()
		t.Run(v.name, func(t *testing.T) {
			byPort := checkLiveCapture(t, pki, path, ports)
			// The same traffic, however captured, gives the same events
			// but for where they are in the file.
			norm := map[int]*event.Handshake{}
			for port, e := range byPort {
				c := *e
				c.ConnID, c.PCAP, c.ClientAddr = "", nil, ""
				norm[port] = &c
			}
			if reference == nil {
				reference = norm
				return
			}
			for port, e := range norm {
				if got, want := jsonOf(t, e), jsonOf(t, reference[port]); got != want {
					t.Errorf("port %d: event differs from the %s capture's:\n got %s\nwant %s", port, captureVariants[0].name, got, want)
				}
			}
		})
	}
}

// checkLiveCapture analyses one capture and returns the handshake event of
// each scenario, by server port.
func checkLiveCapture(t *testing.T, pki *livePKI, path string, ports []int) map[int]*event.Handshake {
	evs, st := analyzeFile(t, path, Options{WatchRenegotiation: true})
	byPort := map[int]*event.Handshake{}
	closedByPort := map[int]*event.Closed{}
	streamPorts := map[int]string{} // our tcp.stream -> "clientport-serverport"
	for _, e := range evs {
		switch {
		case e.Handshake != nil:
			_, port, _ := net.SplitHostPort(e.Handshake.Target)
			n, _ := strconv.Atoi(port)
			if byPort[n] != nil {
				t.Errorf("two handshakes to port %d", n)
			}
			byPort[n] = e.Handshake
		case e.Closed != nil:
			streamPorts[e.Stream] = portPair(e.Closed.ClientAddr, e.Closed.Target)
			_, port, _ := net.SplitHostPort(e.Closed.Target)
			n, _ := strconv.Atoi(port)
			closedByPort[n] = e.Closed
		}
	}
	if st.UnknownLink+st.Malformed > 0 {
		t.Errorf("undecoded frames: %+v", st)
	}

	// tcp.stream, as tshark numbers the connections (marker connections
	// included).
	tsharkStreams := map[int]string{}
	for _, row := range tsharkFields(t, path, "tcp.flags.syn == 1 && tcp.flags.ack == 0", "tcp.stream", "tcp.srcport", "tcp.dstport") {
		n, _ := strconv.Atoi(row[0])
		tsharkStreams[n] = row[1] + "-" + row[2]
	}
	// Every stream tshark numbers, with or without its SYN: a capture on a
	// busy machine may drop a SYN, and both then still number the stream.
	allStreams := map[string]bool{}
	for _, row := range tsharkFields(t, path, "tcp", "tcp.stream") {
		allStreams[row[0]] = true
	}
	if len(allStreams) != st.Streams {
		t.Errorf("tshark numbers %d connections (%d with a SYN), analyze %d connections", len(allStreams), len(tsharkStreams), st.Streams)
	}
	for n, pp := range tsharkStreams {
		if streamPorts[n] != pp {
			t.Errorf("tcp.stream %d: tshark %s, analyze %q", n, pp, streamPorts[n])
		}
	}

	crs := map[int]transcript.DNamesSummary{}
	for _, s := range transcript.TsharkDNames(t, path) {
		crs[s.Frame] = s
	}
	clientCerts := map[string]int{} // "stream/srcport" -> frame
	for _, row := range tsharkFields(t, path, "tls.handshake.type == 11", "tcp.stream", "tcp.srcport", "frame.number") {
		n, _ := strconv.Atoi(row[2])
		clientCerts[row[0]+"/"+row[1]] = n
	}
	for i, sc := range liveScenarios {
		e := byPort[ports[i]]
		if e == nil {
			t.Errorf("%s: no handshake event", sc.name)
			continue
		}
		wantVersion := "TLS 1.2"
		if sc.tls13 {
			wantVersion = "TLS 1.3"
		}
		if e.Verdict != sc.verdict || e.TLSVersion != wantVersion {
			t.Errorf("%s: verdict %s, %s; want %s, %s", sc.name, e.Verdict, e.TLSVersion, sc.verdict, wantVersion)
		}
		if c := closedByPort[ports[i]]; c == nil || c.Verdict != e.Verdict || c.VerdictCertain == nil || *c.VerdictCertain != e.VerdictCertain {
			t.Errorf("%s: connection closed %+v, want the handshake's verdict %s (certain %v)", sc.name, c, e.Verdict, e.VerdictCertain)
		}
		checkLargeList(t, sc, e)
		if e.PCAP == nil || tsharkStreams[e.PCAP.Stream] == "" {
			t.Errorf("%s: pcap %+v names no stream tshark knows", sc.name, e.PCAP)
			continue
		}
		if sc.tls13 {
			if e.CertRequest != nil || e.Visibility != "inferred" || e.PCAP.Frames != nil || e.VerdictCertain {
				t.Errorf("%s: TLS 1.3 without keys shows a request (%v) or frames %+v, visibility %s, certain %v", sc.name, e.CertRequest, e.PCAP.Frames, e.Visibility, e.VerdictCertain)
			}
			wantSent := "no"
			if sc.sendCert {
				wantSent = "yes"
			}
			if inf := e.Inferred; inf == nil || inf.CertRequested != "yes" || inf.CertSent != wantSent {
				t.Errorf("%s: inferred %+v, want requested yes, sent %v", sc.name, inf, sc.sendCert)
			}
			continue
		}
		if e.CertRequest == nil || e.ClientCert == nil || e.PCAP.Frames == nil {
			t.Errorf("%s: request %v, client certificate %v, frames %v", sc.name, e.CertRequest, e.ClientCert, e.PCAP.Frames)
			continue
		}
		cas := pki.cas(sc.cas)
		cr := e.CertRequest
		if cr.IssuerCount != len(cas) || cr.IssuerBytes != pkitest.IssuerListSize(cas) {
			t.Errorf("%s: %d DNs, %d bytes; configured %d, %d", sc.name, cr.IssuerCount, cr.IssuerBytes, len(cas), pkitest.IssuerListSize(cas))
		}
		ts, ok := crs[e.PCAP.Frames.CertRequest]
		switch {
		case !ok:
			t.Errorf("%s: tshark has no CertificateRequest in frame %d (it has %v)", sc.name, e.PCAP.Frames.CertRequest, crs)
		case ts.Count != cr.IssuerCount || ts.DNamesLen != cr.IssuerBytes:
			t.Errorf("%s: tshark %d DNs, dnames_len %d; analyze %d, issuer_bytes %d", sc.name, ts.Count, ts.DNamesLen, cr.IssuerCount, cr.IssuerBytes)
		}
		_, cport, _ := net.SplitHostPort(e.ClientAddr)
		if want := clientCerts[strconv.Itoa(e.PCAP.Stream)+"/"+cport]; e.PCAP.Frames.ClientCert != want || want == 0 {
			t.Errorf("%s: client Certificate in frame %d, tshark says %d", sc.name, e.PCAP.Frames.ClientCert, want)
		}
		if e.ClientCert.Sent != sc.sendCert {
			t.Errorf("%s: client certificate sent %v", sc.name, e.ClientCert.Sent)
		}
	}
	return byPort
}

// checkLargeList: a list over 16 KiB is a warning about SChannel clients,
// whatever the client did; it predicts 403.7 only for a client that sent
// no certificate, and one that sent its certificate (and got the page)
// has the verdict ok, read from the wire.
func checkLargeList(t *testing.T, sc liveScenario, e *event.Handshake) {
	t.Helper()
	if sc.cas < 261 || sc.tls13 {
		return
	}
	for _, f := range e.Findings {
		if f.ID != "issuer-list-too-large" {
			continue
		}
		want := rules.Verdict4037
		if sc.sendCert {
			want = rules.VerdictNone
			if !e.VerdictCertain {
				t.Errorf("%s: verdict %s not certain", sc.name, e.Verdict)
			}
		}
		if f.Predicts != want {
			t.Errorf("%s: issuer-list-too-large predicts %q, want %q: %s", sc.name, f.Predicts, want, f.Detail)
		}
		return
	}
	t.Errorf("%s: no issuer-list-too-large among %+v", sc.name, e.Findings)
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func portPair(client, target string) string {
	_, cp, _ := net.SplitHostPort(client)
	_, sp, _ := net.SplitHostPort(target)
	return cp + "-" + sp
}
