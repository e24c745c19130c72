package main

import (
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/internal/testkit/transcript"
)

// pagePKI is what the page tests' servers and clients use: a server
// certificate for localhost, a client CA and its client ("alice"), and
// 260 further CAs to make the issuer list of a cluttered Windows server.
type pagePKI struct {
	dir        string
	serverCA   *pkitest.Cert
	server     *pkitest.Cert
	clientCA   *pkitest.Cert
	alice      *pkitest.Cert
	serverCAPM string
}

func newPagePKI(t *testing.T) *pagePKI {
	t.Helper()
	p := &pagePKI{dir: t.TempDir()}
	p.serverCA = pkitest.NewCA(t, "certlens page server CA")
	p.server = p.serverCA.NewServer(t, "localhost")
	p.clientCA = pkitest.NewCA(t, "", pkitest.WithSubject(pkix.Name{Organization: []string{"Contoso"}, CommonName: "Contoso Client CA"}))
	p.alice = p.clientCA.NewClient(t, "alice@contoso.example")
	p.serverCAPM = filepath.Join(p.dir, "server-ca.pem")
	pkitest.WritePEM(t, p.serverCAPM, p.serverCA)
	return p
}

// curl makes one HTTPS request through the proxy in TLS 1.2 (so that
// observe mode reads the issuer list in clear), with client, if any.
func (p *pagePKI) curl(t *testing.T, proxyAddr, target string, client *pkitest.Cert) {
	t.Helper()
	p.curlTLS(t, "1.2", proxyAddr, target, client)
}

// curlTLS is curl with TLS up to version maxTLS.
func (p *pagePKI) curlTLS(t *testing.T, maxTLS, proxyAddr, target string, client *pkitest.Cert) {
	t.Helper()
	args := []string{"-s", "-o", "/dev/null", "--max-time", "20", "-x", "http://" + proxyAddr, "--cacert", p.serverCAPM, "--tls-max", maxTLS}
	if client != nil {
		cert, key := client.WriteFiles(t, p.dir, "client-"+strconv.Itoa(len(client.DER)))
		args = append(args, "--cert", cert, "--key", key)
	}
	// The server refusing the request is part of what some tests show.
	_ = exec.Command(peertest.Require(t, "curl"), append(args, "https://"+target+"/")...).Run()
}

// startPageServe runs certlens serve with the page on a free admin port;
// it returns the proxy's address and the page's URL from the listening
// event.
func startPageServe(t *testing.T, allowPorts string, extra ...string) (proxyAddr, pageURL string, sp *serveProc) {
	t.Helper()
	proxyAddr = "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp = startServe(t, append([]string{"serve", "--listen", proxyAddr, "--admin-listen", admin, "--allow-ports", allowPorts}, extra...)...)
	l := sp.next("listening")
	pageURL, _ = l["page"].(string)
	if pageURL != "http://"+admin+"/" {
		t.Fatalf("listening event's page %q, want http://%s/", pageURL, admin)
	}
	return proxyAddr, pageURL, sp
}

// TestPageLive drives the live page in Chromium with real traffic: curl
// through certlens to openssl s_server. The list updates as requests are
// made (the page was open before them), a click shows the 261-CA issuer
// list with the client's CA highlighted beside the chain, the filters
// narrow the list, by-host groups it, and nothing on the page errs.
func TestPageLive(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "chromium"} {
		peertest.Require(t, bin)
	}
	p := newPagePKI(t)
	cas := append(pkitest.ManyCAs(t, 260), p.clientCA)
	big, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: p.server, ClientCAs: cas, Verify: 1, WWW: true})
	plain, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: p.server, WWW: true})
	bigTarget := "localhost:" + strconv.Itoa(peertest.Port(t, big))
	plainTarget := "localhost:" + strconv.Itoa(peertest.Port(t, plain))
	aliceCert, _ := p.alice.WriteFiles(t, p.dir, "alice")
	proxyAddr, pageURL, sp := startPageServe(t, strconv.Itoa(peertest.Port(t, big))+","+strconv.Itoa(peertest.Port(t, plain)), "--expect-cert", aliceCert)

	b := newBrowser(t)
	b.run(chromedp.Navigate(pageURL))
	b.waitFor(`document.getElementById('status').textContent === 'live'`, 20*time.Second)
	if n := b.rowCount(); n != 0 {
		t.Fatalf("%d rows before any request", n)
	}

	p.curl(t, proxyAddr, bigTarget, p.alice)
	b.waitFor(`document.querySelectorAll('#rows tr').length === 1`, 15*time.Second)
	first := eval[string](b, `document.querySelector('#rows tr').innerText`)
	for _, want := range []string{bigTarget, "TLS 1.2", "clear", "261 CAs", "alice@contoso.example", "ok"} {
		if !strings.Contains(first, want) {
			t.Errorf("row %q lacks %q", first, want)
		}
	}
	if w := eval[string](b, `document.querySelector('#rows .gauge > div').style.width`); w != "100%" {
		t.Errorf("gauge of a list over 16 KB is %q wide, want 100%%", w)
	}
	p.curl(t, proxyAddr, bigTarget, nil)
	p.curl(t, proxyAddr, plainTarget, nil)
	b.waitFor(`document.querySelectorAll('#rows tr').length === 3`, 15*time.Second)
	for range 3 {
		sp.nextHandshake()
	}

	// Newest first: the plain server's row on top.
	if top := eval[string](b, `document.querySelector('#rows tr').innerText`); !strings.Contains(top, plainTarget) || !strings.Contains(top, "not asked") {
		t.Errorf("top row %q, want the last request (%s, not asked)", top, plainTarget)
	}

	// The detail of alice's handshake: the list numbered, her CA's DN
	// highlighted, the chain beside it.
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(3)`)))
	b.waitFor(`document.querySelectorAll('#detail ol.issuers li').length === 261`, 10*time.Second)
	hits := eval[[]string](b, `Array.from(document.querySelectorAll('#detail ol.issuers li.hit')).map(li => li.textContent)`)
	if len(hits) != 1 || !strings.Contains(hits[0], "CN=Contoso Client CA") {
		t.Errorf("highlighted issuers %q, want Contoso Client CA's DN only", hits)
	}
	if n := eval[int](b, `Array.from(document.querySelectorAll('#detail ol.issuers li')).findIndex(li => li.classList.contains('hit')) + 1`); n != 261 {
		t.Errorf("the matching DN is number %d, want 261 (the last one the server sent)", n)
	}
	detail := eval[string](b, `document.getElementById('detail').innerText`)
	for _, want := range []string{"Issuer list: 261 CAs", "Client chain (sent)", "CN=alice@contoso.example", "Listed: 1 DN", "clientAuth", "digitalSignature", "SHA-256", "Raw event", "Connection"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, detail)
		}
	}
	// The list scrolls within its box, to its last DN.
	scrolled := eval[bool](b, `(() => { const ol = document.querySelector('#detail ol.issuers');
		ol.scrollTop = ol.scrollHeight; return ol.scrollHeight > ol.clientHeight && ol.scrollTop > 0; })()`)
	if !scrolled {
		t.Error("the 261-CA list does not scroll in its box")
	}
	expected := func() string {
		t.Helper()
		b.waitFor(`document.getElementById('expected-sec') && document.getElementById('expected-sec').innerText.includes('alice.crt')`, 5*time.Second)
		return eval[string](b, `document.getElementById('expected-sec').innerText`)
	}
	if x := expected(); !strings.Contains(x, "CN=alice@contoso.example") || !strings.Contains(x, "\nsent") {
		t.Errorf("expected certificate, alice's own request: %q, want sent", x)
	}
	raw := eval[string](b, `document.querySelector('#detail textarea.raw').value`)
	var ev map[string]any
	if err := json.Unmarshal([]byte(raw), &ev); err != nil || ev["msg"] != "handshake" || ev["target"] != bigTarget {
		t.Errorf("raw event is not the handshake's JSON: %v\n%.300s", err, raw)
	}
	// For the screenshots: the list and the chain side by side in view,
	// the highlighted DN within the list.
	eval[bool](b, `(() => { document.querySelector('#detail .side').scrollIntoView();
		const ol = document.querySelector('#detail ol.issuers'), hit = ol.querySelector('li.hit');
		ol.scrollTop = hit.offsetTop - ol.clientHeight / 2; return true; })()`)
	b.screenshot("page-detail-1280x800.png", 1280, 800)
	b.screenshot("page-detail-390x844.png", 390, 844)
	b.resize(1280, 800)

	// The request without a certificate: no DN highlighted, and why.
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(2)`)))
	b.waitFor(`document.getElementById('detail').innerText.includes('The client sent no certificate.')`, 5*time.Second)
	if v := eval[string](b, `document.querySelector('#detail h2 .badge').textContent`); v != "403.7" {
		t.Errorf("no-certificate request's verdict %q, want 403.7", v)
	}
	if x := expected(); !strings.Contains(x, "would be offered for this request, yet the client did not send it") {
		t.Errorf("expected certificate, request without one: %q", x)
	}
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(1)`)))
	if x := expected(); !strings.Contains(x, "not asked for") {
		t.Errorf("expected certificate, server that asks for none: %q", x)
	}

	// Filters.
	setFilter := func(id, value string) {
		t.Helper()
		eval[bool](b, `(() => { const e = document.getElementById(`+jsQuote(id)+`); e.value = `+jsQuote(value)+`;
			e.dispatchEvent(new Event(e.tagName === 'INPUT' ? 'input' : 'change')); return true; })()`)
	}
	for _, c := range []struct {
		id, value string
		rows      int
	}{
		{"f-verdict", "problem", 1},
		{"f-verdict", "ok", 2},
		{"f-verdict", "", 3},
		{"f-target", plainTarget, 1},
		{"f-target", "", 3},
		// Her certificate sent, and named in the other request's finding
		// on the expected certificate.
		{"f-text", "alice@contoso", 2},
		{"f-text", `"sent":true`, 1},
		{"f-text", "certlens test CA 117", 2},
		{"f-text", "", 3},
	} {
		setFilter(c.id, c.value)
		if n := b.rowCount(); n != c.rows {
			t.Errorf("filter %s=%q: %d rows, want %d", c.id, c.value, n, c.rows)
		}
	}

	// Paused, a new request does not move the list; resumed, it appears.
	b.run(chromedp.Click(chromedp.CSS(`#pause`)))
	p.curl(t, proxyAddr, plainTarget, nil)
	sp.nextHandshake()
	b.waitFor(`document.getElementById('counts').textContent.includes('paused, 1 new')`, 10*time.Second)
	if n := b.rowCount(); n != 3 {
		t.Errorf("paused list has %d rows, want 3", n)
	}
	b.run(chromedp.Click(chromedp.CSS(`#pause`)))
	if n := b.rowCount(); n != 4 {
		t.Errorf("resumed list has %d rows, want 4", n)
	}

	// TLS 1.3: what observe mode infers from record sizes, with the sizes.
	p.curlTLS(t, "1.3", proxyAddr, bigTarget, p.alice)
	sp.nextHandshake()
	b.waitFor(`document.querySelectorAll('#rows tr').length === 5`, 10*time.Second)
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(1)`)))
	b.waitFor(`document.getElementById('detail').innerText.includes('Certificate request (inferred)')`, 5*time.Second)
	if d := eval[string](b, `document.getElementById('detail').innerText`); !strings.Contains(d, "TLS 1.3") || !strings.Contains(d, "server records [") || !strings.Contains(d, "CertificateRequest size") {
		t.Errorf("TLS 1.3 detail lacks the record-size evidence:\n%s", d)
	}

	// By host: each target with its list and verdicts.
	b.run(chromedp.Click(chromedp.CSS(`#tab-hosts`)))
	hosts := eval[string](b, `document.getElementById('hosts-view').innerText`)
	for _, want := range []string{bigTarget, plainTarget, "261 CAs", "never asked for a certificate"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("by-host view lacks %q:\n%s", want, hosts)
		}
	}
	b.noErrors()
}

func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hidden are the characters page.js shows as \uXXXX escapes.
var hidden = regexp.MustCompile("[\x00-\x1f\x7f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")

// shown is s as the page shows it.
func shown(s string) string {
	return hidden.ReplaceAllStringFunc(s, func(c string) string {
		return `\u` + strings.ToUpper(strconv.FormatInt(int64([]rune(c)[0])|0x10000, 16)[1:])
	})
}

// xssPKI mints a client CA and a client whose DNs carry markup, an
// attribute break-out and direction-changing and control characters.
func xssNames() (ca, client pkix.Name) {
	ca = pkix.Name{
		Organization:       []string{`<script>window.__pwned=1</script>`},
		OrganizationalUnit: []string{`"onerror="window.__pwned=2" x="`},
		CommonName:         "Evil \u202eAC tnemyap\u202c CA <img src=x onerror=window.__pwned=3>",
	}
	client = pkix.Name{
		Organization: []string{"bell\x07 tab\t zero\u200bwidth"},
		CommonName:   `mallory</td><script>window.__pwned=4</script>`,
	}
	return ca, client
}

// checkXSS fails if anything of the page was injected: a script or image
// element anywhere in the views, the payloads' global set, or the DNs not
// shown as their text.
func checkXSS(t *testing.T, b *browser, issuers []string) {
	t.Helper()
	if n := eval[int](b, `document.querySelectorAll('main script, main img, main iframe, main [onerror]').length`); n != 0 {
		t.Errorf("%d injected elements in the page", n)
	}
	if v := eval[string](b, `String(window.__pwned)`); v != "undefined" {
		t.Errorf("a payload ran: window.__pwned = %s", v)
	}
	got := eval[[]string](b, `Array.from(document.querySelectorAll('#detail ol.issuers li')).map(li => li.textContent)`)
	if len(got) != len(issuers) {
		t.Fatalf("page shows %d issuers, the event has %d", len(got), len(issuers))
	}
	for i := range issuers {
		if got[i] != shown(issuers[i]) {
			t.Errorf("issuer %d shown as %q, want %q", i+1, got[i], shown(issuers[i]))
		}
	}
	ctl := eval[[]string](b, `Array.from(document.querySelectorAll('#detail .ctl')).map(s => s.textContent)`)
	if !slicesContain(ctl, `\u202E`) || !slicesContain(ctl, `\u0007`) {
		t.Errorf("direction and control characters shown as %q, want \\u202E and \\u0007 among them", ctl)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPageXSS: a CA and a client certificate whose DNs carry <script>,
// "onerror= and RTL/control characters, sent through certlens by real
// peers: the live page shows them as text and nothing runs.
func TestPageXSS(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "chromium"} {
		peertest.Require(t, bin)
	}
	p := newPagePKI(t)
	caName, clientName := xssNames()
	evilCA := pkitest.NewCA(t, "", pkitest.WithSubject(caName))
	mallory := evilCA.NewClient(t, "", pkitest.WithSubject(clientName))
	srv, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{evilCA, p.clientCA}, Verify: 1, WWW: true})
	proxyAddr, pageURL, sp := startPageServe(t, strconv.Itoa(peertest.Port(t, srv)))
	b := newBrowser(t)
	b.run(chromedp.Navigate(pageURL))
	b.waitFor(`document.getElementById('status').textContent === 'live'`, 20*time.Second)
	p.curl(t, proxyAddr, "localhost:"+strconv.Itoa(peertest.Port(t, srv)), mallory)
	hs := sp.nextHandshake()
	if hs.CertRequest == nil {
		t.Fatal("the handshake event has no cert_request")
	}
	issuers := hs.CertRequest.Issuers
	if len(issuers) != 2 || !strings.Contains(issuers[0], "script") {
		t.Fatalf("event's issuers %q, want the evil CA's DN first", issuers)
	}
	b.waitFor(`document.querySelectorAll('#rows tr').length === 1`, 15*time.Second)
	b.run(chromedp.Click(chromedp.CSS(`#rows tr`)))
	b.waitFor(`document.querySelectorAll('#detail ol.issuers li').length === 2`, 10*time.Second)
	checkXSS(t, b, issuers)
	if hits := eval[int](b, `document.querySelectorAll('#detail ol.issuers li.hit').length`); hits != 1 {
		t.Errorf("%d issuers highlighted, want the evil CA's", hits)
	}
	b.noErrors()
}

// TestPageOffAndGuarded: --ui=false leaves / a 404 and the listening
// event without a page; with the page on, a Host that is not loopback
// (a rebound DNS name) is refused.
func TestPageOffAndGuarded(t *testing.T) {
	admin := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServe(t, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(peertest.FreePort(t)), "--admin-listen", admin, "--ui=false")
	if l := sp.next("listening"); l["page"] != nil {
		t.Errorf("listening event names a page with --ui=false: %v", l["page"])
	}
	if code, _ := httpGet(t, "http://"+admin+"/", ""); code != http.StatusNotFound {
		t.Errorf("--ui=false: / answered %d, want 404", code)
	}
	_, pageURL, _ := startPageServe(t, "443")
	code, body := httpGet(t, pageURL, "")
	if code != http.StatusOK || !strings.Contains(body, `<script src="page.js" defer></script>`) || strings.Contains(body, "<script>") {
		t.Errorf("page: %d, want 200 with its script by URL only:\n%.400s", code, body)
	}
	if code, _ := httpGet(t, pageURL+"events", "certlens.attacker.example"); code != http.StatusMisdirectedRequest {
		t.Errorf("events with a foreign Host: %d, want 421", code)
	}
}

func httpGet(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openReport loads a static report from disk in Chromium and checks that
// it asked for nothing beyond itself.
func openReport(t *testing.T, file string) *browser {
	t.Helper()
	b := newBrowser(t)
	b.run(chromedp.Navigate("file://" + file))
	b.waitFor(`document.getElementById('status').textContent.includes('events, written')`, 15*time.Second)
	if n := eval[int](b, `performance.getEntriesByType('resource').length`); n != 0 {
		t.Errorf("the report loaded %d resources; it must need none", n)
	}
	if live := eval[bool](b, `document.getElementById('pause').hidden`); !live {
		t.Error("a static report shows the live page's pause button")
	}
	return b
}

// recordXSS records curl sending mallory's certificate (the XSS names) to
// openssl s_server, and writes the connection as a pcap for analyze.
func recordXSS(t *testing.T, p *pagePKI, dir string) string {
	t.Helper()
	caName, clientName := xssNames()
	evilCA := pkitest.NewCA(t, "", pkitest.WithSubject(caName))
	mallory := evilCA.NewClient(t, "", pkitest.WithSubject(clientName))
	srv, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{evilCA, p.clientCA}, Verify: 1, WWW: true})
	rec, err := transcript.NewRecorder(srv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := mallory.WriteFiles(t, p.dir, "mallory")
	_ = exec.Command(peertest.Require(t, "curl"), "-s", "-o", "/dev/null", "--max-time", "20", "--cacert", p.serverCAPM, "--tls-max", "1.2",
		"--cert", cert, "--key", key, "--connect-to", "localhost:443:"+rec.Addr(), "https://localhost/").Run()
	_ = rec.Close()
	ts := rec.Transcripts()
	if len(ts) != 1 {
		t.Fatalf("recorded %d connections, want 1", len(ts))
	}
	path := filepath.Join(dir, "xss.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ts[0].WritePcap(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAnalyzeHTMLReport: analyze --html on captures of real peers (the
// 261-CA list, a renegotiation, the XSS names) writes one file that opens
// offline in Chromium with the live page's views and the same checks.
func TestAnalyzeHTMLReport(t *testing.T) {
	for _, bin := range []string{"openssl", "curl", "chromium"} {
		peertest.Require(t, bin)
	}
	p := newPagePKI(t)
	dir := t.TempDir()
	xss := recordXSS(t, p, dir)
	report := filepath.Join(dir, "report.html")
	_, stderr, code := run(t, nil, "analyze", "--html", report, abs(t, transcripts+"tls12-260ca-curl-cert.pcap"),
		abs(t, transcripts+"tls12-renegotiation-sclient.pcap"), xss)
	// Exit 1: the captures hold handshakes with problems, as they should.
	if code == 2 || !strings.Contains(stderr, "report written to "+report) {
		t.Fatalf("analyze --html: exit %d, stderr %s", code, stderr)
	}
	b := openReport(t, report)
	if n := b.rowCount(); n != 4 {
		t.Fatalf("report lists %d handshakes, want 4 (1 + 2 + 1)", n)
	}
	// Oldest last: the 261-CA capture's handshake is the bottom row.
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(4)`)))
	b.waitFor(`document.querySelectorAll('#detail ol.issuers li').length === 261`, 5*time.Second)
	detail := eval[string](b, `document.getElementById('detail').innerText`)
	for _, want := range []string{"Client chain (sent)", "CN=certlens golden client", "tcp.stream eq 0"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, detail)
		}
	}
	// The renegotiation: both handshakes of the connection and its outcome.
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(2)`)))
	b.waitFor(`document.querySelectorAll('#detail .conn-hs').length === 2`, 5*time.Second)
	if conn := eval[string](b, `document.getElementById('detail').innerText`); !strings.Contains(conn, "renegotiation") || !strings.Contains(conn, "Outcome") {
		t.Errorf("connection section lacks the renegotiation or the outcome:\n%s", conn)
	}
	// The XSS names, newest row.
	b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(1)`)))
	b.waitFor(`document.querySelectorAll('#detail ol.issuers li').length === 2`, 5*time.Second)
	raw := eval[string](b, `document.querySelector('#detail textarea.raw').value`)
	var ev struct {
		CertRequest struct{ Issuers []string } `json:"cert_request"`
	}
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	checkXSS(t, b, ev.CertRequest.Issuers)
	b.run(chromedp.Click(chromedp.CSS(`#tab-hosts`)))
	// The three captures are all of 127.0.0.1:443 (as transcripts write
	// them): one target whose list changed.
	if hosts := eval[string](b, `document.getElementById('hosts-view').innerText`); !strings.Contains(hosts, "261 CAs") || !regexp.MustCompile(`the list shrank from 261 to \d+ CAs at \d\d:\d\d`).MatchString(hosts) {
		t.Errorf("by-host view lacks the 261-CA list or its change:\n%s", hosts)
	}
	b.noErrors()
}

// TestProbeHTMLReport: probe --html against openssl s_server with the
// 261-CA list writes a report that opens offline with both attempts.
func TestProbeHTMLReport(t *testing.T) {
	for _, bin := range []string{"openssl", "chromium"} {
		peertest.Require(t, bin)
	}
	p := newPagePKI(t)
	cas := append(pkitest.ManyCAs(t, 260), p.clientCA)
	srv, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: p.server, ClientCAs: cas, Verify: 1, WWW: true})
	cert, key := p.alice.WriteFiles(t, p.dir, "alice")
	report := filepath.Join(t.TempDir(), "probe.html")
	_, stderr, code := run(t, nil, "probe", "--html", report, "--ca-file", p.serverCAPM, "--cert", cert, "--key", key,
		"https://localhost:"+strconv.Itoa(peertest.Port(t, srv))+"/")
	if !strings.Contains(stderr, "report written to "+report) {
		t.Fatalf("probe --html: exit %d, stderr %s", code, stderr)
	}
	b := openReport(t, report)
	if n := b.rowCount(); n != 2 {
		t.Fatalf("report lists %d handshakes, want 2 (TLS 1.3 and 1.2)", n)
	}
	for i := 1; i <= 2; i++ {
		b.run(chromedp.Click(chromedp.CSS(`#rows tr:nth-child(` + strconv.Itoa(i) + `)`)))
		b.waitFor(`document.querySelectorAll('#detail ol.issuers li').length === 261 && document.querySelectorAll('#detail ol.issuers li.hit').length === 1`, 5*time.Second)
		// The certificate given to probe is the one expected, and was sent.
		if x := eval[string](b, `document.getElementById('expected-sec').innerText`); !strings.Contains(x, "CN=alice@contoso.example") || !strings.Contains(x, "\nsent") {
			t.Errorf("expected certificate in the probe report: %q", x)
		}
	}
	if title := eval[string](b, `document.getElementById('source').textContent`); !strings.Contains(title, "certlens probe https://localhost:") {
		t.Errorf("report's source %q", title)
	}
	b.noErrors()
}
