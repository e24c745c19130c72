package capture

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/peertest"
)

// liveCapture is tshark recording an interface while a test makes traffic,
// so that analyze is tested on captures real tools wrote, never on files
// made elsewhere.
type liveCapture struct {
	t      *testing.T
	p      *peertest.Process
	path   string
	marker net.Listener
	mark   string
}

// startCapture runs tshark on iface (lo, any) for TCP to or from ports,
// writing format (pcap, pcapng) with the link-layer type linkType (""
// for the interface's default; LINUX_SLL or LINUX_SLL2 on any). It
// returns once packets are being captured: tshark says it is capturing
// before its filter is in place, so a connection to a marker port of the
// test's own is made until tshark prints it.
func startCapture(t *testing.T, iface, linkType, format string, ports ...int) *liveCapture {
	t.Helper()
	bin := peertest.Require(t, "tshark")
	marker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { marker.Close() })
	go func() {
		for {
			c, err := marker.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	mport := marker.Addr().(*net.TCPAddr).Port
	var filter []string
	for _, p := range append(ports, mport) {
		filter = append(filter, "tcp port "+strconv.Itoa(p))
	}
	dir := t.TempDir()
	c := &liveCapture{t: t, path: filepath.Join(dir, "capture."+format), marker: marker, mark: " " + strconv.Itoa(mport) + " "}
	args := []string{"-i", iface, "-n", "-f", strings.Join(filter, " or "), "-F", format, "-w", c.path, "-P", "-l"}
	if linkType != "" {
		args = append(args, "-y", linkType)
	}
	c.p = peertest.Start(t, bin, args, peertest.WithDir(dir))
	c.sync(90 * time.Second)
	return c
}

// sync connects to the marker port until tshark shows a new packet of it:
// everything sent before is then in the capture too.
func (c *liveCapture) sync(timeout time.Duration) {
	c.t.Helper()
	seen := strings.Count(c.p.Output(), c.mark)
	deadline := time.Now().Add(timeout)
	for {
		if conn, err := net.Dial("tcp", c.marker.Addr().String()); err == nil {
			conn.Close()
		}
		for wait := time.Now().Add(200 * time.Millisecond); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
			if strings.Count(c.p.Output(), c.mark) > seen {
				return
			}
		}
		if c.p.Exited() || time.Now().After(deadline) {
			c.t.Fatalf("tshark shows no packet to the marker port after %v:\n%s", timeout, c.p.Output())
		}
	}
}

// stop ends the capture once everything sent so far is in it and returns
// the file's path.
func (c *liveCapture) stop() string {
	c.t.Helper()
	c.sync(60 * time.Second)
	if err := c.p.Interrupt(15 * time.Second); err != nil {
		c.t.Fatalf("stop tshark: %v\n%s", err, c.p.Output())
	}
	if fi, err := os.Stat(c.path); err != nil || fi.Size() == 0 {
		c.t.Fatalf("tshark wrote no capture (%v):\n%s", err, c.p.Output())
	}
	return c.path
}

// tsharkFields reads a capture with tshark and returns, per packet matching
// filter, the values of fields.
func tsharkFields(t *testing.T, path, filter string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-o", "gui.max_tree_depth:5000", "-n", "-r", path, "-Y", filter, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(peertest.Require(t, "tshark"), args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rows = append(rows, strings.Split(sc.Text(), "|"))
	}
	return rows
}

// analyzeFile runs Analyze on a file and returns its events.
func analyzeFile(t *testing.T, path string, opts Options) ([]Event, Stats) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if opts.Name == "" {
		opts.Name = path
	}
	var evs []Event
	st, err := analyze(t, f, opts, func(e Event) { evs = append(evs, e) })
	if err != nil {
		t.Fatalf("Analyze %s: %v", path, err)
	}
	return evs, st
}
