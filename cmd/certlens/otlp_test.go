package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// otlpValue is an OTLP/JSON AnyValue as the collector's file exporter
// writes it (64-bit integers as strings).
type otlpValue struct {
	StringValue *string          `json:"stringValue"`
	IntValue    *json.RawMessage `json:"intValue"`
	BoolValue   *bool            `json:"boolValue"`
	DoubleValue *float64         `json:"doubleValue"`
	ArrayValue  *struct {
		Values []otlpValue `json:"values"`
	} `json:"arrayValue"`
	KvlistValue *struct {
		Values []otlpKV `json:"values"`
	} `json:"kvlistValue"`
}

type otlpKV struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

func (v otlpValue) native() any {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		n, _ := strconv.ParseInt(strings.Trim(string(*v.IntValue), `"`), 10, 64)
		return n
	case v.BoolValue != nil:
		return *v.BoolValue
	case v.DoubleValue != nil:
		return *v.DoubleValue
	case v.ArrayValue != nil:
		out := make([]any, len(v.ArrayValue.Values))
		for i, e := range v.ArrayValue.Values {
			out[i] = e.native()
		}
		return out
	case v.KvlistValue != nil:
		return kvMap(v.KvlistValue.Values)
	}
	return nil
}

func kvMap(kvs []otlpKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.native()
	}
	return m
}

// collectorRecord is one log record the collector wrote, with its
// resource's attributes.
type collectorRecord struct {
	Event    string
	Attrs    map[string]any
	Resource map[string]any
}

// collectorFile reads the file exporter's output: the log records, and the
// names of the metrics it received.
func collectorFile(t *testing.T, name string) (recs []collectorRecord, metrics map[string]bool) {
	t.Helper()
	metrics = map[string]bool{}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, metrics
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			ResourceLogs []struct {
				Resource struct {
					Attributes []otlpKV `json:"attributes"`
				} `json:"resource"`
				ScopeLogs []struct {
					LogRecords []struct {
						EventName  string   `json:"eventName"`
						Attributes []otlpKV `json:"attributes"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
			ResourceMetrics []struct {
				ScopeMetrics []struct {
					Metrics []struct {
						Name string `json:"name"`
					} `json:"metrics"`
				} `json:"scopeMetrics"`
			} `json:"resourceMetrics"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			// The collector was killed mid-line: the rest of the file counts.
			continue
		}
		for _, rl := range line.ResourceLogs {
			res := kvMap(rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					recs = append(recs, collectorRecord{Event: lr.EventName, Attrs: kvMap(lr.Attributes), Resource: res})
				}
			}
		}
		for _, rm := range line.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					metrics[m.Name] = true
				}
			}
		}
	}
	return recs, metrics
}

// waitRecords polls the collector's file until it holds a record of event
// for every conn_id in want.
func waitRecords(t *testing.T, file, event string, want []string) map[string]collectorRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _ := collectorFile(t, file)
		got := map[string]collectorRecord{}
		for _, r := range recs {
			if id, _ := r.Attrs["certlens.conn_id"].(string); r.Event == event {
				got[id] = r
			}
		}
		missing := 0
		for _, id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector's %s holds %d of the %d %s records %v", filepath.Base(file), len(want)-missing, len(want), event, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue reads one unlabelled series from /metrics.
func metricValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// TestOTLPExportToCollector runs certlens as a sidecar in front of openssl
// s_server, exporting to a real OpenTelemetry Collector (OTLP receiver,
// file exporter) built from the collector's modules, while curl connects
// with a client certificate. Every event reaches the collector's file with
// the attributes of the event on stdout; killing the collector loses no
// tunnel and the drop counter counts exactly the events that could not be
// sent; a collector started again on the same port gets the next ones.
func TestOTLPExportToCollector(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	colBin := peertest.OTelCollectorBinary(t)
	ca := pkitest.NewCA(t, "certlens otlp CA")
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.pem")
	pkitest.WritePEM(t, caPath, ca)
	certPath, keyPath := ca.NewClient(t, "otlp client").WriteFiles(t, dir, "client")
	upstream, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: ca.NewServer(t, "127.0.0.1"), ClientCAs: []*pkitest.Cert{ca}, Verify: 1, TLS12: true, WWW: true,
	})

	grpcAddr := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	out1 := filepath.Join(dir, "otelcol-1.json")
	col := peertest.StartOTelCollector(t, colBin, grpcAddr, out1)

	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServeEnv(t, []string{"CERTLENS_OTLP_TIMEOUT=1s", "CERTLENS_OTLP_METRICS_INTERVAL=500ms", "CERTLENS_OTLP_HEADERS=X-Tenant=fleet-a"},
		"serve", "--mode", "sidecar", "--listen", listen, "--upstream", upstream, "--admin-listen", admin,
		"--otlp-endpoint", "http://"+grpcAddr)
	sp.next("listening")

	// next reads stdout up to the next msg event, keeping the exporter's
	// own warnings and notes (which come between events at any time).
	var notes []map[string]any
	next := func(msg string) map[string]any {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-sp.lines:
				if !ok {
					t.Fatalf("certlens exited before %q; stderr: %s", msg, sp.stderr.String())
				}
				// The line's own fields, as written: what the exported
				// attributes are compared with, value for value.
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				if m["msg"] == "otlp export dropping events" || m["msg"] == "otlp export resumed" {
					notes = append(notes, m)
				}
				if m["msg"] == msg {
					return m
				}
			case <-timeout:
				t.Fatalf("no %q event; stderr: %s", msg, sp.stderr.String())
			}
		}
	}
	noted := func(msg string) (out []map[string]any) {
		for _, m := range notes {
			if m["msg"] == msg {
				out = append(out, m)
			}
		}
		return out
	}
	// conns runs n curls through the sidecar and returns the handshake and
	// connection closed events certlens wrote on stdout, by conn_id.
	conns := func(n int) (hs, closed map[string]map[string]any) {
		t.Helper()
		hs, closed = map[string]map[string]any{}, map[string]map[string]any{}
		for range n {
			out, err := exec.Command(curlBin, "-sS", "--max-time", "10", "--noproxy", "*", "--cacert", caPath, "--cert", certPath, "--key", keyPath,
				"--tlsv1.2", "--tls-max", "1.2", "https://"+listen+"/").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "s_server") {
				t.Fatalf("curl through the sidecar: %v\n%s", err, out)
			}
			h := next("handshake")
			c := next("connection closed")
			if h["conn_id"] != c["conn_id"] || !strings.HasPrefix(fmt.Sprint(c["reason"]), "client closed") && !strings.HasPrefix(fmt.Sprint(c["reason"]), "server closed") {
				t.Fatalf("tunnel: handshake %v, closed %v", h["conn_id"], c)
			}
			hs[h["conn_id"].(string)], closed[c["conn_id"].(string)] = h, c
		}
		return hs, closed
	}
	ids := func(m map[string]map[string]any) []string {
		var out []string
		for id := range m {
			out = append(out, id)
		}
		return out
	}

	// 1. Exported, attribute for attribute.
	hs, closed := conns(3)
	gotHS := waitRecords(t, out1, "certlens.handshake", ids(hs))
	gotClosed := waitRecords(t, out1, "certlens.connection_closed", ids(closed))
	for id, e := range hs {
		r := gotHS[id]
		leaf := e["client_cert"].(map[string]any)["chain"].([]any)[0].(map[string]any)
		cr := e["cert_request"].(map[string]any)
		for k, want := range map[string]any{
			"certlens.mode": "sidecar", "tls.protocol.name": "tls", "tls.protocol.version": "1.2", "tls.cipher": e["cipher_suite"],
			"network.community_id": e["community_id"], "certlens.verdict": e["verdict"], "certlens.verdict_certain": e["verdict_certain"],
			"certlens.visibility": "clear", "tls.client.subject": leaf["subject"], "tls.client.issuer": leaf["issuer"],
			"tls.client.not_after": leaf["not_after"], "tls.client.hash.sha256": strings.ToUpper(leaf["sha256"].(string)),
			"certlens.cert_request.issuer_count": int64(cr["issuer_count"].(float64)), "certlens.cert_request.issuer_bytes": int64(cr["issuer_bytes"].(float64)),
			"certlens.client_cert.sent": true, "server.address": "127.0.0.1", "server.port": int64(peertest.Port(t, upstream)),
			"client.address": "127.0.0.1",
		} {
			if got := r.Attrs[k]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %s = %v (%T), want %v", id, k, got, got, want)
			}
		}
		if issuers, _ := r.Attrs["certlens.cert_request.issuers"].([]any); len(issuers) != 1 || issuers[0] != cr["issuers"].([]any)[0] {
			t.Errorf("%s: certlens.cert_request.issuers = %v, want %v", id, r.Attrs["certlens.cert_request.issuers"], cr["issuers"])
		}
		if f, ok := r.Attrs["certlens.findings"].([]any); !ok || len(f) != len(e["findings"].([]any)) {
			t.Errorf("%s: certlens.findings = %v, want %v", id, r.Attrs["certlens.findings"], e["findings"])
		}
		for k, want := range map[string]string{"service.name": "certlens", "certlens.mode": "sidecar", "certlens.upstream": upstream} {
			if r.Resource[k] != want {
				t.Errorf("resource %s = %v, want %s", k, r.Resource[k], want)
			}
		}
		if id, _ := r.Resource["service.instance.id"].(string); len(id) != 36 {
			t.Errorf("resource service.instance.id = %q", id)
		}
		if h, _ := r.Resource["host.name"].(string); h == "" {
			t.Error("resource has no host.name")
		}
	}
	for id, c := range closed {
		r := gotClosed[id]
		if r.Attrs["certlens.bytes_server_to_client"] != int64(c["bytes_server_to_client"].(float64)) || r.Attrs["certlens.reason"] != c["reason"] ||
			r.Attrs["network.community_id"] != c["community_id"] || r.Attrs["certlens.verdict"] != c["verdict"] {
			t.Errorf("%s: closed record %v, event %v", id, r.Attrs, c)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, metrics := collectorFile(t, out1); metrics["certlens_handshakes_total"] && metrics["certlens_tunnels_total"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no certlens_handshakes_total / certlens_tunnels_total among the collector's metrics")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := metricValue(t, admin, "certlens_export_dropped_total"); d != 0 {
		t.Fatalf("certlens_export_dropped_total %v with the collector up", d)
	}

	// 2. The collector dies: the tunnels do not notice, the events of the
	// outage are counted as dropped, and said once.
	col.Kill(t)
	down := 4
	start := time.Now()
	hs2, closed2 := conns(down)
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("%d connections took %v with the collector down", down, el)
	}
	want := float64(2 * down) // a handshake and a connection closed each
	deadline = time.Now().Add(20 * time.Second)
	for metricValue(t, admin, "certlens_export_dropped_total") < want {
		if time.Now().After(deadline) {
			t.Fatalf("certlens_export_dropped_total %v, want %v", metricValue(t, admin, "certlens_export_dropped_total"), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for len(noted("otlp export dropping events")) == 0 {
		next("otlp export dropping events")
	}
	if warn := noted("otlp export dropping events"); len(warn) != 1 || warn[0]["endpoint"] != "http://"+grpcAddr || warn[0]["dropped"].(float64) < 1 {
		t.Errorf("drop warnings (one a minute at most): %v", warn)
	}

	// 3. A collector again on the same address: export resumes. While
	// exports fail certlens lets one event a second through to find out;
	// the others are dropped (and counted) until one gets through.
	out2 := filepath.Join(dir, "otelcol-2.json")
	peertest.StartOTelCollector(t, colBin, grpcAddr, out2)
	after := map[string]bool{}
	deadline = time.Now().Add(30 * time.Second)
	for {
		hs3, closed3 := conns(1)
		for id := range hs3 {
			after[id] = true
		}
		recs, _ := collectorFile(t, out2)
		got := 0
		for _, r := range recs {
			if _, ok := closed3[fmt.Sprint(r.Attrs["certlens.conn_id"])]; ok {
				got++
			}
		}
		if got > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The connections after the resumption: every one of their events reaches the collector.
	hs4, closed4 := conns(2)
	waitRecords(t, out2, "certlens.handshake", ids(hs4))
	waitRecords(t, out2, "certlens.connection_closed", ids(closed4))
	for len(noted("otlp export resumed")) == 0 {
		next("otlp export resumed")
	}
	// Every event certlens wrote is in one of the collectors' files or
	// counted as dropped, exactly: nothing lost silently, nothing counted
	// twice, and nothing dropped sent later.
	total := 2 * (len(hs) + len(hs2) + len(after) + len(hs4))
	r1, _ := collectorFile(t, out1)
	r2, _ := collectorFile(t, out2)
	seen := map[string]bool{}
	for _, r := range append(r1, r2...) {
		seen[r.Event+" "+fmt.Sprint(r.Attrs["certlens.conn_id"])] = true
		if _, lost := closed2[fmt.Sprint(r.Attrs["certlens.conn_id"])]; lost {
			t.Errorf("an event of the outage (%v) reached a collector; it was counted as dropped", r.Attrs["certlens.conn_id"])
		}
	}
	if d := metricValue(t, admin, "certlens_export_dropped_total"); int(d)+len(seen) != total {
		t.Errorf("%d events written, %d in the collectors' files, %v counted as dropped", total, len(seen), d)
	}
	if n := strings.Count(sp.stderr.String(), "otel"); n > 0 {
		t.Errorf("the SDK wrote to stderr: %s", sp.stderr.String())
	}
}

// TestFleetCollectorConfigValid: the fleet example's collector
// configuration is one a collector of the release line certlens is tested
// against accepts.
func TestFleetCollectorConfigValid(t *testing.T) {
	bin := peertest.OTelCollectorBinary(t)
	cfg, _ := filepath.Abs(filepath.Join("..", "..", "examples", "fleet", "otel-collector.yaml"))
	if out, err := exec.Command(bin, "validate", "--config", cfg).CombinedOutput(); err != nil {
		t.Errorf("otelcol validate %s: %v\n%s", cfg, err, out)
	}
}

// TestECSFormatEndToEnd: `certlens serve --log-format ecs` as a sidecar in
// front of openssl s_server, curl through it: stdout is ECS JSON lines,
// the handshake under its ECS names, and the --log-file copy stays
// DESIGN.md's JSON.
func TestECSFormatEndToEnd(t *testing.T) {
	curlBin := peertest.Require(t, "curl")
	ca := pkitest.NewCA(t, "certlens ecs CA")
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.pem")
	pkitest.WritePEM(t, caPath, ca)
	upstream, _ := peertest.OpenSSLServer(t, peertest.OpenSSLServerConfig{
		Cert: ca.NewServer(t, "127.0.0.1"), ClientCAs: []*pkitest.Cert{ca}, Verify: 1, TLS12: true, WWW: true,
	})
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	logFile := filepath.Join(dir, "events.jsonl")
	cmd := exec.Command(binary, "serve", "--mode", "sidecar", "--listen", listen, "--upstream", upstream, "--admin-listen=",
		"--log-format", "ecs", "--log-file", logFile)
	cmd.Env = []string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}
	cmd.Dir = t.TempDir()
	var out lockedBuf
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	peertest.WaitTCP(t, listen, 10*time.Second)
	// No client certificate: -verify 1 asks for one and goes on without it.
	if b, err := exec.Command(curlBin, "-sS", "--noproxy", "*", "--cacert", caPath, "--tlsv1.2", "--tls-max", "1.2", "https://"+listen+"/").CombinedOutput(); err != nil {
		t.Fatalf("curl through the sidecar: %v\n%s", err, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"connection-closed"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	var hs map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %s", line)
		}
		if m["@timestamp"] == nil || m["ecs"] == nil && m["ecs.version"] == nil {
			t.Errorf("not an ECS line: %s", line)
		}
		if m["message"] == "handshake" {
			hs = m
		}
	}
	if hs == nil {
		t.Fatalf("no handshake line:\n%s", out.String())
	}
	tlsObj, _ := hs["tls"].(map[string]any)
	ev, _ := hs["event"].(map[string]any)
	cl, _ := hs["certlens"].(map[string]any)
	// A request answered without a certificate: IIS would answer 403.7.
	if tlsObj["version"] != "1.2" || ev["action"] != "tls-handshake" || cl["verdict"] != "403.7" || ev["outcome"] != "failure" ||
		hs["network"].(map[string]any)["community_id"] == nil {
		t.Errorf("ECS handshake line: %v", hs)
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), `"msg":"handshake"`) || !strings.Contains(string(data), `"tls_version":"TLS 1.2"`) {
		t.Errorf("the log file is not DESIGN.md's JSON:\n%s", data)
	}
}

// lockedBuf is a process's stdout that the test reads while it runs.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
