package peertest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// otelcolModule is the directory of the test collector's own Go module
// (internal/testkit/otelcol): the OTLP receiver and the file exporter of the
// OpenTelemetry Collector, at one release line, kept out of certlens's
// go.mod.
func otelcolModule(tb testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("peertest: cannot locate the otelcol module")
	}
	return filepath.Join(filepath.Dir(file), "..", "otelcol")
}

// OTelCollectorBinary builds the test collector, once per content of its
// module (go.mod, go.sum, main.go) into the user's cache directory, and
// returns its path. The first build downloads the collector's modules
// and takes a few minutes on two cores; later ones are a cache hit. A
// machine that cannot build it (no Go module proxy) skips the test, or
// fails it under CERTLENS_REQUIRE_PEERS=1.
func OTelCollectorBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		// A cold build takes minutes: the bare suite (-short) leaves it out.
		tb.Skip("the test OpenTelemetry Collector is built from source: not with -short")
	}
	mod := otelcolModule(tb)
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(mod, name))
		if err != nil {
			tb.Fatalf("peertest: otelcol module: %v", err)
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "certlens-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, "otelcol-"+hex.EncodeToString(h.Sum(nil))[:16])
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	// Two test binaries may want it at once: one builds, the other waits.
	unlock := lockFile(tb, bin+".lock")
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		cannotBuildCollector(tb, "go is not on PATH")
		return ""
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", bin+".tmp", ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		cannotBuildCollector(tb, fmt.Sprintf("go build: %v: %s", err, tailOf(string(out), 2000)))
		return ""
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("peertest: built the OpenTelemetry Collector (internal/testkit/otelcol) in %s: %s", time.Since(start).Round(time.Second), bin)
	return bin
}

func cannotBuildCollector(tb testing.TB, why string) {
	tb.Helper()
	// Not a package to install: what it needs is the Go module proxy (or a
	// module cache that holds the collector's modules).
	msg := "cannot build the test OpenTelemetry Collector (cd internal/testkit/otelcol && go build; it needs the Go module proxy): " + why
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s (%s=1 requires every peer)", msg, RequireEnv)
	}
	tb.Skip(msg)
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// OTelCollector is a running test collector: OTLP/gRPC on GRPC, OTLP/HTTP
// on HTTP, every log record and metric it receives appended to Out as the
// file exporter's JSON lines (one OTLP export request a line).
type OTelCollector struct {
	GRPC, HTTP, Out string
	*Process
}

// StartOTelCollector starts bin (OTelCollectorBinary) on grpcAddr and a free
// HTTP port, writing to out.
func StartOTelCollector(tb testing.TB, bin, grpcAddr, out string) *OTelCollector {
	tb.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
exporters:
  file:
    path: %q
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
    metrics:
      receivers: [otlp]
      exporters: [file]
`, grpcAddr, httpAddr, out)
	name := filepath.Join(tb.TempDir(), "otelcol.yaml")
	if err := os.WriteFile(name, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := Start(tb, bin, []string{"--config", name})
	deadline := time.Now().Add(30 * time.Second)
	for probe(grpcAddr) != nil || probe(httpAddr) != nil {
		if p.Exited() || time.Now().After(deadline) {
			tb.Fatalf("otelcol did not start: %s", tailOf(p.Output(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &OTelCollector{GRPC: grpcAddr, HTTP: httpAddr, Out: out, Process: p}
}

// Kill ends the collector at once, as a crash or an OOM kill would: what
// it had not written is lost with it.
func (c *OTelCollector) Kill(tb testing.TB) {
	tb.Helper()
	_ = c.Cmd.Process.Kill()
	if err := c.Wait(10 * time.Second); errors.Is(err, ErrTimeout) {
		tb.Fatal("otelcol did not die")
	}
}
