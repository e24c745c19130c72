package proxy

// The TLS 1.3 "late certificate" failure as intercept mode sees it: the
// server's own answer is the evidence, so the verdict is certain.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// TestInterceptIIS24H2LateCert: a test upstream that behaves as IIS on
// Windows 11 24H2 and Server 2025 when a folder wants a certificate the
// TLS 1.3 handshake did not ask for: HTTP 500.0 with 0x80070032.
func TestInterceptIIS24H2LateCert(t *testing.T) {
	k := newIntercept(t, nil)
	const page = "<html><head><title>IIS 10.0 Detailed Error - 500.0 - Internal Server Error</title></head><body>" +
		"<h3>HTTP Error 500.0 - Internal Server Error</h3><table><tr><th>Error Code</th><td>0x80070032</td></tr></table></body></html>"
	addr := goUpstream(t, k, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, page)
	})
	status, body := k.curl(t, "https://"+addr+"/secure/")
	if status != 500 || body != page {
		t.Errorf("the browser got %d %q, want the server's page untouched", status, body)
	}
	h := k.ev.settle(t, addr, 1)[0]
	if h["tls_version"] != "TLS 1.3" || h["cert_request"] != nil || h["http_status"] != float64(500) {
		t.Errorf("version %v cert_request %v http_status %v", h["tls_version"], h["cert_request"], h["http_status"])
	}
	if h["verdict"] != "500.0" || h["verdict_certain"] != true || !slices.Contains(findingIDs(h), "tls13-late-client-cert") {
		t.Errorf("verdict %v certain %v findings %v", h["verdict"], h["verdict_certain"], findingIDs(h))
	}
	if strings.Contains(k.ev.text(), "Internal Server Error</h3>") {
		t.Error("the response body reached the log")
	}
}

// TestInterceptApacheTLS13LateCert: Apache with TLS 1.3 and a per-location
// SSLVerifyClient require asks for the certificate after the request, by
// post-handshake authentication, of clients that offer it. certlens's
// upstream client (Go's crypto/tls) offers none, so Apache answers 403
// "Cannot perform Post-Handshake Authentication" whatever the browser
// offered. A browser that offers none either (Go's client, as Chromium)
// would have got that 403 itself: 403.7, certain. curl offers it, and
// would have been asked: the refusal is certlens's own, the event says so
// (certain) and points to observe mode with a key log, and what curl would
// have got stays unknown.
func TestInterceptApacheTLS13LateCert(t *testing.T) {
	k := newIntercept(t, nil)
	addr := peertest.Apache(t, peertest.ApacheConfig{Cert: k.server, ClientCAs: []*pkitest.Cert{k.clientCA}})
	url := "https://" + addr + peertest.ApacheSecurePath
	// answered returns the handshake event that carried the 403, after n
	// handshakes to addr.
	answered := func(t *testing.T, n int) map[string]any {
		t.Helper()
		var h map[string]any
		for _, e := range k.ev.settle(t, addr, n)[n-1:] {
			if e["http_status"] == float64(403) {
				h = e
			}
		}
		if h == nil {
			t.Fatalf("no handshake event with the 403; log:\n%s", k.ev.text())
		}
		if h["tls_version"] != "TLS 1.3" || h["cert_request"] != nil || field(h, "client_hello", "post_handshake_auth") != false {
			t.Errorf("version %v cert_request %v client_hello %v", h["tls_version"], h["cert_request"], h["client_hello"])
		}
		return h
	}

	t.Run("a browser without post-handshake auth: 403.7", func(t *testing.T) {
		c := k.goClient(t, k.client, nil)
		if status, _ := get(t, c, url); status != 403 {
			t.Errorf("status %d, want Apache's 403", status)
		}
		// The connection's end, not Apache's keep-alive timeout, ends the wait.
		c.CloseIdleConnections()
		h := answered(t, 1)
		if field(h, "intercept", "browser_post_handshake_auth") != nil {
			t.Errorf("intercept %v: Go's client offered post-handshake auth?", h["intercept"])
		}
		ids := findingIDs(h)
		if h["verdict"] != "403.7" || h["verdict_certain"] != true || !slices.Contains(ids, "tls13-late-client-cert") || slices.Contains(ids, "intercept-no-post-handshake-auth") {
			t.Errorf("verdict %v certain %v findings %v", h["verdict"], h["verdict_certain"], ids)
		}
	})

	t.Run("curl offers post-handshake auth: certlens's own client was refused", func(t *testing.T) {
		before := len(k.ev.forTarget(t, "handshake", addr))
		if status, _ := k.curl(t, url); status != 403 {
			t.Errorf("status %d, want Apache's 403", status)
		}
		h := answered(t, before+1)
		if field(h, "intercept", "browser_post_handshake_auth") != true {
			t.Errorf("intercept %v: curl's offer of post-handshake auth not shown", h["intercept"])
		}
		if ids := findingIDs(h); slices.Contains(ids, "tls13-late-client-cert") {
			t.Errorf("findings %v blame the browser", ids)
		}
		f := findingOf(h, "intercept-no-post-handshake-auth")
		if f == nil || f["predicts"] != nil || !strings.Contains(fmt.Sprint(f["detail"]), "Post-Handshake Authentication") ||
			!strings.Contains(fmt.Sprint(f["remedy"]), "--decrypt-keylog") {
			t.Errorf("intercept-no-post-handshake-auth: %v", f)
		}
		if h["verdict"] != "unknown" || h["verdict_certain"] != false {
			t.Errorf("verdict %v certain %v, want unknown: what curl would have got is not known", h["verdict"], h["verdict_certain"])
		}
		verdictIs(t, k.ev.closedOf(t, h), "unknown", false)
	})
}

// TestInterceptIssuerListOver64KiB: a CertificateRequest over the 64 KiB
// crypto/tls accepts (282 CAs) fails certlens's upstream handshake, and the
// event still shows the whole list, read from the wire.
func TestInterceptIssuerListOver64KiB(t *testing.T) {
	k := newIntercept(t, nil)
	cas := append(pkitest.ManyCAs(t, 281), k.clientCA)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: k.server, ClientCAs: cas, Verify: 1, WWW: true, TLS12: true})
	if status, _ := k.curl(t, "https://"+addr+"/"); status != http.StatusBadGateway {
		t.Errorf("status %d, want 502", status)
	}
	h := k.ev.settle(t, addr, 1)[0]
	if field(h, "cert_request", "issuer_count") != float64(len(cas)) || field(h, "cert_request", "issuer_bytes") != float64(pkitest.IssuerListSize(cas)) {
		t.Errorf("cert_request %v, want %d DNs, %d bytes", h["cert_request"], len(cas), pkitest.IssuerListSize(cas))
	}
	// Go's client refuses the message with a fatal alert of its own: a
	// failed handshake, seen on the wire, not a client that left to pick.
	if ids := findingIDs(h); !slices.Contains(ids, "issuer-list-too-large") || slices.Contains(ids, "client-abandoned-after-request") ||
		h["verdict"] != "handshake_failed" || h["verdict_certain"] != true {
		t.Errorf("verdict %v findings %v", h["verdict"], findingIDs(h))
	}
}
