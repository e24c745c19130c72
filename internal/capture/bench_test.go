package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/certlens/certlens/internal/transcript"
)

var (
	benchConns  = flag.Int("bench.conns", 400, "connections in the benchmark capture")
	benchTshark = flag.Bool("bench.tshark", false, "also time `tshark -r FILE -Y tls.handshake` on the benchmark capture")
	benchKeep   = flag.String("bench.keep", "", "TestWriteBenchCapture writes the benchmark capture to this file")
	benchData   = flag.Int("bench.appdata", 256, "KiB of application data the server sends after each handshake")
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
	appData := bytes.Repeat(append([]byte{23, 3, 3, 0x40, 0x00}, make([]byte, 16384)...), *benchData/16)
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, 1); err != nil {
		return err
	}
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i := range conns {
		tr := *trs[i%len(trs)]
		tr.Chunks = append([]transcript.Chunk(nil), tr.Chunks...)
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
			tr.Chunks = append(pro, tr.Chunks...)
		}
		if len(appData) > 0 {
			tr.Chunks = append(tr.Chunks, transcript.Chunk{Dir: transcript.ServerToClient, Data: appData})
		}
		tr.Meta.Date = start.Add(time.Duration(i) * 50 * time.Millisecond)
		var one bytes.Buffer
		if err := tr.WritePcap(&one); err != nil {
			return err
		}
		r, err := pcapgo.NewReader(&one)
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
				return err
			}
			if binary.BigEndian.Uint16(data[34:]) == 40000 {
				binary.BigEndian.PutUint16(data[34:], port)
			} else {
				binary.BigEndian.PutUint16(data[36:], port)
			}
			if err := w.WritePacket(ci, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestWriteBenchCapture writes a benchmark capture of -bench.conns
// connections to -bench.keep, streaming, for measuring analyze and tshark
// on big files by hand. Without -bench.keep it writes a small one to a
// temp dir; either way analyze must find each connection in it, so the
// benchmark's input stays what it claims to be.
func TestWriteBenchCapture(t *testing.T) {
	path, conns := *benchKeep, *benchConns
	if path == "" {
		path, conns = filepath.Join(t.TempDir(), "bench.pcap"), 24
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := writeBenchCapture(bw, conns); err != nil {
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
	if len(streams) != conns || handshakes < conns {
		t.Errorf("%s: %d streams and %d handshakes, want %d connections", path, len(streams), handshakes, conns)
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
