package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certlens/certlens/internal/communityid"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// startSidecar runs a sidecar-mode Server in front of upstream.
func startSidecar(t *testing.T, side SidecarOptions) (string, *Server, *events) {
	t.Helper()
	return startServer(t, Options{Mode: event.ModeSidecar, Sidecar: side, WatchRenegotiation: true})
}

// curlDirect runs curl straight at the sidecar, naming the server sni.
func curlDirect(t *testing.T, sidecar, sni string, args ...string) (string, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(sidecar)
	all := append([]string{"-sS", "--noproxy", "*", "--resolve", sni + ":" + port + ":127.0.0.1"}, args...)
	all = append(all, "https://"+sni+":"+port+"/")
	out, stderr, err := runCurl(t, all...)
	if err != nil {
		return stderr, err
	}
	return out, nil
}

func TestSidecarEventsEqualObserve(t *testing.T) {
	p := newPKI(t)
	// Each server starts on its subtest's t: a missing peer then skips that
	// subtest, where skipping the parent from inside it would fail the run.
	servers := map[string]func(*testing.T) string{
		"openssl s_server": func(t *testing.T) string {
			addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
				Cert: p.server, ClientCAs: []*pkitest.Cert{p.other1, p.clientCA}, Verify: 1, TLS12: true, WWW: true,
			})
			return addr
		},
		"nginx": func(t *testing.T) string {
			return peertest.Nginx(t, peertest.NginxConfig{Cert: p.server, ClientCAs: []*pkitest.Cert{p.other1, p.clientCA},
				VerifyClient: "on", Protocols: "TLSv1.2"})
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) { sidecarEqualsObserve(t, p, start(t)) })
	}
}

func sidecarEqualsObserve(t *testing.T, p *pki, addr string) {
	sidecar, _, sev := startSidecar(t, SidecarOptions{Upstream: addr})
	proxyAddr, oev := startProxy(t, Options{WatchRenegotiation: true})
	ca := filepath.Join(p.dir, "server-ca.pem")
	args := append([]string{"--cacert", ca, "--tlsv1.2", "--tls-max", "1.2"}, p.clientFiles(t)...)

	viaSidecar, err := curlDirect(t, sidecar, "127.0.0.1", args...)
	if err != nil {
		t.Fatalf("curl via sidecar: %v %s", err, viaSidecar)
	}
	viaProxy, _, err := curl(t, proxyAddr, append(args, "https://"+addr+"/")...)
	// The pages carry session ids; their first line says which server answered.
	first := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	if err != nil || viaSidecar == "" || first(viaProxy) != first(viaSidecar) {
		t.Fatalf("curl via proxy: %v: %q, via the sidecar %q", err, first(viaProxy), first(viaSidecar))
	}
	s, o := sev.waitHandshakes(t, 1)[0], oev.waitHandshakes(t, 1)[0]
	if s.Mode != "sidecar" || s.Target != addr {
		t.Errorf("sidecar event mode %v target %v", s.Mode, s.Target)
	}
	compared := func(h *event.Handshake) []any {
		return []any{h.TLSVersion, h.Visibility, h.Verdict, h.VerdictCertain, h.CertRequest, h.Findings}
	}
	for i, k := range []string{"tls_version", "visibility", "verdict", "verdict_certain", "cert_request", "findings"} {
		if sv, ov := fmt.Sprintf("%+v", compared(s)[i]), fmt.Sprintf("%+v", compared(o)[i]); sv != ov {
			t.Errorf("%s: sidecar %s, observe %s", k, sv, ov)
		}
	}
	if s.ClientCert == nil || o.ClientCert == nil || !s.ClientCert.Sent || !reflect.DeepEqual(s.ClientCert.Chain, o.ClientCert.Chain) {
		t.Errorf("client_cert: sidecar %+v, observe %+v", s.ClientCert, o.ClientCert)
	}
	c := sev.waitClosed(t, 1)[0]
	if c.ConnID != s.ConnID || c.BytesDown == 0 {
		t.Errorf("closed %+v", c)
	}
	// The sidecar's flow is curl's connection to it, which a sensor in
	// front of the server would hash the same way.
	want := communityid.FromStrings(0, s.ClientAddr, sidecar)
	if want == "" || s.CommunityID != want || c.CommunityID != want {
		t.Errorf("sidecar community_id: handshake %q, closed %q; want %q", s.CommunityID, c.CommunityID, want)
	}
	oc := oev.waitClosed(t, 1)[0]
	if id := o.CommunityID; !strings.HasPrefix(id, "1:") || oc.CommunityID != id || id == want {
		t.Errorf("observe community_id: handshake %q, closed %q (the upstream leg, not the sidecar's)", o.CommunityID, oc.CommunityID)
	}
}

// goTLSServer answers every request with its own name, to tell upstreams apart.
func goTLSServer(t *testing.T, name string, cert *pkitest.Cert) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestSidecarRoutesBySNI(t *testing.T) {
	ca := pkitest.NewCA(t, "certlens routing CA")
	srv := ca.NewServer(t, "app.example.test", pkitest.WithDNSNames("app.example.test", "api.example.test", "other.example.test"))
	app, api := goTLSServer(t, "app", srv), goTLSServer(t, "api", srv)
	sidecar, _, ev := startSidecar(t, SidecarOptions{Upstream: app, Routes: []Route{{"api.*", api}}})
	dir := t.TempDir()
	pkitest.WritePEM(t, filepath.Join(dir, "ca.pem"), ca)
	for i, tc := range []struct{ sni, want, target string }{
		{"api.example.test", "api", api}, {"app.example.test", "app", app}, {"other.example.test", "app", app},
	} {
		out, err := curlDirect(t, sidecar, tc.sni, "--cacert", filepath.Join(dir, "ca.pem"))
		if err != nil || out != tc.want {
			t.Errorf("%s: got %q (%v), want %q", tc.sni, out, err, tc.want)
		}
		e := ev.waitHandshakes(t, i+1)[i]
		if e.Target != tc.target || e.SNI != tc.sni {
			t.Errorf("%s: event target %v sni %v, want %s", tc.sni, e.Target, e.SNI, tc.target)
		}
	}
}

func TestSidecarProxyProtocol(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &proxyproto.Listener{Listener: raw}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				buf := make([]byte, 5)
				_, _ = io.ReadFull(c, buf)
				got <- c.RemoteAddr().String() + " " + string(buf)
			}()
			sidecar, _, _ := startSidecar(t, SidecarOptions{Upstream: raw.Addr().String(), ProxyProtocol: version})
			c, err := net.Dial("tcp", sidecar)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write([]byte("hello"))
			select {
			case g := <-got:
				if want := c.LocalAddr().String() + " hello"; g != want {
					t.Errorf("upstream saw %q, want %q", g, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("upstream got nothing")
			}
		})
	}
}

func TestMetricsAndHealth(t *testing.T) {
	p := newPKI(t)
	addr, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: p.server, ClientCAs: []*pkitest.Cert{p.clientCA}, Verify: 1, TLS12: true, WWW: true,
	})
	sidecar, srv, ev := startSidecar(t, SidecarOptions{Upstream: addr})
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.ServeAdmin(ctx, admin) }()
	base := "http://" + admin.Addr().String()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	ca := filepath.Join(p.dir, "server-ca.pem")
	for _, withCert := range []bool{true, false} {
		args := []string{"--cacert", ca, "--tlsv1.2", "--tls-max", "1.2"}
		if withCert {
			args = append(args, p.clientFiles(t)...)
		}
		if _, err := curlDirect(t, sidecar, "127.0.0.1", args...); err != nil {
			t.Fatal(err)
		}
	}
	ev.waitClosed(t, 2)

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		f := families[name]
		if f == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"certlens_handshakes_total", map[string]string{"verdict": "ok", "tls_version": "TLS 1.2"}, 1},
		{"certlens_handshakes_total", map[string]string{"verdict": "403.7", "tls_version": "TLS 1.2"}, 1},
		{"certlens_findings_total", map[string]string{"id": "client-cert-not-sent"}, 1},
		{"certlens_tunnels_active", nil, 0},
		{"certlens_tunnels_total", nil, 2},
		{"certlens_issuer_list_bytes", nil, 2},
		{"certlens_handshake_duration_seconds", nil, 2},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value("certlens_bytes_relayed_total", map[string]string{"direction": "server_to_client"}); got < 1000 {
		t.Errorf("bytes relayed down %v", got)
	}

	// Readiness follows the upstream in sidecar mode.
	srv.opts.Sidecar.Upstream = "127.0.0.1:1"
	resp2, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "upstream 127.0.0.1:1 unreachable") {
		t.Errorf("readyz with a dead upstream: %d %s", resp2.StatusCode, body)
	}
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestSidecarUpstreamDown: a connection the upstream refuses still ends in
// exactly one "connection closed" event, saying why.
func TestSidecarUpstreamDown(t *testing.T) {
	sidecar, _, ev := startSidecar(t, SidecarOptions{Upstream: "127.0.0.1:1"})
	c, err := net.Dial("tcp", sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the sidecar did not close the client: %v", err)
	}
	ev.waitClosed(t, 1)
	// wait returns at the first: a second event (a duplicate close) would
	// come right after it.
	time.Sleep(200 * time.Millisecond)
	closed := ev.closed(t)
	if len(closed) != 1 || closed[0].Mode != "sidecar" || !strings.HasPrefix(closed[0].Reason, "dial failed: ") {
		t.Errorf("closed %+v", closed)
	}
}
