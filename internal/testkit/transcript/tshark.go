package transcript

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// DNamesSummary is Wireshark's view of the issuer list of one
// CertificateRequest, for cross-checking certlens's parser.
type DNamesSummary struct {
	// Frame is the frame Wireshark shows the CertificateRequest in (the last
	// one of its reassembly).
	Frame int
	// Stream is Wireshark's tcp.stream, Port the frame's TCP source port:
	// the server's, which tells the servers of one capture apart.
	Stream, Port int
	// DNamesLen is tls.handshake.dnames_len: the certificate_authorities
	// vector length (sum of 2+len(DN)).
	DNamesLen int
	// Count is the number of DNs in the vector. tshark lists at most 100 DN
	// lengths and marks the rest "Tree view truncated", so this is counted
	// by walking the length prefixes of the vector bytes tshark reassembled
	// (tls.handshake.dnames_raw).
	Count int
	// Vector is the certificate_authorities vector as on the wire
	// (tls.handshake.dnames_raw), length prefixes included.
	Vector []byte
	// DNameLens is tls.handshake.dname_len as tshark lists it: at most the
	// first 100 DNs.
	DNameLens []int
	// Truncated reports whether tshark cut its list short.
	Truncated bool
}

// TsharkDNames returns, for each CertificateRequest tshark decodes in the
// capture at pcapPath, its issuer list summary. It skips the test when
// tshark is missing (fails under CERTLENS_REQUIRE_PEERS=1).
func TsharkDNames(tb testing.TB, pcapPath string) []DNamesSummary {
	tb.Helper()
	return tsharkDNames(tb, pcapPath, "")
}

// TsharkDNamesArgs is TsharkDNames with more tshark options, such as
// "-d", "tcp.port==5432,pgsql" for TLS that tshark does not find by port.
func TsharkDNamesArgs(tb testing.TB, pcapPath string, args ...string) []DNamesSummary {
	tb.Helper()
	return tsharkDNames(tb, pcapPath, "", args...)
}

// TsharkDNamesKeylog is TsharkDNames with an NSS key log, so that TLS 1.3 and
// renegotiation CertificateRequests are decrypted and counted too.
func TsharkDNamesKeylog(tb testing.TB, pcapPath, keylogPath string) []DNamesSummary {
	tb.Helper()
	return tsharkDNames(tb, pcapPath, keylogPath)
}

func tsharkDNames(tb testing.TB, pcapPath, keylogPath string, extra ...string) []DNamesSummary {
	tb.Helper()
	bin := peertest.Require(tb, "tshark")
	// gui.max_tree_depth: tshark 4.0 reports a dissector bug on large lists
	// without it. JSON with raw bytes (-x) is the only output that carries
	// the DNs tshark leaves out of its tree; duplicate keys would hide
	// repeated fields from encoding/json.
	args := []string{"-o", "gui.max_tree_depth:5000", "-r", pcapPath,
		"-Y", "tls.handshake.type == 13", "-T", "json", "-x", "--no-duplicate-keys"}
	if keylogPath != "" {
		args = append(args, "-o", "tls.keylog_file:"+keylogPath)
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("tshark %v: %v", args, err)
	}
	sums, err := parseTsharkDNames(out)
	if err != nil {
		tb.Fatalf("tshark JSON for %s: %v", pcapPath, err)
	}
	return sums
}

func parseTsharkDNames(out []byte) ([]DNamesSummary, error) {
	var packets []struct {
		Source struct {
			Layers map[string]any `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &packets); err != nil {
		return nil, err
	}
	var sums []DNamesSummary
	for _, p := range packets {
		frame, stream, port := 0, 0, 0
		if f, ok := p.Source.Layers["frame"].(map[string]any); ok {
			frame, _ = strconv.Atoi(str(f["frame.number"]))
		}
		if t, ok := p.Source.Layers["tcp"].(map[string]any); ok {
			stream, _ = strconv.Atoi(str(t["tcp.stream"]))
			port, _ = strconv.Atoi(str(t["tcp.srcport"]))
		}
		var walkErr error
		walk(p.Source.Layers, func(m map[string]any) {
			if str(m["tls.handshake.type"]) != "13" || walkErr != nil {
				return
			}
			s, err := summarize(m)
			if err != nil {
				walkErr = fmt.Errorf("frame %d: %w", frame, err)
				return
			}
			s.Frame, s.Stream, s.Port = frame, stream, port
			sums = append(sums, s)
		})
		if walkErr != nil {
			return nil, walkErr
		}
	}
	return sums, nil
}

// summarize reads one CertificateRequest's fields. In TLS 1.3 the list sits
// in the certificate_authorities extension, deeper in the tree, so the
// fields are looked up anywhere below the message.
func summarize(msg map[string]any) (DNamesSummary, error) {
	var s DNamesSummary
	var raw string
	walk(msg, func(m map[string]any) {
		if v, ok := m["tls.handshake.dnames_len"]; ok {
			s.DNamesLen, _ = strconv.Atoi(str(v))
		}
		if v, ok := m["tls.handshake.dnames_raw"].([]any); ok && len(v) > 0 {
			raw = str(v[0])
		}
		if v, ok := m["tls.handshake.dname_len"]; ok {
			for _, x := range list(v) {
				n, _ := strconv.Atoi(str(x))
				s.DNameLens = append(s.DNameLens, n)
			}
		}
		if _, ok := m["tls.handshake.dnames_truncated"]; ok {
			s.Truncated = true
		}
	})
	vec, err := hex.DecodeString(raw)
	if err != nil {
		return s, fmt.Errorf("dnames_raw: %w", err)
	}
	s.Vector = vec
	if len(vec) != s.DNamesLen {
		return s, fmt.Errorf("dnames_raw holds %d bytes, dnames_len says %d", len(vec), s.DNamesLen)
	}
	for len(vec) > 0 {
		if len(vec) < 2 || len(vec) < 2+int(vec[0])<<8|int(vec[1]) {
			return s, fmt.Errorf("DN %d overruns the list", s.Count+1)
		}
		n := int(vec[0])<<8 | int(vec[1])
		if s.Count < len(s.DNameLens) && s.DNameLens[s.Count] != n {
			return s, fmt.Errorf("DN %d is %d bytes, tshark lists %d", s.Count+1, n, s.DNameLens[s.Count])
		}
		vec = vec[2+n:]
		s.Count++
	}
	return s, nil
}

// walk calls fn on every JSON object at or below v.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, c := range x {
			walk(c, fn)
		}
	case []any:
		for _, c := range x {
			walk(c, fn)
		}
	}
}

// list returns v as a list: tshark writes a repeated field as an array and a
// single one as a bare value.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// ClientCertSummary is Wireshark's view of the Certificate message a client
// sent in answer to a CertificateRequest, for cross-checking
// client_cert.sent.
type ClientCertSummary struct {
	Frame, Stream int
	// Port is the server's port (the frame's TCP destination port).
	Port int
	// CertificatesLen is tls.handshake.certificates_length: 0 is the empty
	// Certificate, the wire evidence that no certificate was sent.
	CertificatesLen int
}

// Sent reports whether the message carried a certificate.
func (s ClientCertSummary) Sent() bool { return s.CertificatesLen > 0 }

// TsharkClientCerts returns, in capture order, every client Certificate
// message tshark decodes in the capture at pcapPath: a Certificate sent, in
// a TCP stream where a CertificateRequest came first, towards the port that
// sent the request. Encrypted handshakes (TLS 1.3, renegotiation) show
// neither and are absent. extra are more tshark options ("-d" ...).
func TsharkClientCerts(tb testing.TB, pcapPath string, extra ...string) []ClientCertSummary {
	tb.Helper()
	bin := peertest.Require(tb, "tshark")
	args := []string{"-o", "gui.max_tree_depth:5000", "-r", pcapPath,
		"-Y", "tls.handshake.type == 11 || tls.handshake.type == 13",
		"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
		"-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport",
		"-e", "tls.handshake.type", "-e", "tls.handshake.certificates_length"}
	args = append(args, extra...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		tb.Fatalf("tshark %v: %v", args, err)
	}
	sums, err := parseTsharkClientCerts(string(out))
	if err != nil {
		tb.Fatalf("tshark fields for %s: %v", pcapPath, err)
	}
	return sums
}

func parseTsharkClientCerts(out string) ([]ClientCertSummary, error) {
	serverPort := map[int]int{} // tcp.stream -> the port that sent a CertificateRequest
	var sums []ClientCertSummary
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("line %q: %d fields, want 6", line, len(f))
		}
		var n [4]int
		for i := range n {
			v, err := strconv.Atoi(f[i])
			if err != nil {
				return nil, fmt.Errorf("line %q: field %d: %w", line, i+1, err)
			}
			n[i] = v
		}
		frame, stream, src, dst := n[0], n[1], n[2], n[3]
		types := strings.Split(f[4], ",")
		if slices.Contains(types, "13") {
			serverPort[stream] = src
		}
		if !slices.Contains(types, "11") || serverPort[stream] != dst || f[5] == "" {
			continue
		}
		// A client sends one Certificate per flight; its length is the
		// last value when the frame holds more than one record.
		lens := strings.Split(f[5], ",")
		l, err := strconv.Atoi(lens[len(lens)-1])
		if err != nil {
			return nil, fmt.Errorf("frame %d: certificates_length %q: %w", frame, f[5], err)
		}
		sums = append(sums, ClientCertSummary{Frame: frame, Stream: stream, Port: dst, CertificatesLen: l})
	}
	return sums, nil
}
