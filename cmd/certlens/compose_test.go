package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/certlens/certlens/internal/testkit/peertest"
)

// TestComposeFileValid checks docker-compose.yml with Debian's docker-compose,
// which validates without a Docker engine.
func TestComposeFileValid(t *testing.T) {
	bin := peertest.Require(t, "docker-compose")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	cmd := exec.Command(bin, "-f", filepath.Join(root, "examples", "fleet", "docker-compose.yml"), "config")
	cmd.Dir = filepath.Join(root, "examples", "fleet")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "otel-collector") {
		t.Errorf("docker-compose config of examples/fleet: %v\n%s", err, out)
	}
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

// TestDockerfileBuilds builds the image where a Docker engine runs. It
// skips elsewhere, CI included (no engine there, and the build pulls
// golang:1.26): it is not a peer that apt-get installs.
func TestDockerfileBuilds(t *testing.T) {
	const where = "run `go test ./cmd/certlens -run TestDockerfileBuilds` where `docker info` answers"
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker not installed, so no Docker engine to build the Dockerfile: " + where)
	}
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine here (docker info: %s): %s", lastLine(string(out)), where)
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

// TestShippedCommandsStart runs the serve commands the Dockerfile and the
// compose file ship (with free ports): they must pass the configuration's
// checks, the open-relay guard included, and listen.
func TestShippedCommandsStart(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	docker, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var cmdLine string
	for _, line := range strings.Split(strings.ReplaceAll(string(docker), "\\\n", " "), "\n") {
		if strings.HasPrefix(line, "CMD ") {
			cmdLine = strings.TrimPrefix(line, "CMD ")
		}
	}
	var dockerCmd []string
	if err := json.Unmarshal([]byte(cmdLine), &dockerCmd); err != nil {
		t.Fatalf("Dockerfile CMD %q: %v", cmdLine, err)
	}
	cmds := map[string][]string{"Dockerfile": dockerCmd}
	// The fleet example's sidecars export to a collector that is not there
	// (its name does not resolve here): they must start all the same.
	for _, file := range []string{"docker-compose.yml", "examples/fleet/docker-compose.yml"} {
		compose, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Services map[string]struct {
				Command []string `yaml:"command"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(compose, &doc); err != nil {
			t.Fatal(err)
		}
		for name, svc := range doc.Services {
			if len(svc.Command) > 0 && svc.Command[0] == "serve" {
				cmds[file+" "+name] = svc.Command
			}
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("found %d serve commands, want the Dockerfile's, two of docker-compose.yml's and two of the fleet example's", len(cmds))
	}
	for name, args := range cmds {
		t.Run(name, func(t *testing.T) {
			args = slices.Clone(args)
			for i, a := range args {
				switch {
				case strings.HasPrefix(a, "0.0.0.0:"):
					args[i] = "0.0.0.0:" + strconv.Itoa(peertest.FreePort(t))
				case strings.HasPrefix(a, "/logs/"):
					args[i] = filepath.Join(t.TempDir(), filepath.Base(a))
				}
			}
			sp := startServe(t, args...)
			sp.next("listening")
		})
	}
}
