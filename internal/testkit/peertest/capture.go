package peertest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Capture is a tshark capture of TCP traffic, for checking certlens
// against what Wireshark decodes from the same connections, and for
// testing analyze on captures real tools wrote.
type Capture struct {
	tb     testing.TB
	p      *Process
	path   string
	marker net.Listener
	mark   string // " PORT " as tshark's packet summaries show the marker port
}

// CaptureOptions say what a capture records; the zero value is
// CaptureLoopback's.
type CaptureOptions struct {
	Interface string // tshark -i: "lo" when empty, "any" for every interface
	LinkType  string // tshark -y (LINUX_SLL or LINUX_SLL2 on any); "" the interface's default
	Format    string // tshark -F: "pcapng" when empty, or "pcap"
}

// CaptureLoopback starts tshark on the loopback interface ("lo") for TCP
// traffic to or from any of ports, written as pcapng to the test's temp
// dir, and returns once packets are being captured. Stop ends it;
// otherwise it is stopped with the test. Capturing needs root or the
// capture capabilities (CI runs as root).
func CaptureLoopback(tb testing.TB, ports ...int) *Capture {
	tb.Helper()
	return StartCapture(tb, CaptureOptions{}, ports...)
}

// StartCapture is CaptureLoopback with the interface, link type and file
// format of opts.
func StartCapture(tb testing.TB, opts CaptureOptions, ports ...int) *Capture {
	tb.Helper()
	if opts.Interface == "" {
		opts.Interface = "lo"
	}
	if opts.Format == "" {
		opts.Format = "pcapng"
	}
	bin := Require(tb, "tshark")
	if len(ports) == 0 {
		tb.Fatal("peertest: a capture needs at least one port")
	}
	// tshark reports "Capturing on" before its filter is in place, so
	// readiness (and, at Stop, completeness) is proven by connecting to a
	// marker port of our own until tshark prints the packets.
	marker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("peertest: marker listener: %v", err)
	}
	tb.Cleanup(func() { marker.Close() })
	go func() {
		for {
			c, err := marker.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	markerPort := marker.Addr().(*net.TCPAddr).Port
	filter := make([]string, 0, len(ports)+1)
	for _, p := range append(ports, markerPort) {
		filter = append(filter, "tcp port "+strconv.Itoa(p))
	}
	dir := tb.TempDir()
	path := filepath.Join(dir, "capture."+opts.Format)
	// -P -l: print a summary of each packet as it is captured, while
	// writing the file, so the marker can be seen.
	args := []string{"-i", opts.Interface, "-n", "-f", strings.Join(filter, " or "), "-F", opts.Format, "-w", path, "-P", "-l"}
	if opts.LinkType != "" {
		args = append(args, "-y", opts.LinkType)
	}
	c := &Capture{tb: tb, path: path, marker: marker, mark: " " + strconv.Itoa(markerPort) + " "}
	c.p = Start(tb, bin, args, WithDir(dir))
	// Generous: tshark on "any" of a loaded machine takes long to start.
	c.sync(90 * time.Second)
	return c
}

// sync connects to the marker port until tshark shows a packet of that
// connection: everything sent before is then in the capture too.
func (c *Capture) sync(timeout time.Duration) {
	c.tb.Helper()
	seen := strings.Count(c.p.Output(), c.mark)
	deadline := time.Now().Add(timeout)
	for {
		_ = probe(c.marker.Addr().String())
		wait := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(wait) {
			if strings.Count(c.p.Output(), c.mark) > seen {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		if c.p.Exited() || time.Now().After(deadline) {
			c.tb.Fatalf("peertest: tshark shows no packet to marker port%safter %v:\n%s", c.mark, timeout, c.p.tail(tailBytes))
		}
	}
}

// Stop ends the capture, once every packet sent so far is in it, and
// returns the path of the pcapng file.
func (c *Capture) Stop() string {
	c.tb.Helper()
	c.sync(60 * time.Second)
	if err := c.p.Interrupt(15 * time.Second); err != nil {
		c.tb.Fatalf("peertest: stop tshark: %v\n%s", err, c.p.tail(tailBytes))
	}
	if fi, err := os.Stat(c.path); err != nil || fi.Size() == 0 {
		c.tb.Fatalf("peertest: tshark wrote no capture (%v):\n%s", err, c.p.tail(tailBytes))
	}
	return c.path
}
