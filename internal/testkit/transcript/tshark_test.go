package transcript

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

func TestParseTsharkClientCerts(t *testing.T) {
	// Fields: frame, tcp.stream, srcport, dstport, handshake types,
	// certificates_length; as tshark -T fields -E occurrence=a prints them.
	tests := []struct {
		name string
		out  string
		want string
	}{
		{"server flight, then the client's empty certificate",
			"4\t0\t8443\t50000\t2,11,12,13,14\t478\n6\t0\t50000\t8443\t11,16\t0\n",
			"[{6 0 8443 0}]"},
		{"client certificate in a stream with a request",
			"4\t1\t8443\t50002\t2,11,12,13,14\t478\n6\t1\t50002\t8443\t11,16,15\t431\n",
			"[{6 1 8443 431}]"},
		{"server certificate without a request is not a client's",
			"4\t2\t8443\t50004\t2,11,12,14\t478\n",
			"[]"},
		{"streams are told apart",
			"4\t0\t8443\t50000\t2,11,12,13,14\t478\n5\t1\t9443\t50001\t2,11,12,14\t400\n6\t1\t50001\t9443\t11\t300\n7\t0\t50000\t8443\t11,16\t0\n",
			"[{7 0 8443 0}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTsharkClientCerts(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tt.want {
				t.Errorf("got %s, want %s", s, tt.want)
			}
		})
	}
	if _, err := parseTsharkClientCerts("4\t0\n"); err == nil {
		t.Error("a short line parsed")
	}
}

// TestTsharkOnLoopbackCapture checks both tshark readers against a live
// capture of openssl, the way the end-to-end tests use them.
func TestTsharkOnLoopbackCapture(t *testing.T) {
	root := pkitest.NewCA(t, "tshark test root")
	other := pkitest.NewCA(t, "tshark test other CA")
	server := root.NewServer(t, "localhost")
	client := root.NewClient(t, "tshark test client")
	cas := []*pkitest.Cert{other, root}
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: server, ClientCAs: cas, Verify: 1, TLS12: true, WWW: true})
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)

	capture := peertest.CaptureLoopback(t, port)
	for _, c := range []*pkitest.Cert{client, nil} {
		if out, err := peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{Connect: addr, Cert: c, TLS12: true}); err != nil {
			t.Fatalf("s_client: %v\n%s", err, out)
		}
	}
	pcap := capture.Stop()

	wantLen := 0
	for _, ca := range cas {
		wantLen += 2 + len(ca.Cert.RawSubject)
	}
	requests := TsharkDNames(t, pcap)
	if len(requests) != 2 {
		t.Fatalf("%d CertificateRequests, want 2: %+v", len(requests), requests)
	}
	for _, r := range requests {
		if r.Port != port || r.Count != 2 || r.DNamesLen != wantLen {
			t.Errorf("request %+v, want port %d, 2 DNs, %d bytes", r, port, wantLen)
		}
	}
	certs := TsharkClientCerts(t, pcap)
	if len(certs) != 2 || !certs[0].Sent() || certs[1].Sent() || certs[0].Port != port {
		t.Errorf("client certificates %+v, want one sent then one empty, to port %d", certs, port)
	}
	if len(certs) == 2 && (certs[0].Stream != requests[0].Stream || certs[1].Stream != requests[1].Stream) {
		t.Errorf("certificates in streams %d, %d; requests in %d, %d", certs[0].Stream, certs[1].Stream, requests[0].Stream, requests[1].Stream)
	}
}
