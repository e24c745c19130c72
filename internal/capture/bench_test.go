package capture

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

var (
	benchConns  = flag.Int("bench.conns", 400, "connections in the benchmark capture (handshakes, for -bench.shape iis)")
	benchTshark = flag.Bool("bench.tshark", false, "also time `tshark -r FILE -Y tls.handshake` on the benchmark capture")
	benchKeep   = flag.String("bench.keep", "", "TestWriteBenchCapture writes the benchmark capture to this file")
	benchData   = flag.Int("bench.appdata", 256, "KiB of application data the server sends after each handshake")
	benchShape  = flag.String("bench.shape", "recorded", "recorded: the recorded transcripts in turn, each followed by -bench.appdata KiB; "+
		"iis: downloads of -bench.bulk MiB in all, then -bench.conns TLS 1.2 handshakes whose request lists 261 CAs (60 KB) and whose client sends a leaf alone, from a CA not listed")
	benchBulk = flag.Int("bench.bulk", 72, "MiB downloaded in the iis shape, in connections of at most 100 MiB (72 with 200 handshakes: a 92 MB capture, as in issue 22)")
)

// benchPrologues are the plaintext every other connection of the benchmark
// starts with (nil: TLS from the first byte).
var benchPrologues = [][]turn{nil, prologueCases[0].turns, nil, prologueCases[7].turns, nil, prologueCases[9].turns}

// benchCapture is a capture of recorded handshakes (all the transcripts,
// the 60 KB issuer list included), half of them after a STARTTLS or
// database prologue (SMTP, PostgreSQL, MySQL), each followed by
// application data from the server (256 KiB by default), as a busy server's
// capture looks:
// most bytes are bulk data, the handshakes are what matters.
var benchCapture = sync.OnceValues(func() ([]byte, error) {
	var out bytes.Buffer
	err := writeBenchCapture(&out, *benchConns)
	return out.Bytes(), err
})

func writeBenchCapture(out io.Writer, conns int) error {
	paths, _ := filepath.Glob(filepath.Join(transcriptDir, "*.transcript"))
	var trs []*transcript.Transcript
	for _, p := range paths {
		tr, err := transcript.ReadFile(p)
		if err != nil {
			return err
		}
		trs = append(trs, tr)
	}
	appData := appDataRecords(*benchData << 10)
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	cs := make([]captureConn, conns)
	for i := range cs {
		tr := trs[i%len(trs)]
		if p := benchPrologues[i%len(benchPrologues)]; p != nil {
			// STARTTLS and database connections: TLS after plaintext.
			var pro []transcript.Chunk
			for _, t := range p {
				dir := transcript.ServerToClient
				if t.client {
					dir = transcript.ClientToServer
				}
				pro = append(pro, transcript.Chunk{Dir: dir, Data: []byte(t.data)})
			}
			tr = &transcript.Transcript{Meta: tr.Meta, Chunks: append(pro, tr.Chunks...)}
		}
		cs[i] = captureConn{tr: tr, download: appData}
	}
	return writeCapture(out, start, cs)
}

// appDataRecords is n bytes (rounded down to whole records) of full-size
// TLS application-data records, as a server's download sends them.
func appDataRecords(n int) []byte {
	return bytes.Repeat(append([]byte{23, 3, 3, 0x40, 0x00}, make([]byte, 16384)...), n/16384)
}

// captureConn is one connection of a benchmark capture: a recorded
// handshake, then download from the server.
type captureConn struct {
	tr       *transcript.Transcript
	download []byte
}

// writeCapture writes the connections one after the other, 50 ms apart,
// each from its own client port, streaming: a capture of any size takes
// the memory of one segment.
func writeCapture(out io.Writer, start time.Time, conns []captureConn) error {
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, 1); err != nil {
		return err
	}
	for i, c := range conns {
		tr := *c.tr
		tr.Chunks = append([]transcript.Chunk(nil), tr.Chunks...)
		if len(c.download) > 0 {
			tr.Chunks = append(tr.Chunks, transcript.Chunk{Dir: transcript.ServerToClient, Data: c.download})
		}
		tr.Meta.Date = start.Add(time.Duration(i) * 50 * time.Millisecond)
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tr.WritePcap(pw)) }()
		r, err := pcapgo.NewReader(pr)
		if err != nil {
			return err
		}
		// Each connection its own client port: patch the TCP ports
		// (Ethernet 14 + IPv4 20 bytes in). Checksums are not checked by
		// analyze nor, by default, by tshark.
		port := uint16(20000 + i%40000)
		for {
			data, ci, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				pr.CloseWithError(err)
				return err
			}
			if binary.BigEndian.Uint16(data[34:]) == 40000 {
				binary.BigEndian.PutUint16(data[34:], port)
			} else {
				binary.BigEndian.PutUint16(data[36:], port)
			}
			if err := w.WritePacket(ci, data); err != nil {
				pr.CloseWithError(err)
				return err
			}
		}
	}
	return nil
}

// writeIISCapture writes the capture issue 22 describes: bulk downloads
// (bulk bytes in all, in connections of at most 100 MiB, each after a
// recorded mutual-TLS handshake), then handshakes with an IIS-sized issuer
// list (261 CAs, 60 KB) that the client answers with a leaf alone, from a
// CA the list does not name: every one a near-miss search through the
// whole list.
func writeIISCapture(tb testing.TB, out io.Writer, bulk, handshakes int) error {
	recorded, err := transcript.ReadFile(filepath.Join(transcriptDir, "tls12-3ca-curl-cert.transcript"))
	if err != nil {
		return err
	}
	leafOnly := leafOnlyTranscript(tb)
	var cs []captureConn
	for bulk > 0 {
		n := min(bulk, 100<<20)
		cs = append(cs, captureConn{tr: recorded, download: appDataRecords(n)})
		bulk -= n
	}
	for range handshakes {
		cs = append(cs, captureConn{tr: leafOnly})
	}
	return writeCapture(out, time.Now().UTC().Truncate(time.Second), cs)
}

// leafOnlyTranscript records, through a relay, one TLS 1.2 connection to a
// Go server that asks for a client certificate naming 260 long-named CAs
// and the client's own CA, and a client that sends a leaf from another CA
// without its chain; then a request and a short answer.
var leafOnlyTranscript = func() func(testing.TB) *transcript.Transcript {
	var (
		once sync.Once
		tr   *transcript.Transcript
	)
	return func(tb testing.TB) *transcript.Transcript {
		once.Do(func() { tr = recordLeafOnly(tb) })
		if tr == nil {
			tb.Fatal("the leaf-only connection was not recorded")
		}
		return tr
	}
}()

func recordLeafOnly(tb testing.TB) *transcript.Transcript {
	serverCA, clientCA := pkitest.NewCA(tb, "certlens bench server CA"), pkitest.NewCA(tb, "certlens bench client CA")
	pool := x509.NewCertPool()
	for _, ca := range append(pkitest.ManyCAs(tb, 260), clientCA) {
		pool.AddCert(ca.Cert)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCA.NewServer(tb, "127.0.0.1").TLSCertificate()},
		ClientAuth: tls.RequestClientCert, ClientCAs: pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err == nil {
			_, _ = c.Write(append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n"), make([]byte, 1024)...))
		}
	}()
	rec, err := transcript.NewRecorder(ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	leaf := pkitest.NewCA(tb, "certlens bench unlisted CA").NewClient(tb, "certlens bench leaf-only client").TLSCertificate()
	leaf.Certificate = leaf.Certificate[:1]
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	c, err := tls.Dial("tcp", rec.Addr(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &leaf, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, c)
	c.Close()
	if err := rec.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		tb.Fatal(err)
	}
	trs := rec.Transcripts()
	if len(trs) != 1 || len(trs[0].Chunks) == 0 {
		tb.Fatalf("recorded %d connections", len(trs))
	}
	return trs[0]
}

// TestWriteBenchCapture writes a benchmark capture of -bench.conns
// connections (-bench.shape) to -bench.keep, streaming, for measuring
// analyze and tshark on big files by hand. Without -bench.keep it writes a
// small one to a temp dir; either way analyze must find each connection in
// it, so the benchmark's input stays what it claims to be.
func TestWriteBenchCapture(t *testing.T) {
	path, conns, bulk := *benchKeep, *benchConns, *benchBulk<<20
	if path == "" {
		path, conns, bulk = filepath.Join(t.TempDir(), "bench.pcap"), 24, 1<<20
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	streamsWritten := conns
	switch *benchShape {
	case "recorded":
		err = writeBenchCapture(bw, conns)
	case "iis":
		err = writeIISCapture(t, bw, bulk, conns)
		streamsWritten += (bulk + 100<<20 - 1) / (100 << 20)
	default:
		t.Fatalf("-bench.shape %q: want recorded or iis", *benchShape)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	handshakes, streams := 0, map[int]bool{}
	if _, err := Analyze(bufio.NewReaderSize(f, 1<<20), Options{WatchRenegotiation: true}, func(e Event) {
		if e.Handshake != nil {
			handshakes++
		}
		streams[e.Stream] = true
	}); err != nil {
		t.Fatal(err)
	}
	// Each connection a stream of its own (its client port patched), at
	// least one handshake in each.
	if len(streams) != streamsWritten || handshakes < streamsWritten {
		t.Errorf("%s: %d streams and %d handshakes, want %d connections", path, len(streams), handshakes, streamsWritten)
	}
}

// BenchmarkAnalyze measures analyze's throughput in MB of capture per
// second. With -bench.tshark it also times tshark reading the same file
// with the display filter tls.handshake and reports its MB/s as a metric:
//
//	go test ./internal/capture -run - -bench Analyze -bench.tshark
func BenchmarkAnalyze(b *testing.B) {
	data, err := benchCapture()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var hs, apps int
	for b.Loop() {
		hs, apps = 0, 0
		if _, err := Analyze(bytes.NewReader(data), Options{WatchRenegotiation: true}, func(e Event) {
			if e.Handshake != nil {
				hs++
				if e.Handshake.AppProtocol != "" {
					apps++
				}
			}
		}); err != nil {
			b.Fatal(err)
		}
	}
	if hs < *benchConns || apps < *benchConns/2 {
		b.Fatalf("%d handshakes in %d connections, %d after a prologue", hs, *benchConns, apps)
	}
	if *benchTshark {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "bench.pcap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		bin, err := exec.LookPath("tshark")
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		out, err := exec.Command(bin, "-r", path, "-Y", "tls.handshake").Output()
		if err != nil {
			b.Fatalf("tshark: %v", err)
		}
		secs := time.Since(t0).Seconds()
		b.ReportMetric(float64(len(data))/1e6/secs, "tshark-MB/s")
		if n := strings.Count(string(out), "\n"); n < *benchConns {
			b.Errorf("tshark printed %d lines", n)
		}
	}
}

// BenchmarkAnalyzeIIS measures analyze on the capture issue 22 describes
// (-bench.shape iis's: -bench.bulk MiB of downloads, then -bench.conns
// handshakes with a 261-CA list answered by an unlisted leaf alone), in MB
// of capture per second, and checks that every handshake was diagnosed.
func BenchmarkAnalyzeIIS(b *testing.B) {
	var data bytes.Buffer
	if err := writeIISCapture(b, &data, *benchBulk<<20, *benchConns); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(data.Len()))
	b.ReportAllocs()
	for b.Loop() {
		var near int
		if _, err := Analyze(bytes.NewReader(data.Bytes()), Options{WatchRenegotiation: true}, func(e Event) {
			if h := e.Handshake; h != nil && h.CertRequest != nil && h.CertRequest.IssuerCount == 261 {
				for _, f := range h.Findings {
					if f.ID == "client-cert-issuer-not-listed" {
						near++
					}
				}
			}
		}); err != nil {
			b.Fatal(err)
		}
		if near != *benchConns {
			b.Fatalf("%d of %d handshakes found the leaf's issuer not listed", near, *benchConns)
		}
	}
}
