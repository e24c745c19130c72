package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersionStamped builds certlens as .ci/release does, the version
// and commit given to the linker, and reads them back from `certlens
// version`; the test binary's plain build names its commit too, or says it
// is unknown.
func TestVersionStamped(t *testing.T) {
	const v, c = "v1.2.3-test", "0123456789abcdef0123456789abcdef01234567"
	stamped := filepath.Join(t.TempDir(), "certlens")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+v+" -X main.commit="+c, "-o", stamped, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(stamped, "version").Output()
	want := "certlens " + v + " commit " + c + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if err != nil || string(out) != want {
		t.Errorf("stamped version: %v %q, want %q", err, out, want)
	}

	plain, _, code := run(t, nil, "version")
	re := regexp.MustCompile(`^certlens \S+ commit (unknown|[0-9a-f]{40}(-dirty)?) go1\.\S+ \S+/\S+\n$`)
	if code != 0 || !re.MatchString(plain) {
		t.Errorf("plain build's version: exit %d %q, want it to match %s", code, plain, re)
	}
	if strings.Contains(plain, c) {
		t.Errorf("plain build's version %q carries the stamp of another build", plain)
	}
}
