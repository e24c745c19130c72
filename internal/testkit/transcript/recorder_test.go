package transcript

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// tapConn keeps a copy of what one end wrote and read on the wire.
type tapConn struct {
	net.Conn
	mu           sync.Mutex
	wrote, readb bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.readb.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.wrote.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

type goSession struct {
	tr        *Transcript
	client    *tapConn
	server    *tapConn
	keylog    string
	clientCAs []*pkitest.Cert
}

// recordGoSession runs a crypto/tls client and server through a Recorder:
// the server asks for a certificate from clientCAs (the last one issued the
// client's), the client sends "ping", the server answers "pong".
func recordGoSession(t *testing.T, version uint16, clientCAs []*pkitest.Cert) goSession {
	t.Helper()
	ca := pkitest.NewCA(t, "transcript test CA")
	clientCAs = append(clientCAs, ca)
	srvCert := ca.NewServer(t, "localhost").TLSCertificate()
	cliCert := ca.NewClient(t, "transcript client").TLSCertificate()
	pool := x509.NewCertPool()
	for _, c := range clientCAs {
		pool.AddCert(c.Cert)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rec, err := NewRecorder(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	s := goSession{keylog: filepath.Join(t.TempDir(), "keylog"), clientCAs: clientCAs}
	serverDone := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		s.server = &tapConn{Conn: raw}
		conn := tls.Server(s.server, &tls.Config{
			Certificates: []tls.Certificate{srvCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   version, MaxVersion: version,
		})
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil {
			serverDone <- err
			return
		}
		_, err = conn.Write([]byte("pong"))
		conn.Close()
		serverDone <- err
	}()

	kl, err := os.Create(s.keylog)
	if err != nil {
		t.Fatal(err)
	}
	defer kl.Close()
	raw, err := net.Dial("tcp", rec.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s.client = &tapConn{Conn: raw}
	conn := tls.Client(s.client, &tls.Config{
		RootCAs: roots, ServerName: "localhost",
		Certificates: []tls.Certificate{cliCert},
		MinVersion:   version, MaxVersion: version,
		KeyLogWriter: kl,
	})
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(conn); err != nil || string(got) != "pong" {
		t.Fatalf("client read %q, %v", got, err)
	}
	conn.Close()
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	trs := rec.Transcripts()
	if len(trs) != 1 {
		t.Fatalf("%d transcripts, want 1", len(trs))
	}
	s.tr = trs[0]
	return s
}

func TestRecorderKeepsBothStreamsExactly(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			s := recordGoSession(t, v, nil)
			// A peer that closes early does not read the other's last
			// records (close_notify), so what it read is only a prefix.
			if c, w := s.tr.Stream(ClientToServer), s.client.wrote.Bytes(); !bytes.Equal(c, w) || !bytes.HasPrefix(c, s.server.readb.Bytes()) {
				t.Errorf("client->server stream: recorded %d bytes, client wrote %d, server read %d", len(c), len(w), s.server.readb.Len())
			}
			if c, w := s.tr.Stream(ServerToClient), s.server.wrote.Bytes(); !bytes.Equal(c, w) || !bytes.HasPrefix(c, s.client.readb.Bytes()) {
				t.Errorf("server->client stream: recorded %d bytes, server wrote %d, client read %d", len(c), len(w), s.client.readb.Len())
			}
			// The ClientHello causes everything else, so it must come first.
			if len(s.tr.Chunks) < 3 || s.tr.Chunks[0].Dir != ClientToServer || s.tr.Chunks[0].Data[0] != 0x16 {
				t.Errorf("first chunk is not the client's handshake record: %v", s.tr.Chunks[:min(1, len(s.tr.Chunks))])
			}
		})
	}
}

func TestRecorderWithoutUpstream(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	rec, err := NewRecorder(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", rec.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The relay hangs up when it cannot reach the upstream.
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Errorf("read %d bytes from a relay with no upstream", n)
	}
	c.Close()
	rec.Close()
	if trs := rec.Transcripts(); len(trs) != 1 || len(trs[0].Chunks) != 0 {
		t.Errorf("want one empty transcript, got %v", trs)
	}
}
