package proxy

import (
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/rules"
)

// lateHold bounds how long a TLS 1.3 handshake that asked for no
// certificate waits for its connection's next news: IIS on Server 2022
// resets the connection right after the request it wanted a certificate
// for, and that reset is the only sign of it a passive observer gets.
const lateHold = 2 * time.Second

// lateCandidate: a completed TLS 1.3 handshake with no CertificateRequest
// (read, or inferred from record sizes) for a client that cannot be asked
// later (no post_handshake_auth).
func lateCandidate(h *handshake.Handshake) bool {
	if h.Version != handshake.VersionTLS13 || h.Phase != handshake.PhaseInitial || h.End != handshake.EndFinished ||
		h.ClientHello == nil || h.ClientHello.PostHandshakeAuth || h.CertRequest != nil {
		return false
	}
	if h.Visibility == handshake.VisibilityDecrypted {
		return true
	}
	inf := h.Inferred
	return h.Visibility == handshake.VisibilityInferred && inf != nil && inf.CertRequested == handshake.No && !inf.Resumed
}

// holdLate keeps h until the connection ends or lateHold passes, so that
// a reset right after the client's request can count as evidence. t.mu held.
func (t *tunnel) holdLate(h *handshake.Handshake) {
	t.late, t.lateUp = h, t.up.Load()
	t.lateTimer = time.AfterFunc(lateHold, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.late == h {
			t.late = nil
			t.srv.logHandshake(t, h, rules.Evidence{})
		}
	})
}

// releaseLate writes a held handshake when the connection ends: a server
// reset after the client sent more (its request) is the evidence. t.mu held.
func (t *tunnel) releaseLate() {
	h := t.late
	if h == nil {
		return
	}
	t.late = nil
	t.lateTimer.Stop()
	t.srv.logHandshake(t, h, rules.Evidence{ResetAfterRequest: t.serverReset() && t.up.Load() > t.lateUp})
}

// closeEvidence is the evidence for a handshake the end of the connection
// decided: a TLS 1.3 one the server never spoke after, reset by the
// server once the client had sent more than its handshake flight.
func (t *tunnel) closeEvidence(h *handshake.Handshake) rules.Evidence {
	inf := h.Inferred
	if !lateCandidate(h) || inf == nil || inf.ClientFlight == 0 {
		return rules.Evidence{}
	}
	return rules.Evidence{ResetAfterRequest: t.serverReset() && len(h.ClientRecords) > inf.ClientFlight}
}

func (t *tunnel) serverReset() bool {
	r := t.reason.Load()
	return r != nil && r.serverReset()
}
