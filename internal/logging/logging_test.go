package logging

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestUnwritableFile: a log file that refuses writes (a full disk: Linux's
// /dev/full) costs its own events only; stdout keeps every one, the loss
// is counted and reported once on stderr.
func TestUnwritableFile(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here to stand for a full disk")
	}
	var stdout, stderr bytes.Buffer
	log, closeLog, err := New(Options{Format: "json", Level: "info", File: "/dev/full", Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	before := WriteErrors()
	for range 5 {
		log.Info("handshake")
	}
	closeLog()
	if n := strings.Count(stdout.String(), `"msg":"handshake"`); n != 5 {
		t.Errorf("stdout has %d events, want 5", n)
	}
	if got := WriteErrors() - before; got != 5 {
		t.Errorf("%d write errors counted, want 5", got)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "certlens: log.file /dev/full:") || !strings.Contains(lines[0], "no space left on device") {
		t.Errorf("stderr %q, want one report naming the file and the error", stderr.String())
	}
}
