package main

import (
	"testing"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/event"
)

// TestServeModesAreEventModes: serve hands the mode key's value on as the
// events' mode (event.Mode(cfg.Mode)), so config's names must be event's.
func TestServeModesAreEventModes(t *testing.T) {
	for key, want := range map[string]event.Mode{
		config.ModeObserve:   event.ModeObserve,
		config.ModeIntercept: event.ModeIntercept,
		config.ModeSidecar:   event.ModeSidecar,
	} {
		if event.Mode(key) != want {
			t.Errorf("mode %q is %q in the events", key, want)
		}
	}
}
