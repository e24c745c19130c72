package proxy

// The TLS 1.3 "late certificate" failure as intercept mode sees it: the
// server's own answer is the evidence, so the verdict is certain.

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
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
	if h.TLSVersion != "TLS 1.3" || h.CertRequest != nil || h.HTTPStatus != 500 {
		t.Errorf("version %v cert_request %+v http_status %v", h.TLSVersion, h.CertRequest, h.HTTPStatus)
	}
	if h.Verdict != "500.0" || !h.VerdictCertain || !slices.Contains(findingIDs(h), "tls13-late-client-cert") {
		t.Errorf("verdict %v certain %v findings %v", h.Verdict, h.VerdictCertain, findingIDs(h))
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
	answered := func(t *testing.T, n int) *event.Handshake {
		t.Helper()
		var h *event.Handshake
		for _, e := range k.ev.settle(t, addr, n)[n-1:] {
			if e.HTTPStatus == 403 {
				h = e
			}
		}
		if h == nil {
			t.Fatalf("no handshake event with the 403; log:\n%s", k.ev.text())
		}
		if h.TLSVersion != "TLS 1.3" || h.CertRequest != nil || h.ClientHello == nil || h.ClientHello.PostHandshakeAuth {
			t.Errorf("version %v cert_request %+v client_hello %+v", h.TLSVersion, h.CertRequest, h.ClientHello)
		}
		return h
	}

	t.Run("a browser without post-handshake auth: 403.7", func(t *testing.T) {
		c := k.goClient(t, k.client, nil)
		if status, _ := getPage(t, c, url); status != 403 {
			t.Errorf("status %d, want Apache's 403", status)
		}
		// The connection's end, not Apache's keep-alive timeout, ends the wait.
		c.CloseIdleConnections()
		h := answered(t, 1)
		if h.Intercept != nil && h.Intercept.BrowserPHA {
			t.Errorf("intercept %+v: Go's client offered post-handshake auth?", h.Intercept)
		}
		ids := findingIDs(h)
		if h.Verdict != "403.7" || !h.VerdictCertain || !slices.Contains(ids, "tls13-late-client-cert") || slices.Contains(ids, "intercept-no-post-handshake-auth") {
			t.Errorf("verdict %v certain %v findings %v", h.Verdict, h.VerdictCertain, ids)
		}
	})

	t.Run("curl offers post-handshake auth: certlens's own client was refused", func(t *testing.T) {
		before := len(k.ev.handshakesFor(t, addr))
		if status, _ := k.curl(t, url); status != 403 {
			t.Errorf("status %d, want Apache's 403", status)
		}
		h := answered(t, before+1)
		if h.Intercept == nil || !h.Intercept.BrowserPHA {
			t.Errorf("intercept %+v: curl's offer of post-handshake auth not shown", h.Intercept)
		}
		if ids := findingIDs(h); slices.Contains(ids, "tls13-late-client-cert") {
			t.Errorf("findings %v blame the browser", ids)
		}
		f := findingOf(h, "intercept-no-post-handshake-auth")
		if f == nil || f.Predicts != rules.VerdictNone || !strings.Contains(f.Detail, "Post-Handshake Authentication") ||
			!strings.Contains(f.Remedy, "--decrypt-keylog") {
			t.Errorf("intercept-no-post-handshake-auth: %+v", f)
		}
		if h.Verdict != "unknown" || h.VerdictCertain {
			t.Errorf("verdict %v certain %v, want unknown: what curl would have got is not known", h.Verdict, h.VerdictCertain)
		}
		closedVerdictIs(t, k.ev.closedOf(t, h), "unknown", false)
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
	if cr := h.CertRequest; cr == nil || cr.IssuerCount != len(cas) || cr.IssuerBytes != pkitest.IssuerListSize(cas) {
		t.Errorf("cert_request %+v, want %d DNs, %d bytes", cr, len(cas), pkitest.IssuerListSize(cas))
	}
	// Go's client refuses the message with a fatal alert of its own: a
	// failed handshake, seen on the wire, not a client that left to pick.
	if ids := findingIDs(h); !slices.Contains(ids, "issuer-list-too-large") || slices.Contains(ids, "client-abandoned-after-request") ||
		h.Verdict != "handshake_failed" || !h.VerdictCertain {
		t.Errorf("verdict %v findings %v", h.Verdict, findingIDs(h))
	}
}
