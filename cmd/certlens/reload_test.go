//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/certlens/certlens/internal/testkit/peertest"
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
	write := func(body string) { t.Helper(); writeConfig(t, file, body) }
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
	closed := sp.nextClosed()
	if closed.Mode != "sidecar" || closed.Target != up.Addr().String() || !strings.Contains(closed.NotTLS, "ping") {
		t.Errorf("closed %+v", closed)
	}
	resp, err := (&netHTTP{}).get("http://" + admin + "/readyz")
	if err != nil || !strings.Contains(resp, "ready") {
		t.Errorf("readyz: %q %v", resp, err)
	}
}

// writeConfig replaces file the way editors do (write, then rename), so
// the watcher sees it replaced.
func writeConfig(t *testing.T, file, body string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAppliesOrNamesEveryChange: a changed Live key takes effect
// (tunnel.idle_timeout, for tunnels opened after the reload), and each
// changed Restart key is named in a warning; none is ignored silently.
func TestReloadAppliesOrNamesEveryChange(t *testing.T) {
	upstream := peertest.TCPServer(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	_, port, _ := net.SplitHostPort(upstream)
	file := filepath.Join(t.TempDir(), "certlens.yaml")
	listen := "127.0.0.1:" + strconv.Itoa(peertest.FreePort(t))
	base := "listen: " + listen + "\nadmin_listen: \"\"\nallow_ports: \"" + port + "\"\n"
	writeConfig(t, file, base+"limits:\n  max_conns: 100\n")
	sp := startServe(t, "serve", "--config", file)
	sp.next("listening")

	writeConfig(t, file, base+"limits:\n  max_conns: 50\ndecrypt:\n  wait: 2s\ntunnel:\n  idle_timeout: 300ms\n")
	var restart []string
	for range 2 {
		w := sp.next("config reload: change needs a restart")
		if w["level"] != "warn" {
			t.Errorf("restart warning at level %v", w["level"])
		}
		restart = append(restart, fmt.Sprint(w["key"]))
	}
	if want := []string{"decrypt.wait", "limits.max_conns"}; !slices.Equal(restart, want) {
		t.Errorf("restart warnings name %q, want %q", restart, want)
	}
	ev := sp.next("config reloaded")
	if fmt.Sprint(ev["applied"]) != "[tunnel.idle_timeout]" || fmt.Sprint(ev["needs_restart"]) != "[decrypt.wait limits.max_conns]" {
		t.Errorf("reloaded event %v", ev)
	}

	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", upstream, upstream)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("CONNECT: %q %v", line, err)
	}
	start := time.Now()
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the idle tunnel was not closed: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("idle tunnel closed after %s; the reloaded tunnel.idle_timeout is 300ms", took)
	}
	if closed := sp.nextClosed(); closed.Reason != "idle timeout" {
		t.Errorf("connection closed %v", closed)
	}
}

// TestReloadRefusesOpenRelay: access.users is Live, but a reload that drops
// the users of a proxy listening beyond loopback is rejected, even when
// the file also moves listen to loopback: listen needs a restart, and the
// running listener, not the file's, is what the new access is judged with.
func TestReloadRefusesOpenRelay(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "certlens.yaml")
	port := strconv.Itoa(peertest.FreePort(t))
	writeConfig(t, file, "listen: 0.0.0.0:"+port+"\nadmin_listen: \"\"\naccess:\n  users: ['alice:"+string(hash)+"']\n")
	sp := startServe(t, "serve", "--config", file)
	sp.next("listening")

	writeConfig(t, file, "listen: 127.0.0.1:"+port+"\nadmin_listen: \"\"\n")
	rej := sp.next("config reload rejected")
	if !strings.Contains(fmt.Sprint(rej["error"]), "config: listen: 0.0.0.0:"+port+" is reachable from other machines and nothing limits who may use the proxy") {
		t.Errorf("rejection %v", rej)
	}
	if got := connectStatus(t, "127.0.0.1:"+port, "127.0.0.1:1"); !strings.Contains(got, " 407 ") {
		t.Errorf("after the rejected reload, a CONNECT without credentials: %q, want 407", got)
	}
}
