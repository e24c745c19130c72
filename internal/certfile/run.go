package certfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// runner runs a store's own command-line tool (certutil, security); tests
// replace it to feed recorded output.
type runner interface {
	run(ctx context.Context, name string, args ...string) ([]byte, error)
}

type execRunner struct{}

// run returns the tool's standard output; its error carries the first
// line of what it wrote to standard error.
func (execRunner) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return nil, err
	case errors.As(err, &ee):
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		return out, &toolError{name: name, msg: msg, code: ee.ExitCode()}
	}
	return out, err
}

// toolError is a store tool's failure, in its own words.
type toolError struct {
	name, msg string
	code      int
}

func (e *toolError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%s exited with status %d", e.name, e.code)
	}
	return e.name + ": " + e.msg
}
