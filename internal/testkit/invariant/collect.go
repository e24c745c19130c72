// Package invariant holds what no certlens event may ever say, whatever the
// mode and the peer (issue 19: no verdict contradicts what certlens saw),
// and checks it over every event the test suite makes certlens write.
//
// Collection lives in the test harnesses, never in the product: when
// CERTLENS_EVENTS_DIR is set, each harness that reads certlens's events (a
// proxy's log sink, a certlens process's stdout, an analyze or probe run)
// hands them to a Source, which appends them to one file per test process
// in that directory. Check reads the directory once the suite is over.
// Only tests import this package.
package invariant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// DirEnv names the directory the events are collected in; unset, nothing is.
const DirEnv = "CERTLENS_EVENTS_DIR"

// record is one collected line: which source wrote the event, and the
// event as certlens wrote it. conn_ids are unique per source only (each
// proxy, process and analyze run counts from 1).
type record struct {
	Source string          `json:"source"`
	Event  json.RawMessage `json:"event"`
}

// files are this process's collection files, by directory (one, but for
// this package's own tests), opened on first use.
var files struct {
	sync.Mutex
	m      map[string]*os.File
	warned bool
}

var sources atomic.Int64

// Source is one stream of events (one proxy, one certlens process, one
// analyze run). A nil Source, as NewSource returns when DirEnv is unset,
// collects nothing.
type Source struct {
	id      string
	mu      sync.Mutex
	partial []byte
}

// NewSource starts a source for the events of tb's harness, or returns
// nil when DirEnv is unset.
func NewSource(tb testing.TB) *Source {
	if os.Getenv(DirEnv) == "" {
		return nil
	}
	return &Source{id: fmt.Sprintf("%d.%d %s", os.Getpid(), sources.Add(1), tb.Name())}
}

// Write takes JSON lines as a zap sink or a process's stdout gives them; a
// line cut across writes is joined, and what is not a JSON object (a
// report for people, a console log) is left out.
func (s *Source) Write(p []byte) (int, error) {
	if s == nil {
		return len(p), nil
	}
	s.mu.Lock()
	s.partial = append(s.partial, p...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, bytes.Clone(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) == 0 {
		s.partial = nil
	}
	s.mu.Unlock()
	for _, l := range lines {
		s.Line(l)
	}
	return len(p), nil
}

// Sync makes Source a zapcore.WriteSyncer.
func (s *Source) Sync() error { return nil }

// Line collects one JSON line, if it is an event.
func (s *Source) Line(line []byte) {
	line = bytes.TrimSpace(line)
	if s == nil || len(line) == 0 || line[0] != '{' || !json.Valid(line) {
		return
	}
	s.append(line)
}

// Event collects an event built as a struct (an analyze or probe event,
// internal/event's types) under msg, as certlens writes it.
func (s *Source) Event(msg string, v any) {
	if s == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[0] != '{' {
		return
	}
	m, _ := json.Marshal(msg)
	line := append([]byte(`{"msg":`), m...)
	if len(b) > 2 {
		line = append(line, ',')
	}
	s.append(append(line, b[1:]...))
}

func (s *Source) append(event []byte) {
	b, err := json.Marshal(record{Source: s.id, Event: event})
	if err != nil {
		return
	}
	dir := os.Getenv(DirEnv)
	files.Lock()
	defer files.Unlock()
	f := files.m[dir]
	if f == nil {
		f, err = os.OpenFile(filepath.Join(dir, fmt.Sprintf("events-%d.jsonl", os.Getpid())), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			// A sink cannot fail a test: say it once, and the checker
			// counts fewer events.
			if !files.warned {
				fmt.Fprintf(os.Stderr, "invariant: events not collected: %v\n", err)
				files.warned = true
			}
			return
		}
		if files.m == nil {
			files.m = map[string]*os.File{}
		}
		files.m[dir] = f
	}
	_, _ = f.Write(append(b, '\n'))
}
