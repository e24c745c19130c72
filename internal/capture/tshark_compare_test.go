package capture

import (
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// tsharkAtLeast reports whether the installed tshark is at least
// major.minor. Wireshark 4.2 changed how a SYN after a FIN or RST with the
// old sequence number is numbered; certlens follows the newer rule.
func tsharkAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	v := peertest.Version(t, "tshark")
	m := regexp.MustCompile(`(\d+)\.(\d+)\.\d+`).FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("tshark version %q", v)
	}
	ma, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return ma > major || ma == major && mi >= minor
}

// tsharkStreams returns tshark's tcp.stream of every TCP frame of a
// capture, by frame number.
func tsharkStreams(t *testing.T, path string, extra ...string) map[int]int {
	t.Helper()
	args := append([]string{"-n", "-r", path, "-Y", "tcp", "-T", "fields", "-e", "frame.number", "-e", "tcp.stream"}, extra...)
	out, err := exec.Command(peertest.Require(t, "tshark"), args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	streams := map[int]int{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// A frame carrying TCP twice (ICMP errors quoting a header) lists
		// both streams; the first is the frame's own.
		fr, err1 := strconv.Atoi(f[0])
		st, err2 := strconv.Atoi(strings.Split(f[1], ",")[0])
		if err1 != nil || err2 != nil {
			t.Fatalf("tshark line %q", line)
		}
		streams[fr] = st
	}
	return streams
}

// matchTshark checks analyze's events of a capture against what tshark
// decodes from it: the same TCP streams (pcap.stream is tcp.stream), and
// for every CertificateRequest and client Certificate tshark shows, a
// handshake naming the same frame and stream, with the issuer list's
// dnames_len and count and whether a certificate was sent. extra are
// tshark options that make it dissect TLS where it would not by port
// ("-d", "tcp.port==N,tls"). It returns the number of CertificateRequests
// compared.
func matchTshark(t *testing.T, path string, evs []Event, st Stats, extra ...string) int {
	t.Helper()
	streams := tsharkStreams(t, path, extra...)
	want := map[int]bool{}
	for _, s := range streams {
		want[s] = true
	}
	got := map[int]bool{}
	for _, e := range evs {
		if e.Closed != nil {
			got[e.Stream] = true
			if e.Closed.PCAP == nil || e.Closed.PCAP.Stream != e.Stream {
				t.Errorf("closed event of stream %d has pcap %+v", e.Stream, e.Closed.PCAP)
			}
		}
	}
	if st.Streams != len(want) || !mapsEqual(got, want) {
		t.Errorf("analyze numbers %d streams %v, tshark %d %v", st.Streams, keys(got), len(want), keys(want))
	}

	type cr struct{ frame, stream, bytes, count int }
	type cc struct {
		frame, stream int
		sent          bool
	}
	var gotCR []cr
	var gotCC []cc
	for _, e := range evs {
		h := e.Handshake
		if h == nil || h.PCAP == nil || h.PCAP.Frames == nil {
			continue
		}
		if h.PCAP.Stream != e.Stream {
			t.Errorf("handshake pcap.stream %d in stream %d", h.PCAP.Stream, e.Stream)
		}
		if f := h.PCAP.Frames.CertRequest; f > 0 && h.CertRequest != nil {
			gotCR = append(gotCR, cr{f, e.Stream, h.CertRequest.IssuerBytes, h.CertRequest.IssuerCount})
			if streams[f] != e.Stream {
				t.Errorf("CertificateRequest in frame %d, stream %d: tshark has the frame in stream %d", f, e.Stream, streams[f])
			}
		}
		if f := h.PCAP.Frames.ClientCert; f > 0 && h.ClientCert != nil {
			gotCC = append(gotCC, cc{f, e.Stream, h.ClientCert.Sent})
		}
	}
	// Events come as handshakes end, tshark's lines in frame order.
	slices.SortFunc(gotCR, func(a, b cr) int { return a.frame - b.frame })
	slices.SortFunc(gotCC, func(a, b cc) int { return a.frame - b.frame })
	var wantCR []cr
	for _, s := range transcript.TsharkDNamesArgs(t, path, extra...) {
		wantCR = append(wantCR, cr{s.Frame, s.Stream, s.DNamesLen, s.Count})
	}
	var wantCC []cc
	for _, s := range transcript.TsharkClientCerts(t, path, extra...) {
		wantCC = append(wantCC, cc{s.Frame, s.Stream, s.Sent()})
	}
	if !slices.Equal(gotCR, wantCR) {
		t.Errorf("CertificateRequests (frame, stream, dnames_len, count):\nanalyze %v\ntshark  %v", gotCR, wantCR)
	}
	if !slices.Equal(gotCC, wantCC) {
		t.Errorf("client Certificates (frame, stream, sent):\nanalyze %v\ntshark  %v", gotCC, wantCC)
	}
	return len(wantCR)
}

func mapsEqual(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
