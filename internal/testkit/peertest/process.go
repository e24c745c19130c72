package peertest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tailBytes is how much of a peer's output a failed test shows: enough for
// OpenSSL's error stack, short enough to keep the log readable.
const tailBytes = 4096

// Process is a peer started for one test. Its stdout and stderr go to one
// buffer; it is stopped when the test ends, and its output tail is logged if
// the test failed.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Stdin writes to the process's standard input when the process was
	// started WithStdinPipe, e.g. to type commands to openssl s_server.
	Stdin io.WriteCloser

	out  syncBuffer
	done chan struct{}
	err  error // valid after done is closed
}

type startConfig struct {
	dir       string
	env       []string
	stdin     io.Reader
	stdinPipe bool
	stdout    io.Writer
	user      string
}

// StartOption configures Start.
type StartOption func(*startConfig)

// WithDir runs the process in dir.
func WithDir(dir string) StartOption { return func(c *startConfig) { c.dir = dir } }

// WithEnv adds KEY=VALUE pairs to the inherited environment.
func WithEnv(kv ...string) StartOption {
	return func(c *startConfig) { c.env = append(c.env, kv...) }
}

// WithStdin feeds r to the process's standard input; at r's end the process
// sees end of file.
func WithStdin(r io.Reader) StartOption { return func(c *startConfig) { c.stdin = r } }

// WithStdinPipe keeps standard input open as Process.Stdin, for peers that
// quit at end of file or take commands while running.
func WithStdinPipe() StartOption { return func(c *startConfig) { c.stdinPipe = true } }

// WithUser runs the process as the named system user when the test runs as
// root: servers such as PostgreSQL refuse to run as root. Elsewhere it
// changes nothing.
func WithUser(name string) StartOption { return func(c *startConfig) { c.user = name } }

// WithStdout sends standard output to w instead of the output buffer, for
// peers whose stdout is a result (chromium --dump-dom) rather than a log;
// stderr still goes to the buffer and the failure tail.
func WithStdout(w io.Writer) StartOption { return func(c *startConfig) { c.stdout = w } }

// Start runs name (a binary on PATH, skipped via Require when missing, or a
// path) with args. The process gets its own process group so that stopping
// it also stops whatever it forked, and nothing else.
func Start(tb testing.TB, name string, args []string, opts ...StartOption) *Process {
	tb.Helper()
	var cfg startConfig
	for _, o := range opts {
		o(&cfg)
	}
	path := name
	if !strings.ContainsRune(name, os.PathSeparator) {
		path = Require(tb, name)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = cfg.dir
	if len(cfg.env) > 0 {
		cmd.Env = append(os.Environ(), cfg.env...)
	}
	p := &Process{Name: filepath.Base(path), Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	if cfg.stdout != nil {
		cmd.Stdout = cfg.stdout
	}
	switch {
	case cfg.stdinPipe:
		w, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatalf("peertest: %s stdin: %v", p.Name, err)
		}
		p.Stdin = w
	case cfg.stdin != nil:
		cmd.Stdin = cfg.stdin
	}
	setProcessGroup(cmd)
	if cfg.user != "" {
		runAs(tb, cmd, cfg.user)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("peertest: start %s: %v", path, err)
	}
	tb.Logf("peertest: started %s (pid %d): %s", p.Name, cmd.Process.Pid, strings.Join(cmd.Args, " "))
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("peertest: %s output (last %d bytes):\n%s", p.Name, tailBytes, p.tail(tailBytes))
		}
	})
	return p
}

// Output returns everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ErrTimeout is returned by Wait when the process outlived its timeout.
var ErrTimeout = errors.New("process did not exit in time")

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil on status 0). On timeout it stops the process and returns an
// error wrapping ErrTimeout.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.stop()
		return fmt.Errorf("%s after %v: %w", p.Name, timeout, ErrTimeout)
	}
}

// WaitOutput waits up to timeout for substr to appear in the output, e.g. a
// server's banner or a client's "connected" line.
func (p *Process) WaitOutput(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		// Checked after Exited so that output written just before exit counts.
		exited := p.Exited()
		if strings.Contains(p.out.String(), substr) {
			return true
		}
		if exited || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Interrupt sends SIGINT to the process alone, not its group, and waits up
// to timeout for it to exit; then it stops the group. A capture (tshark)
// needs this: interrupted, tshark tells its dumpcap child to stop and
// flushes the file, whereas a signal to the whole group can kill dumpcap
// before the last packets are written.
func (p *Process) Interrupt(timeout time.Duration) error {
	if p.Exited() {
		return p.err
	}
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		// No SIGINT on this platform (Windows): nothing to flush gracefully.
		p.stop()
		return p.err
	}
	return p.Wait(timeout)
}

// stop asks the process group to terminate, then kills it if it lingers.
func (p *Process) stop() {
	if p.Stdin != nil {
		p.Stdin.Close()
	}
	if p.Exited() {
		return
	}
	signalGroup(p.Cmd, false)
	select {
	case <-p.done:
		return
	case <-time.After(2 * time.Second):
	}
	signalGroup(p.Cmd, true)
	<-p.done
}

func (p *Process) tail(n int) string { return tailOf(p.out.String(), n) }

// syncBuffer lets the exec copier goroutines write while tests read.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
