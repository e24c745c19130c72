//go:build unix

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/certlens/certlens/internal/peertest"
)

// connectStatus sends a CONNECT through the proxy and returns the status line.
func connectStatus(t *testing.T, proxyAddr, target string) string {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, 12)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

func TestReloadKeepsOldConfigOnBadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "certlens.yaml")
	write := func(body string) {
		t.Helper()
		// Write then rename, as editors do; the watcher sees the file replaced.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	write("listen: " + listen + "\nadmin_listen: \"\"\nallow_ports: \"443\"\n")
	sp := startServe(t, "serve", "--config", file)
	sp.next("listening")
	// Port 1 is closed: an allowed CONNECT fails to dial (502), a refused one is 403.
	if got := connectStatus(t, listen, "127.0.0.1:1"); !strings.Contains(got, " 403 ") {
		t.Fatalf("CONNECT to a port outside allow_ports: %q", got)
	}

	write("listen: " + listen + "\nadmin_listen: \"\"\nallow_ports: \"1,abc\"\n")
	rej := sp.next("config reload rejected")
	if !strings.Contains(fmt.Sprint(rej["error"]), `allow_ports: "abc" is not a port or range`) {
		t.Errorf("rejection %v", rej)
	}
	if got := connectStatus(t, listen, "127.0.0.1:1"); !strings.Contains(got, " 403 ") {
		t.Errorf("after a bad file the old allow_ports must hold: %q", got)
	}

	write("listen: " + listen + "\nadmin_listen: \"\"\nallow_ports: \"1,443\"\nlog:\n  level: debug\n")
	if ev := sp.next("config reloaded"); ev["allow_ports"] != "1,443" || ev["log_level"] != "debug" || ev["trigger"] != "file changed" {
		t.Errorf("reloaded %v", ev)
	}
	if got := connectStatus(t, listen, "127.0.0.1:1"); !strings.Contains(got, " 502 ") {
		t.Errorf("after reload port 1 is allowed, the dial fails: %q", got)
	}

	if err := sp.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if ev := sp.next("config reloaded"); ev["trigger"] != "signal" {
		t.Errorf("SIGHUP reload %v", ev)
	}
}

func TestSidecarModeBinary(t *testing.T) {
	// A plain TCP upstream: the sidecar relays whatever the protocol.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	sp := startServe(t, "serve", "--mode", "sidecar", "--listen", listen, "--upstream", up.Addr().String(), "--admin-listen", admin)
	if l := sp.next("listening"); l["mode"] != "sidecar" || l["upstream"] != up.Addr().String() {
		t.Errorf("listening %v", l)
	}
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo through the sidecar: %q %v", buf, err)
	}
	c.Close()
	closed := sp.next("connection closed")
	if closed["mode"] != "sidecar" || closed["target"] != up.Addr().String() || !strings.Contains(fmt.Sprint(closed["not_tls"]), "ping") {
		t.Errorf("closed %v", closed)
	}
	resp, err := (&netHTTP{}).get("http://" + admin + "/readyz")
	if err != nil || !strings.Contains(resp, "ready") {
		t.Errorf("readyz: %q %v", resp, err)
	}
}
