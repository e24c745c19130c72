package capture

import (
	"io"
	"testing"

	"github.com/certlens/certlens/internal/testkit/invariant"
)

// analyze is Analyze for the tests: every event it writes is also handed
// to the suite's invariant check (internal/testkit/invariant), as analyze --json
// would write it.
func analyze(tb testing.TB, r io.Reader, opts Options, emit func(Event)) (Stats, error) {
	src := invariant.NewSource(tb)
	return Analyze(r, opts, func(e Event) {
		switch {
		case e.Handshake != nil:
			src.Event("handshake", e.Handshake)
		case e.Closed != nil:
			src.Event("connection closed", e.Closed)
		}
		emit(e)
	})
}
