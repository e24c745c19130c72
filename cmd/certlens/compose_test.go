package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/peertest"
)

// TestComposeFileValid checks docker-compose.yml with Debian's docker-compose,
// which validates without a Docker engine.
func TestComposeFileValid(t *testing.T) {
	bin := peertest.Require(t, "docker-compose")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	for _, profile := range []string{"sidecar", "proxy"} {
		cmd := exec.Command(bin, "--profile", profile, "-f", filepath.Join(root, "docker-compose.yml"), "config")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose --profile %s config: %v\n%s", profile, err, out)
		}
		if !strings.Contains(string(out), "certlens-"+profile) {
			t.Errorf("profile %s lacks its service:\n%s", profile, out)
		}
	}
}

// TestDockerfileBuilds builds the image where a Docker engine runs.
func TestDockerfileBuilds(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker not installed: the Dockerfile is built where an engine exists")
	}
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine here (docker info: %s): the Dockerfile is built where one runs", lastLine(string(out)))
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	if out, err := exec.Command(docker, "build", "-t", "certlens:test", root).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func TestHealthCommand(t *testing.T) {
	_, stderr, code := run(t, nil, "health", "http://127.0.0.1:1/healthz")
	if code != 1 || !strings.Contains(stderr, "certlens: health:") {
		t.Errorf("health against nothing: exit %d, %q", code, stderr)
	}
}
