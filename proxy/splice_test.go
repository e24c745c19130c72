package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// countedConn counts the bytes a server read and wrote on the wire.
type countedConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// wireServer is an HTTPS server for one request: it reads the body, answers
// size bytes, then reads the client to its end so that what it counted is
// every byte the client sent. It reports the wire counts of each connection.
func wireServer(t *testing.T, cert *pkitest.Cert, size int) (string, chan [2]int64) {
	counts := make(chan [2]int64, 4)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate()}}
	addr := tcpServer(t, func(c net.Conn) {
		cc := &countedConn{Conn: c}
		defer func() { counts <- [2]int64{cc.in.Load(), cc.out.Load()} }()
		tc := tls.Server(cc, cfg)
		_ = tc.SetDeadline(time.Now().Add(60 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(tc))
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size)
		_, _ = tc.Write(bytes.Repeat([]byte("d"), size))
		_ = tc.CloseWrite()
		_, _ = io.Copy(io.Discard, cc)
	})
	return addr, counts
}

// scrape reads one unlabelled series from the admin server's /metrics.
func scrape(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestSpliceCountsBytes sends curl's upload and a download through tunnels
// that are handed to the kernel after the handshake (TLS 1.3; TLS 1.2 with
// renegotiation watching off) and through one that is not (TLS 1.2 watched):
// the "connection closed" event counts every byte the server saw on the
// wire either way, and only the first two are spliced.
func TestSpliceCountsBytes(t *testing.T) {
	peertest.Require(t, "curl")
	ca := pkitest.NewCA(t, "certlens splice CA")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pkitest.WritePEM(t, caFile, ca)
	upload := filepath.Join(dir, "upload")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("u"), 3<<20+17), 0o600); err != nil {
		t.Fatal(err)
	}
	const size = 9<<20 + 5
	cases := []struct {
		name    string
		watch   bool
		tls     string
		spliced float64
	}{
		{"TLS 1.3", true, "1.3", 2},
		{"TLS 1.2 renegotiation not watched", false, "1.2", 2},
		{"TLS 1.2 renegotiation watched", true, "1.2", 0},
	}
	for _, mode := range []string{"observe", "sidecar"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				addr, counts := wireServer(t, ca.NewServer(t, "127.0.0.1"), size)
				opts := Options{WatchRenegotiation: tc.watch, IdleTimeout: 10 * time.Second}
				args := []string{"-sS", "--cacert", caFile, "--tlsv" + tc.tls, "--tls-max", tc.tls,
					"--data-binary", "@" + upload, "-o", "/dev/null", "-w", "%{size_download}"}
				if mode == "sidecar" {
					opts.Mode, opts.Sidecar.Upstream = "sidecar", addr
				}
				proxyAddr, s, ev := startServer(t, opts)
				if mode == "sidecar" {
					args = append(args, "--connect-to", "127.0.0.1:"+strconv.Itoa(peertest.Port(t, addr))+":"+proxyAddr)
				} else {
					args = append(args, "-x", "http://"+proxyAddr)
				}
				out, stderr, err := runCurl(t, append(args, "https://"+addr+"/")...)
				if err != nil || strings.TrimSpace(out) != strconv.Itoa(size) {
					t.Fatalf("curl: %q %v %s", out, err, stderr)
				}
				var wire [2]int64
				select {
				case wire = <-counts:
				case <-time.After(30 * time.Second):
					t.Fatal("the server did not finish")
				}
				closed := ev.waitClosed(t, 1)[0]
				if up, down := closed.BytesUp, closed.BytesDown; up != wire[0] || down != wire[1] {
					t.Errorf("event counted %v up, %v down; the server's wire %d, %d", up, down, wire[0], wire[1])
				}
				if hs := ev.waitHandshakes(t, 1)[0]; hs.TLSVersion != "TLS "+tc.tls {
					t.Errorf("handshake tls_version %v", hs.TLSVersion)
				}
				if got := scrape(t, s, "certlens_tunnels_spliced_total"); got != tc.spliced {
					t.Errorf("spliced directions %v, want %v", got, tc.spliced)
				}
			})
		}
	}
}

// TestSpliceIdleAndResets: after a TLS 1.3 handshake the tunnel is spliced;
// a trickle either way slower than the chunk size but faster than the idle
// timeout keeps it open, silence closes it after the idle timeout (within a
// quarter of it), and a reset names the side that reset.
func TestSpliceIdleAndResets(t *testing.T) {
	const idle = time.Second
	ca := pkitest.NewCA(t, "certlens splice idle CA")
	roots := x509Pool(ca)
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.NewServer(t, "127.0.0.1").TLSCertificate()}, MinVersion: tls.VersionTLS13}
	trickle := func(w io.Writer) error {
		for range 8 {
			time.Sleep(idle * 2 / 5)
			if _, err := w.Write([]byte("t")); err != nil {
				return err
			}
		}
		return nil
	}
	cases := []struct {
		name       string
		server     func(c *tls.Conn)
		client     func(c *tls.Conn, raw *net.TCPConn) error
		reason     string
		minDur     time.Duration
		maxDur     time.Duration
		wantSplice bool
	}{
		{"download trickle", func(c *tls.Conn) { _ = trickle(c) }, func(c *tls.Conn, _ *net.TCPConn) error {
			got, err := io.ReadAll(c)
			if string(got) != "tttttttt" {
				return fmt.Errorf("read %q: %v", got, err)
			}
			return nil
		}, "server closed", 3 * idle, 10 * idle, true},
		{"upload trickle", func(c *tls.Conn) {
			got, _ := io.ReadAll(io.LimitReader(c, 8))
			_, _ = c.Write(got)
		}, func(c *tls.Conn, _ *net.TCPConn) error {
			if _, err := c.Write([]byte("go")); err != nil {
				return err
			}
			if err := trickle(c); err != nil {
				return err
			}
			_, err := io.ReadAll(c)
			return err
		}, "server closed", 3 * idle, 10 * idle, true},
		// The server answers once: a TLS 1.3 handshake seen from outside
		// ends with the server's first record after the client's flight.
		{"silence", func(c *tls.Conn) { _, _ = c.Write([]byte("hi")); _, _ = io.ReadAll(c) }, func(c *tls.Conn, _ *net.TCPConn) error {
			_, err := io.ReadAll(c)
			return err
		}, "idle timeout", idle, idle*5/4 + idle/2, true},
		{"client resets", func(c *tls.Conn) { _, _ = c.Write([]byte("hi")); _, _ = io.ReadAll(c) }, func(c *tls.Conn, raw *net.TCPConn) error {
			if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			_ = raw.SetLinger(0)
			return raw.Close()
		}, "client error: ", 0, 5 * idle, true},
		{"server resets", func(c *tls.Conn) {
			_, _ = c.Write([]byte("hi"))
			time.Sleep(200 * time.Millisecond)
			_ = c.NetConn().(*net.TCPConn).SetLinger(0)
		}, func(c *tls.Conn, _ *net.TCPConn) error {
			_, err := io.ReadAll(c) // the proxy passes the reset on as a close
			return err
		}, "server error: ", 0, 5 * idle, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := tcpServer(t, func(c net.Conn) {
				s := tls.Server(c, cfg)
				_ = s.SetDeadline(time.Now().Add(30 * time.Second))
				if s.Handshake() == nil {
					tc.server(s)
				}
			})
			proxyAddr, s, ev := startServer(t, Options{WatchRenegotiation: true, IdleTimeout: idle})
			raw, err := dialVia(proxyAddr, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := tc.client(c, raw.(*net.TCPConn)); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			closed := ev.waitClosed(t, 1)[0]
			if r := reason(closed); !strings.HasPrefix(r, tc.reason) {
				t.Errorf("reason %q, want %q", r, tc.reason)
			}
			if d := time.Duration(closed.DurationMS * float64(time.Millisecond)); d < tc.minDur || d > tc.maxDur {
				t.Errorf("closed after %v, want %v..%v", d, tc.minDur, tc.maxDur)
			}
			if got := scrape(t, s, "certlens_tunnels_spliced_total"); (got > 0) != tc.wantSplice {
				t.Errorf("spliced directions %v", got)
			}
		})
	}
}

func x509Pool(certs ...*pkitest.Cert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.Cert)
	}
	return p
}

// TestNoParse: with tunnel.parse off, a TLS 1.2 tunnel (watched for
// renegotiation otherwise) is spliced from the first byte, writes no
// handshake event, and still counts its bytes.
func TestNoParse(t *testing.T) {
	peertest.Require(t, "curl")
	ca := pkitest.NewCA(t, "certlens noparse CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pkitest.WritePEM(t, caFile, ca)
	addr, counts := wireServer(t, ca.NewServer(t, "127.0.0.1"), 1<<20)
	proxyAddr, s, ev := startServer(t, Options{WatchRenegotiation: true, NoParse: true})
	out, stderr, err := curl(t, proxyAddr, "-sS", "--cacert", caFile, "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{size_download}", "https://"+addr+"/")
	if err != nil || out != strconv.Itoa(1<<20) {
		t.Fatalf("curl: %q %v %s", out, err, stderr)
	}
	wire := <-counts
	closed := ev.waitClosed(t, 1)[0]
	if closed.BytesUp != wire[0] || closed.BytesDown != wire[1] {
		t.Errorf("event counted %v up, %v down; the server's wire %v", closed.BytesUp, closed.BytesDown, wire)
	}
	if hs := ev.handshakes(t); len(hs) != 0 {
		t.Errorf("%d handshake events with parsing off", len(hs))
	}
	if got := scrape(t, s, "certlens_tunnels_spliced_total"); got != 2 {
		t.Errorf("spliced directions %v, want 2", got)
	}
}

// TestAdminPprof: the profiler is on the admin server only when asked for.
func TestAdminPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := New(Options{Pprof: on}, zap.NewNop())
		for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/heap": 200, "/debug/pprof/goroutine?debug=1": 200} {
			if !on {
				want = http.StatusNotFound
			}
			rec := httptest.NewRecorder()
			s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != want {
				t.Errorf("pprof %v: GET %s = %d, want %d", on, path, rec.Code, want)
			}
		}
	}
}
