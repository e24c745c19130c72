package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/keylog"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// benchServer is a TLS server that, per connection, completes the handshake
// and then streams n bytes when asked with an 8-byte count.
func benchServer(b *testing.B, mutual bool) (addr string, roots *x509.CertPool, client tls.Certificate) {
	ca := pkitest.NewCA(b, "certlens bench CA")
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.NewServer(b, "127.0.0.1").TLSCertificate()}}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(ca.Cert)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		buf := make([]byte, 256<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req [8]byte
				if _, err := io.ReadFull(c, req[:]); err != nil {
					return
				}
				n := int64(binary.BigEndian.Uint64(req[:]))
				for n > 0 {
					k := min(n, int64(len(buf)))
					if _, err := c.Write(buf[:k]); err != nil {
						return
					}
					n -= k
				}
			}()
		}
	}()
	roots = x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return ln.Addr().String(), roots, ca.NewClient(b, "bench client").TLSCertificate()
}

// dialVia opens a TCP connection to target, through the proxy when proxyAddr is set.
func dialVia(proxyAddr, target string) (net.Conn, error) {
	if proxyAddr == "" {
		return net.Dial("tcp", target)
	}
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("CONNECT: %v %v", resp, err)
	}
	return c, nil
}

func benchProxy(b *testing.B, dec DecryptOptions) string {
	s := New(Options{AllowPort: func(int) bool { return true }, IdleTimeout: time.Minute, WatchRenegotiation: true, Decrypt: dec}, zap.NewNop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// BenchmarkHandshake is one mutual-TLS handshake per op, direct and through
// certlens: the difference is what the proxy adds.
func BenchmarkHandshake(b *testing.B) {
	addr, roots, cert := benchServer(b, true)
	for _, via := range []string{"direct", "certlens", "certlens+keylog"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			b.Run(fmt.Sprintf("%s/%s", via, tls.VersionName(v)), func(b *testing.B) {
				proxyAddr, keys := benchVia(b, via)
				cfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v, ServerName: "127.0.0.1", KeyLogWriter: keys}
				b.ReportAllocs()
				for b.Loop() {
					c, err := dialVia(proxyAddr, addr)
					if err != nil {
						b.Fatal(err)
					}
					tc := tls.Client(c, cfg)
					if err := tc.Handshake(); err != nil {
						b.Fatal(err)
					}
					tc.Close()
				}
			})
		}
	}
}

// BenchmarkThroughput streams 64 MiB per op over TLS, direct and through certlens.
func BenchmarkThroughput(b *testing.B) {
	const size = 64 << 20
	addr, roots, cert := benchServer(b, false)
	for _, via := range []string{"direct", "certlens", "certlens+keylog"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			b.Run(fmt.Sprintf("%s/%s", via, tls.VersionName(v)), func(b *testing.B) {
				proxyAddr, keys := benchVia(b, via)
				cfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v, ServerName: "127.0.0.1", KeyLogWriter: keys}
				buf := make([]byte, 256<<10)
				b.SetBytes(size)
				for b.Loop() {
					c, err := dialVia(proxyAddr, addr)
					if err != nil {
						b.Fatal(err)
					}
					tc := tls.Client(c, cfg)
					var req [8]byte
					binary.BigEndian.PutUint64(req[:], size)
					if _, err := tc.Write(req[:]); err != nil {
						b.Fatal(err)
					}
					if n, err := io.CopyBuffer(io.Discard, tc, buf); err != nil && n != size {
						b.Fatalf("read %d: %v", n, err)
					}
					tc.Close()
				}
			})
		}
	}
}

// benchVia starts the proxy a variant goes through ("" for direct) and,
// for "certlens+keylog", a key log the client writes straight into the
// proxy's secret store.
func benchVia(b *testing.B, via string) (proxyAddr string, keys io.Writer) {
	switch via {
	case "certlens":
		return benchProxy(b, DecryptOptions{}), nil
	case "certlens+keylog":
		store := keylog.NewStore(0)
		return benchProxy(b, DecryptOptions{Secrets: store, Wait: time.Second}), storeWriter{store}
	}
	return "", nil
}

// storeWriter adds the lines crypto/tls's KeyLogWriter writes (one per call).
type storeWriter struct{ s *keylog.Store }

func (w storeWriter) Write(p []byte) (int, error) {
	e, ok, err := handshake.ParseKeyLogLine(strings.TrimSuffix(string(p), "\n"))
	if ok && err == nil {
		w.s.Add(e)
	}
	return len(p), err
}
