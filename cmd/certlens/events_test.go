package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/certlens/certlens/internal/event"
)

// eventLine is one JSON line certlens wrote: its head, and the event type
// its msg names decoded (nil for lines no event type describes).
type eventLine struct {
	TS        string           `json:"ts"`
	Level     string           `json:"level"`
	Msg       string           `json:"msg"`
	Handshake *event.Handshake `json:"-"` // msg "handshake"
	Closed    *event.Closed    `json:"-"` // msg "connection closed"
	Raw       []byte           `json:"-"` // the line as written
}

// decodeLine decodes one line of certlens's JSON output.
func decodeLine(line []byte) (eventLine, error) {
	l := eventLine{Raw: append([]byte(nil), line...)}
	if err := json.Unmarshal(line, &l); err != nil {
		return l, fmt.Errorf("not a JSON line: %w", err)
	}
	var v any
	switch l.Msg {
	case "handshake":
		l.Handshake = &event.Handshake{}
		v = l.Handshake
	case "connection closed":
		l.Closed = &event.Closed{}
		v = l.Closed
	default:
		return l, nil
	}
	if err := json.Unmarshal(line, v); err != nil {
		return l, fmt.Errorf("%s event does not decode into its type: %w", l.Msg, err)
	}
	return l, nil
}

// fields is the line as a map, for lines no event type describes.
func (l eventLine) fields(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(l.Raw, &m); err != nil {
		t.Fatalf("%v: %s", err, l.Raw)
	}
	return m
}

// findingIDs are the ids of a handshake event's findings.
func findingIDs(h *event.Handshake) []string {
	var out []string
	for _, f := range h.Findings {
		out = append(out, f.ID)
	}
	return out
}
