package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

// certsFixture is an NSS database, built with NSS's own certutil and
// pk12util, holding the identities a user's store collects over the years.
type certsFixture struct {
	home, db            string
	root, foreign, none *pkitest.Cert // none: a CA no identity chains to
	ids                 map[string]*pkitest.Cert
}

func newCertsFixture(t *testing.T, leaveOut ...string) *certsFixture {
	t.Helper()
	peertest.Require(t, "pk12util")
	f := &certsFixture{home: t.TempDir(), root: pkitest.NewCA(t, "certlens certs root"),
		foreign: pkitest.NewCA(t, "certlens certs foreign root"), none: pkitest.NewCA(t, "certlens certs unrelated root")}
	inter := f.root.NewIntermediate(t, "certlens certs issuing CA")
	missing := f.root.NewIntermediate(t, "certlens certs CA missing from the store")
	now := time.Now()
	f.ids = map[string]*pkitest.Cert{
		"good":            inter.NewClient(t, "good alice", pkitest.WithKeyType(pkitest.RSA2048)),
		"ecdsa":           inter.NewClient(t, "ecdsa alice"),
		"expired":         inter.NewClient(t, "expired alice", pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))),
		"bad eku":         inter.NewClient(t, "server-only alice", pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth)),
		"bad ku":          inter.NewClient(t, "encipher-only alice", pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment)),
		"foreign":         f.foreign.NewClient(t, "foreign alice"),
		"no intermediate": missing.NewClient(t, "orphan alice"),
		"no key":          inter.NewClient(t, "keyless alice"),
	}
	for _, name := range leaveOut {
		delete(f.ids, name)
	}
	f.db = peertest.NewNSSDB(t, f.home)
	peertest.NSSImportCert(t, f.db, inter, "issuing CA", ",,")
	peertest.NSSImportCert(t, f.db, f.root, "root", ",,")
	peertest.NSSImportCert(t, f.db, f.foreign, "foreign root", ",,")
	for _, name := range slices.Sorted(maps.Keys(f.ids)) {
		if name == "no key" {
			peertest.NSSImportCert(t, f.db, f.ids[name], name, ",,")
		} else {
			peertest.NSSImportIdentity(t, f.db, f.ids[name], name)
		}
	}
	return f
}

// issuersFile writes a list of CA names as probe --issuers-out does.
func issuersFile(t *testing.T, cas ...*pkitest.Cert) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# certlens probe https://127.0.0.1/\n\n# TLS 1.2 initial handshake: %d CA names, 0 bytes\n", len(cas))
	for i, ca := range cas {
		fmt.Fprintf(&b, "# %d %s\n", i+1, ca.Cert.Subject)
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "DISTINGUISHED NAME", Bytes: ca.Cert.RawSubject}))
	}
	path := filepath.Join(t.TempDir(), "issuers.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type certsJSON struct {
	Results []struct {
		Certificates []struct {
			Name    string `json:"name"`
			SHA256  string `json:"sha256"`
			Offered bool   `json:"offered"`
			Reasons []struct {
				Code string `json:"code"`
				Text string `json:"text"`
			} `json:"reasons"`
		} `json:"certificates"`
		Offered int `json:"offered"`
	} `json:"results"`
}

// runCertsJSON runs certlens certs --json and returns, per nickname, the
// reason codes ("" when offered), the fingerprints of those offered, and
// the exit code.
func runCertsJSON(t *testing.T, args ...string) (map[string]string, map[string]bool, int) {
	t.Helper()
	stdout, stderr, code := run(t, pathEnv(), append([]string{"certs", "--json"}, args...)...)
	var doc certsJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("certs --json: %v (exit %d)\n%s\n%s", err, code, stdout, stderr)
	}
	got, offered := map[string]string{}, map[string]bool{}
	for _, c := range doc.Results[0].Certificates {
		var codes []string
		for _, r := range c.Reasons {
			codes = append(codes, r.Code)
		}
		got[c.Name] = strings.Join(codes, ",")
		if c.Offered {
			offered[c.SHA256] = true
		}
	}
	return got, offered, code
}

func TestCertsNSSStore(t *testing.T) {
	f := newCertsFixture(t)
	store := "nss:" + f.db
	cases := []struct {
		name string
		list []*pkitest.Cert
		want map[string]string
		code int
	}{
		{"list names the root", []*pkitest.Cert{f.root}, map[string]string{
			"good": "", "ecdsa": "", "expired": "expired", "bad eku": "ext-key-usage", "bad ku": "key-usage",
			"foreign": "issuer-not-listed", "no intermediate": "issuer-not-listed", "no key": "no-private-key"}, 0},
		{"list names the foreign root", []*pkitest.Cert{f.foreign}, map[string]string{
			"good": "issuer-not-listed", "ecdsa": "issuer-not-listed", "expired": "issuer-not-listed,expired",
			"bad eku": "issuer-not-listed,ext-key-usage", "bad ku": "issuer-not-listed,key-usage", "foreign": "",
			"no intermediate": "issuer-not-listed", "no key": "issuer-not-listed,no-private-key"}, 0},
		{"list names a CA no certificate chains to", []*pkitest.Cert{f.none}, map[string]string{
			"good": "issuer-not-listed", "ecdsa": "issuer-not-listed", "expired": "issuer-not-listed,expired",
			"bad eku": "issuer-not-listed,ext-key-usage", "bad ku": "issuer-not-listed,key-usage", "foreign": "issuer-not-listed",
			"no intermediate": "issuer-not-listed", "no key": "issuer-not-listed,no-private-key"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, code := runCertsJSON(t, "--store", store, "--issuers", issuersFile(t, tc.list...))
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, name := range slices.Sorted(maps.Keys(tc.want)) {
				if got[name] != tc.want[name] {
					t.Errorf("%s: reasons %q, want %q", name, got[name], tc.want[name])
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("certificates %v, want exactly %v (CAs are not listed)", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tc.want)))
			}
		})
	}

	// The table a person reads: one row per certificate, and why.
	stdout, _, code := run(t, pathEnv(), "certs", "--store", store, "--issuers", issuersFile(t, f.root))
	t.Logf("certlens certs:\n%s", stdout)
	if code != 0 {
		t.Errorf("table: exit code %d", code)
	}
	for _, want := range []string{"OFFERED  CERTIFICATE", "yes      good (CN=good alice)", "no       expired (CN=expired alice)", "2 of 8 certificates would be offered",
		"never fetch a missing CA certificate", "holds no private key"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}

	// Errors: one line, exit 2.
	wantExit2(t, pathEnv(), []string{"certs", "--store", "nss:" + t.TempDir()}, "no NSS database there")
	wantExit2(t, pathEnv(), []string{"certs", "--store", "firefox"}, "--store")
	wantExit2(t, pathEnv(), []string{"certs", "--store", store, "--issuers", filepath.Join(t.TempDir(), "none.txt")}, "--issuers")
	wantExit2(t, pathEnv(), []string{"certs", "--store", store, "--url", "https://a/", "--issuers", "x"}, "exclude each other")
}

// pathEnv lets certlens find certutil, as a user's shell does.
func pathEnv() []string { return []string{"PATH=" + os.Getenv("PATH")} }

// What certlens certs says Chromium would offer is what Chromium sends:
// headless Chromium with the fixture's NSS database and an
// AutoSelectCertificateForUrls policy goes through certlens to an
// openssl s_server that requires a certificate from the list; the
// certificate certlens saw it send is one certs --url called offered, and
// when certs said none, Chromium sent none.
func TestCertsMatchChromium(t *testing.T) {
	f := newCertsFixture(t)
	// The same store without the two certificates that chain to the root
	// and are fit to offer: every one left has a reason against it.
	unfit := newCertsFixture(t, "good", "ecdsa")
	peertest.Require(t, "chromium")
	serverCA := pkitest.NewCA(t, "certlens certs server CA")
	for _, tc := range []struct {
		name string
		f    *certsFixture
		list []*pkitest.Cert
	}{
		{"list names the root", f, []*pkitest.Cert{f.root}},
		{"list names the foreign root", f, []*pkitest.Cert{f.foreign}},
		{"list names a CA no certificate chains to", f, []*pkitest.Cert{f.none}},
		{"only unfit certificates chain to the root", unfit, []*pkitest.Cert{unfit.root}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "127.0.0.1"),
				ClientCAs: tc.list, Require: true, Verify: 2, TLS12: true, WWW: true})
			url := "https://" + addr + "/"
			_, offered, code := runCertsJSON(t, "--store", "nss:"+tc.f.db, "--url", url)
			if (code == 0) != (len(offered) > 0) {
				t.Errorf("certs exit code %d with %d offered", code, len(offered))
			}
			_, port, _ := strings.Cut(addr, ":")
			events := serveEvents(t, port, func(proxy string) {
				peertest.Chromium(t, peertest.ChromiumConfig{URL: url, Proxy: proxy, Home: tc.f.home, AutoSelect: true,
					ServerCAs: []*pkitest.Cert{serverCA}})
			})
			requests, sent := 0, map[string]bool{}
			for _, e := range events {
				h := e.Handshake
				if h == nil || h.CertRequest == nil {
					continue
				}
				requests++
				if h.ClientCert != nil && len(h.ClientCert.Chain) > 0 {
					leaf := h.ClientCert.Chain[0]
					sent[leaf.SHA256] = true
					t.Logf("Chromium sent %s", leaf.Subject)
				}
			}
			if requests == 0 {
				t.Fatalf("no handshake with a certificate request through certlens: %d lines", len(events))
			}
			// certlens's own log of that request gives the same answer.
			var log strings.Builder
			for _, e := range events {
				log.Write(append(e.Raw, '\n'))
			}
			logPath := filepath.Join(t.TempDir(), "handshakes.jsonl")
			if err := os.WriteFile(logPath, []byte(log.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, fromLog, _ := runCertsJSON(t, "--store", "nss:"+tc.f.db, "--event", logPath); !maps.Equal(fromLog, offered) {
				t.Errorf("certs --event offers %v, certs --url %v", slices.Sorted(maps.Keys(fromLog)), slices.Sorted(maps.Keys(offered)))
			}
			for fp := range sent {
				if !offered[fp] {
					t.Errorf("Chromium sent %s, which certs did not say it would offer (offered: %v)", fp, slices.Sorted(maps.Keys(offered)))
				}
			}
			if len(offered) > 0 && len(sent) == 0 {
				t.Errorf("certs said %d would be offered; Chromium sent none", len(offered))
			}
			if len(offered) == 0 && len(sent) > 0 {
				t.Errorf("certs said none would be offered; Chromium sent %v", slices.Sorted(maps.Keys(sent)))
			}
		})
	}
}

// serve --expect-cert store:nss:DIR judges every certificate of the store
// against each live request, in one finding: the certificate that would be
// offered (the cause is then on the client), or the closest near miss.
func TestServeExpectCertStore(t *testing.T) {
	f := newCertsFixture(t)
	serverCA := pkitest.NewCA(t, "certlens certs server CA")
	for _, tc := range []struct {
		name       string
		list       *pkitest.Cert
		summary    string
		detail     string
		severities string
	}{
		{"two would be offered", f.root, "would be offered for this request, yet the client did not send it", "2 of the 8 certificates", "warning"},
		{"none would be offered", f.none, "is not offered by a browser for this request: 1 reason(s)", "None of the 8 certificates", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: serverCA.NewServer(t, "127.0.0.1"),
				ClientCAs: []*pkitest.Cert{tc.list}, Verify: 1, TLS12: true, WWW: true})
			_, port, _ := strings.Cut(addr, ":")
			events := serveEvents(t, port, func(proxy string) {
				_, _ = peertest.OpenSSLClient(t, peertest.OpenSSLClientConfig{Connect: addr, Proxy: proxy, TLS12: true})
			}, "--expect-cert", "store:nss:"+f.db)
			var found []rules.Finding
			for _, e := range events {
				if e.Handshake == nil {
					continue
				}
				for _, x := range e.Handshake.Findings {
					if x.ID == "expected-cert-not-selectable" {
						found = append(found, x)
					}
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d expected-cert-not-selectable findings, want one for the store: %+v", len(found), found)
			}
			summary, detail := found[0].Summary, found[0].Detail
			if !strings.Contains(summary, tc.summary) || !strings.Contains(summary, "nss:"+f.db) || !strings.Contains(detail, tc.detail) ||
				string(found[0].Severity) != tc.severities {
				t.Errorf("finding %+v\nwant summary %q naming the store, detail %q, severity %s", found[0], tc.summary, tc.detail, tc.severities)
			}
		})
	}
	wantExit2(t, pathEnv(), []string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t)), "--admin-listen=", "--expect-cert", "store:nss:" + t.TempDir()}, "no NSS database there")
}

// The requests certs reads from files: certlens's log (the latest request
// per target, compared by name) and probe --issuers-out's JSON twin.
func TestCertsRequestsFromFiles(t *testing.T) {
	dir := t.TempDir()
	root, foreign := pkitest.NewCA(t, "certlens certs root"), pkitest.NewCA(t, "certlens certs foreign root")
	alice, bob := root.NewClient(t, "alice"), foreign.NewClient(t, "bob")
	alicePath, bobPath := filepath.Join(dir, "alice.pem"), filepath.Join(dir, "bob.pem")
	pkitest.WritePEM(t, alicePath, alice, root)
	pkitest.WritePEM(t, bobPath, bob, foreign)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	event := func(target string, ca *pkitest.Cert) string {
		line, _ := json.Marshal(map[string]any{"level": "warn", "msg": "handshake", "target": target, "tls_version": "TLS 1.2", "phase": "initial",
			"cert_request": map[string]any{"issuer_count": 1, "issuers": []string{ca.Cert.Subject.String()}}})
		return string(line) + "\n"
	}
	log := write("handshakes.jsonl", event("iis.test:443", foreign)+"not json\n"+`{"msg":"connection closed","target":"iis.test:443"}`+"\n"+
		event("iis.test:443", root)+event("other.test:443", foreign))

	stdout, stderr, code := run(t, nil, "certs", "--json", "--cert", alicePath, "--cert", bobPath, "--event", log)
	var doc struct {
		Results []struct {
			Request struct {
				Source string `json:"source"`
				ByName bool   `json:"by_name"`
			} `json:"request"`
			Certificates []struct {
				Name    string `json:"name"`
				Offered bool   `json:"offered"`
			} `json:"certificates"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 0 {
		t.Fatalf("certs --event: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	var got []string
	for _, r := range doc.Results {
		for _, c := range r.Certificates {
			if c.Offered {
				got = append(got, fmt.Sprintf("%s by name %v: %s", r.Request.Source, r.Request.ByName, c.Name))
			}
		}
	}
	want := []string{"iis.test:443 by name true: alice.pem", "other.test:443 by name true: bob.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("offered %q, want %q (the latest request per target)", got, want)
	}

	der, _ := json.Marshal([]map[string]any{{"der": root.Cert.RawSubject}})
	issuers := write("issuers.txt.json", `{"url":"https://iis.test/","requests":[{"tls_version":"TLS 1.3","phase":"initial","issuers":`+string(der)+`}]}`)
	stdout, _, code = run(t, nil, "certs", "--cert", alicePath, "--cert", bobPath, "--issuers", issuers)
	if code != 0 || !strings.Contains(stdout, "TLS 1.3 initial handshake") || !strings.Contains(stdout, "1 of 2 certificates would be offered") {
		t.Errorf("certs --issuers FILE.json: exit %d\n%s", code, stdout)
	}
	stdout, _, code = run(t, nil, "certs", "--cert", bobPath, "--issuers", issuers)
	if code != 1 || !strings.Contains(stdout, "0 of 1 certificates would be offered") {
		t.Errorf("certs with none offered: exit %d, want 1\n%s", code, stdout)
	}

	wantExit2(t, nil, []string{"certs", "--cert", alicePath, "--event", write("empty.jsonl", "{}\n")}, "no handshake event with a certificate request")
	wantExit2(t, nil, []string{"certs", "--cert", alicePath, "--issuers", write("bad.txt", "hello\n")}, "probe --issuers-out")
	wantExit2(t, nil, []string{"certs", "--cert", filepath.Join(dir, "missing.pem")}, "--cert")
	wantExit2(t, nil, []string{"certs", "--cert", alicePath, "--machine"}, "--machine goes with --store windows")
}

// A server that asks for no certificate gets none from a browser: exit 1,
// saying so.
func TestCertsURLWithoutRequest(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens certs server CA")
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{Cert: ca.NewServer(t, "127.0.0.1"), WWW: true})
	certPath := filepath.Join(t.TempDir(), "alice.pem")
	pkitest.WritePEM(t, certPath, ca.NewClient(t, "alice"))
	_, stderr, code := run(t, nil, "certs", "--cert", certPath, "--url", "https://"+addr+"/")
	if code != 1 || !strings.Contains(stderr, "the server asked for no client certificate") {
		t.Errorf("exit %d, stderr %q; want 1 saying the server asked for none", code, stderr)
	}
}

// A --cert file's key column says whether the file holds the leaf's own
// key, however the file carries it: a PEM key, PKCS#12 without a
// password; another certificate's key is none.
func TestCertsFileKeyState(t *testing.T) {
	dir := t.TempDir()
	root := pkitest.NewCA(t, "certlens certs key root")
	alice, bob := root.NewClient(t, "alice"), root.NewClient(t, "bob")
	write := func(name string, data ...[]byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, slices.Concat(data...), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := map[string]string{
		"with-key.pem":    write("with-key.pem", alice.CertPEM(), alice.KeyPEM()),
		"alone.pem":       write("alone.pem", alice.CertPEM()),
		"other-key.pem":   write("other-key.pem", alice.CertPEM(), bob.KeyPEM()),
		"no-password.pfx": write("no-password.pfx", alice.PFX(t, "")),
	}
	want := map[string]string{"with-key.pem": "present", "alone.pem": "unknown", "other-key.pem": "unknown", "no-password.pfx": "present"}
	args := []string{"certs", "--json"}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		args = append(args, "--cert", files[name])
	}
	stdout, stderr, code := run(t, nil, args...)
	var doc struct {
		Results []struct {
			Certificates []struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"certificates"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 0 || len(doc.Results) != 1 {
		t.Fatalf("certs --json: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	got := map[string]string{}
	for _, c := range doc.Results[0].Certificates {
		got[c.Name] = c.Key
	}
	if !maps.Equal(got, want) {
		t.Errorf("key states %v, want %v", got, want)
	}
}
