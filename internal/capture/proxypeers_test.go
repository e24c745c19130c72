package capture

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// socksProxy is a small SOCKS 4, 4a and 5 proxy (no authentication) on a
// free loopback port, relaying to loopback only: a Go peer for what the
// tests need of one.
func socksProxy(t *testing.T) int {
	addr := peertest.TCPServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		target, ok := socksHandshake(br, c)
		if !ok {
			return
		}
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil || !up.RemoteAddr().(*net.TCPAddr).IP.IsLoopback() {
			return
		}
		defer up.Close()
		up.SetDeadline(time.Now().Add(30 * time.Second))
		go io.Copy(up, br)
		io.Copy(c, up)
	})
	return peertest.Port(t, addr)
}

func socksHandshake(br *bufio.Reader, c net.Conn) (target string, ok bool) {
	ver, err := br.ReadByte()
	if err != nil {
		return "", false
	}
	switch ver {
	case 4:
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return "", false
		}
		if _, err := br.ReadString(0); err != nil { // user id
			return "", false
		}
		host := net.IP(hdr[3:7]).String()
		if hdr[3] == 0 && hdr[4] == 0 && hdr[5] == 0 {
			name, err := br.ReadString(0)
			if err != nil {
				return "", false
			}
			host = strings.TrimSuffix(name, "\x00")
		}
		c.Write([]byte{0, 0x5a, 0, 0, 0, 0, 0, 0})
		return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(hdr[1:3])))), true
	case 5:
		n, _ := br.ReadByte()
		if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
			return "", false
		}
		c.Write([]byte{5, 0})
		req := make([]byte, 4)
		if _, err := io.ReadFull(br, req); err != nil {
			return "", false
		}
		var host string
		switch req[3] {
		case 1:
			ip := make([]byte, 4)
			io.ReadFull(br, ip)
			host = net.IP(ip).String()
		case 3:
			l, _ := br.ReadByte()
			name := make([]byte, l)
			io.ReadFull(br, name)
			host = string(name)
		default:
			return "", false
		}
		port := make([]byte, 2)
		if _, err := io.ReadFull(br, port); err != nil {
			return "", false
		}
		c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port)))), true
	}
	return "", false
}

// proxyProtocolServer serves HTTPS behind a PROXY header (v1 or v2), as a
// server behind HAProxy's send-proxy does, asking for a client
// certificate.
func proxyProtocolServer(t *testing.T, cfg *tls.Config) int {
	addr := peertest.TCPServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		sig, err := br.Peek(12)
		if err != nil {
			return
		}
		if string(sig) == string(proxyV2Sig) {
			hdr := make([]byte, 16)
			io.ReadFull(br, hdr)
			io.ReadFull(br, make([]byte, binary.BigEndian.Uint16(hdr[14:16])))
		} else if _, err := br.ReadString('\n'); err != nil {
			return
		}
		tc := tls.Server(bufferedConn{c, br}, cfg)
		if tc.Handshake() != nil {
			return
		}
		http.ReadRequest(bufio.NewReader(tc))
		io.WriteString(tc, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
		tc.Close()
	})
	return peertest.Port(t, addr)
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// TestProxyPrefixPeers: curl through a SOCKS 4, 4a, 5 and 5h proxy and
// with a PROXY v1 header (--haproxy-protocol), a Go client with a PROXY v2
// header, and a Go client speaking PostgreSQL 17's direct TLS (ALPN
// "postgresql"), all with a client certificate, captured with tshark:
// analyze reads every handshake behind its prefix, names it, points at the
// proxy's target, and agrees with tshark.
func TestProxyPrefixPeers(t *testing.T) {
	peertest.Require(t, "curl")
	pki := newPeerPKI(t, "alice")
	pool := x509.NewCertPool()
	for _, ca := range pki.cas {
		pool.AddCert(ca.Cert)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.server.TLSCertificate()}, ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs: pool, MaxVersion: tls.VersionTLS12, NextProtos: []string{"postgresql", "http/1.1"}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	tlsPort := peertest.Port(t, ln.Addr().String())
	socksPort := socksProxy(t)
	ppPort := proxyProtocolServer(t, cfg)
	capture := peertest.CaptureLoopback(t, tlsPort, socksPort, ppPort)

	curl := func(args ...string) {
		t.Helper()
		args = append([]string{"-sS", "--max-time", "20", "--cacert", pki.serverCAPath, "--cert", pki.certPath, "--key", pki.keyPath, "--tls-max", "1.2"}, args...)
		p := peertest.Start(t, "curl", args)
		if err := p.Wait(time.Minute); err != nil || p.Output() != "ok" {
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, p.Output())
		}
	}
	socks := "127.0.0.1:" + strconv.Itoa(socksPort)
	url := "https://localhost:" + strconv.Itoa(tlsPort) + "/"
	curl("--socks4", socks, url)
	curl("--socks4a", socks, url)
	curl("--socks5", socks, url)
	curl("--socks5-hostname", socks, url)
	curl("--haproxy-protocol", "https://localhost:"+strconv.Itoa(ppPort)+"/")

	goClient := func(port int, prefix []byte, alpn string) {
		t.Helper()
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write(prefix)
		roots := x509.NewCertPool()
		roots.AddCert(pki.serverCA.Cert)
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: roots, Certificates: []tls.Certificate{pki.client.TLSCertificate()}, NextProtos: []string{alpn}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tc, "GET / HTTP/1.0\r\n\r\n")
		io.ReadAll(tc)
	}
	v2 := append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0, 12, 192, 0, 2, 7, 127, 0, 0, 1, 0xc8, 0x22, byte(ppPort>>8), byte(ppPort))
	goClient(ppPort, v2, "http/1.1")
	goClient(tlsPort, nil, "postgresql")

	path := capture.Stop()
	evs, st := analyzeFile(t, path, Options{})
	var got []string
	for _, e := range evs {
		if h := e.Handshake; h != nil {
			got = append(got, fmt.Sprintf("%s %s %v", h.AppProtocol, h.Target, h.ClientCert != nil && h.ClientCert.Sent))
		}
	}
	tp := strconv.Itoa(tlsPort)
	want := []string{
		"socks4 127.0.0.1:" + tp + " true", " 127.0.0.1:" + tp + " true",
		"socks4 localhost:" + tp + " true", " 127.0.0.1:" + tp + " true",
		"socks5 127.0.0.1:" + tp + " true", " 127.0.0.1:" + tp + " true",
		"socks5 localhost:" + tp + " true", " 127.0.0.1:" + tp + " true",
		"proxy-v1 127.0.0.1:" + strconv.Itoa(ppPort) + " true",
		"proxy-v2 127.0.0.1:" + strconv.Itoa(ppPort) + " true",
		"postgresql 127.0.0.1:" + tp + " true",
	}
	// The proxy's handshake with the server ends before the client's.
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("handshakes (app_protocol target sent):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Not tshark's socks dissector: it opens conversations for the
	// proxied connections, which take tcp.stream numbers of their own.
	if n := matchTshark(t, path, evs, st, "-d", fmt.Sprintf("tcp.port==%d,tls", socksPort), "-d", fmt.Sprintf("tcp.port==%d,tls", ppPort),
		"-d", fmt.Sprintf("tcp.port==%d,tls", tlsPort)); n != len(want) {
		t.Errorf("tshark shows %d CertificateRequests, want %d", n, len(want))
	}
}
