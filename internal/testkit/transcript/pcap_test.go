package transcript

import (
	"bytes"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestWritePcapSegments(t *testing.T) {
	tr := sample()
	var buf bytes.Buffer
	if err := tr.WritePcap(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	var streams [2]bytes.Buffer // client, server
	var next [2]uint32          // next expected seq per side
	var flags []string
	for i := 0; ; i++ {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			t.Fatalf("packet %d has no TCP layer", i)
		}
		side, other := 0, 1
		if tcp.SrcPort == 443 {
			side, other = 1, 0
		} else if tcp.SrcPort != 40000 || tcp.DstPort != 443 {
			t.Fatalf("packet %d ports %d -> %d", i, tcp.SrcPort, tcp.DstPort)
		}
		if len(tcp.Payload) > 1460 {
			t.Errorf("packet %d carries %d bytes, more than one MSS", i, len(tcp.Payload))
		}
		switch {
		case tcp.SYN:
			next[side] = tcp.Seq + 1
			flags = append(flags, "SYN")
			continue
		case tcp.FIN:
			flags = append(flags, "FIN")
		}
		if tcp.Seq != next[side] {
			t.Fatalf("packet %d seq %d, want %d", i, tcp.Seq, next[side])
		}
		if !tcp.ACK || tcp.Ack != next[other] {
			t.Fatalf("packet %d ack %v %d, want %d", i, tcp.ACK, tcp.Ack, next[other])
		}
		streams[side].Write(tcp.Payload)
		next[side] += uint32(len(tcp.Payload))
		if tcp.FIN {
			next[side]++
		}
	}
	if !slices.Equal(flags, []string{"SYN", "SYN", "FIN", "FIN"}) {
		t.Errorf("control segments %v", flags)
	}
	if !bytes.Equal(streams[0].Bytes(), tr.Stream(ClientToServer)) || !bytes.Equal(streams[1].Bytes(), tr.Stream(ServerToClient)) {
		t.Errorf("reassembled streams differ from the transcript (%d, %d bytes)", streams[0].Len(), streams[1].Len())
	}
	var again bytes.Buffer
	tr.WritePcap(&again)
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("two exports of one transcript differ")
	}
}

// tshark runs tshark on a pcap and returns its output lines.
func tshark(t *testing.T, args ...string) []string {
	t.Helper()
	bin := peertest.Require(t, "tshark")
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Fields(string(out))
}

func TestPcapDecodesAsTLS(t *testing.T) {
	peertest.Require(t, "tshark")
	tests := []struct {
		name      string
		version   uint16
		useKeylog bool
		want      string // handshake types tshark shows, in order
	}{
		// ClientHello, ServerHello, Certificate, ServerKeyExchange,
		// CertificateRequest, ServerHelloDone, then the client's flight;
		// Finished is encrypted.
		{"TLS 1.2 in clear", tls.VersionTLS12, false, "1,2,11,12,13,14,11,16,15"},
		// With the key log: EncryptedExtensions, CertificateRequest,
		// Certificate, CertificateVerify, Finished each way.
		{"TLS 1.3 decrypted with the key log", tls.VersionTLS13, true, "1,2,8,13,11,15,20,11,15,20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := recordGoSession(t, tt.version, nil)
			path := writeSessionPcap(t, s)
			args := []string{"-r", path, "-Y", "tls.handshake", "-T", "fields", "-e", "tls.handshake.type", "-E", "aggregator=,"}
			if tt.useKeylog {
				args = append(args, "-o", "tls.keylog_file:"+s.keylog)
			}
			got := strings.Join(tshark(t, args...), ",")
			if got != tt.want {
				t.Errorf("tshark handshake types %s, want %s", got, tt.want)
			}
			bad := tshark(t, "-r", path, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
				"-Y", "tcp.checksum.status != 1 || ip.checksum.status != 1 || tcp.analysis.flags")
			if len(bad) > 0 {
				t.Errorf("tshark flags checksum or TCP analysis problems: %v", bad)
			}
			if n := len(tshark(t, "-r", path, "-T", "fields", "-e", "frame.number")); n < 10 {
				t.Errorf("only %d frames", n)
			}
		})
	}
}

func writeSessionPcap(t *testing.T, s goSession) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.pcap")
	var buf bytes.Buffer
	if err := s.tr.WritePcap(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTsharkDNames(t *testing.T) {
	peertest.Require(t, "tshark")
	tests := []struct {
		name      string
		version   uint16
		many      int
		keylog    bool
		truncated bool
	}{
		// More DNs than the 100 tshark lists: the count must still be all.
		{"TLS 1.2 list of 261 DNs in four records", tls.VersionTLS12, 260, false, true},
		{"TLS 1.3 list decrypted with the key log", tls.VersionTLS13, 2, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := recordGoSession(t, tt.version, pkitest.ManyCAs(t, tt.many))
			path := writeSessionPcap(t, s)
			var sums []DNamesSummary
			if tt.keylog {
				sums = TsharkDNamesKeylog(t, path, s.keylog)
			} else {
				sums = TsharkDNames(t, path)
			}
			wantLen := 0
			for _, ca := range s.clientCAs {
				wantLen += 2 + len(ca.Cert.RawSubject)
			}
			if len(sums) != 1 {
				t.Fatalf("%d CertificateRequests, want 1: %+v", len(sums), sums)
			}
			got := sums[0]
			if got.Count != len(s.clientCAs) || got.DNamesLen != wantLen || got.Truncated != tt.truncated || got.Frame == 0 {
				t.Errorf("got %d DNs, %d bytes, truncated %v, frame %d; want %d DNs, %d bytes, truncated %v",
					got.Count, got.DNamesLen, got.Truncated, got.Frame, len(s.clientCAs), wantLen, tt.truncated)
			}
			if want := min(len(s.clientCAs), 100); len(got.DNameLens) != want {
				t.Errorf("tshark listed %d DN lengths, want %d", len(got.DNameLens), want)
			}
		})
	}
	// Without the key log a TLS 1.3 CertificateRequest stays encrypted.
	s := recordGoSession(t, tls.VersionTLS13, nil)
	if sums := TsharkDNames(t, writeSessionPcap(t, s)); len(sums) != 0 {
		t.Errorf("encrypted TLS 1.3 CertificateRequest decoded: %+v", sums)
	}
}

// TestGoldenPcapsMatch checks that the recorded transcripts still read and
// that their committed pcaps are exactly what WritePcap derives from them.
func TestGoldenPcapsMatch(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(goldenDir, "*.transcript"))
	if len(paths) == 0 {
		t.Skip("no golden transcripts in " + goldenDir)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".transcript")
		t.Run(name, func(t *testing.T) {
			tr, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Meta.Name != name || len(tr.Chunks) == 0 {
				t.Errorf("metadata name %q, %d chunks", tr.Meta.Name, len(tr.Chunks))
			}
			var buf bytes.Buffer
			if err := tr.WritePcap(&buf); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(p, ".transcript") + ".pcap")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s.pcap differs from the transcript's export; re-record", name)
			}
		})
	}
}
