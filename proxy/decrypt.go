package proxy

import (
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/keylog"
)

// DecryptOptions turn on passive decryption with the client's key log.
type DecryptOptions struct {
	// Secrets is the followed key log; nil decrypts nothing.
	Secrets *keylog.Store
	// Wait bounds how long a handshake waits for its secret (decrypt.wait).
	Wait time.Duration
}

// awaitSecret starts, once per wait, a watch for the secret the parser is
// holding records for: the key line is written by the client after it read
// the ServerHello, so the server's encrypted flight usually passes first.
// The handshake is decided when the line comes, or as encrypted after
// DecryptOptions.Wait; it is never held longer. t.mu held.
func (t *tunnel) awaitSecret() {
	d := t.srv.opts.Decrypt
	if t.secrets == nil || t.waiting {
		return
	}
	cr, ok := t.parser.Waiting()
	if !ok {
		return
	}
	t.waiting = true
	if t.waitSince.IsZero() {
		t.waitSince = time.Now()
	}
	deadline := time.NewTimer(decryptWait(d))
	go func() {
		defer deadline.Stop()
		for {
			woken, cancel := t.secrets.Wait(cr)
			// A line may have come between the parser's lookup and Wait.
			t.mu.Lock()
			t.parser.Retry()
			t.logHandshakes(t.parser.Drain(), false)
			_, still := t.parser.Waiting()
			t.mu.Unlock()
			if !still {
				cancel()
				break
			}
			select {
			case <-woken:
				cancel()
				continue
			case <-deadline.C:
				cancel()
				t.mu.Lock()
				t.parser.GiveUp()
				t.logHandshakes(t.parser.Drain(), false)
				t.mu.Unlock()
			case <-t.closed:
				cancel()
			}
			break
		}
		t.mu.Lock()
		t.waiting = false
		if _, still := t.parser.Waiting(); !still {
			t.waitSince = time.Time{}
		}
		// Records that came meanwhile may be waiting for a later secret.
		t.awaitSecret()
		t.mu.Unlock()
	}()
}

func decryptWait(d DecryptOptions) time.Duration {
	if d.Wait <= 0 {
		return time.Second
	}
	return d.Wait
}

// lastChance runs when the connection closes while the parser still holds
// records for a secret: a browser that hangs up right after the server's
// flight (Chromium, to pick a certificate) writes its key line a moment
// later. The handshake gets the rest of its decrypt.wait; the closed event
// waits with it, never longer.
func (t *tunnel) lastChance() {
	d := t.srv.opts.Decrypt
	if t.secrets == nil {
		return
	}
	t.mu.Lock()
	cr, ok := t.parser.Waiting()
	since := t.waitSince
	t.mu.Unlock()
	if !ok {
		return
	}
	if left := decryptWait(d) - time.Since(since); left > 0 {
		woken, cancel := t.secrets.Wait(cr)
		timer := time.NewTimer(left)
		select {
		case <-woken:
		case <-timer.C:
		}
		timer.Stop()
		cancel()
	}
	t.mu.Lock()
	t.parser.Retry()
	t.logHandshakes(t.parser.Drain(), true)
	t.mu.Unlock()
}

func parserOptions(o Options) handshake.Options {
	return handshake.Options{StopAfterHandshake: !o.WatchRenegotiation}
}
