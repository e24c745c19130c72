package capture

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

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
