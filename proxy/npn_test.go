package proxy

import (
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// TestNPNIsNotRenegotiation: a client that negotiates NPN sends its
// NextProtocol message after ChangeCipherSpec, encrypted, before its
// Finished. Two handshake records after the client's ChangeCipherSpec are
// one handshake's end, not a renegotiation (issue 20).
func TestNPNIsNotRenegotiation(t *testing.T) {
	k := newE2E(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, TLS12: true, WWW: true,
		Extra: []string{"-nextprotoneg", "http/1.1"}})
	client := peertest.Start(t, "openssl", []string{"s_client", "-connect", addr, "-proxy", k.proxy, "-tls1_2", "-noservername",
		"-nextprotoneg", "http/1.1", "-CAfile", k.serverCAFile, "-verify_return_error", "-no-CApath", "-no-CAstore", "-ign_eof"},
		peertest.WithStdinPipe())
	if !client.WaitOutput("Next protocol: (1) http/1.1", 10*time.Second) {
		t.Fatalf("s_client negotiated no NPN:\n%s", client.Output())
	}
	_, _ = client.Stdin.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if !client.WaitOutput("HTTP/1.0 200 ok", 10*time.Second) {
		t.Fatalf("no answer through NPN:\n%s", client.Output())
	}
	client.Stdin.Close()
	_ = client.Wait(10 * time.Second)
	hs := k.ev.settle(t, addr, 1)
	if len(hs) != 1 {
		t.Fatalf("%d handshake events, want 1 (no renegotiation):\n%s", len(hs), k.ev.text())
	}
	h := hs[0]
	if h.Phase != "initial" || h.End != "finished" || h.Verdict != "ok" || findingOf(h, "cert-request-by-renegotiation") != nil {
		t.Errorf("handshake %+v", h)
	}
}
