package event

import (
	"net"
	"time"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/rules"
)

// Diagnose runs the rules over one handshake and builds its event, the same
// way in every mode: the target's host is the evidence for host-based rules
// (client_cert_hosts) when the ClientHello named no server. ev.Host, when
// set, wins over the target.
func Diagnose(m Meta, h *handshake.Handshake, ev rules.Evidence, opts rules.Options) *Handshake {
	if ev.Host == "" {
		ev.Host, _, _ = net.SplitHostPort(m.Target)
	}
	r := rules.Diagnose(h, ev, opts)
	e := NewHandshake(m, h, r)
	e.pending = r.Pending
	if ev.HTTP != nil {
		e.HTTPStatus, e.HTTPSubstatus = ev.HTTP.Status, ev.HTTP.Substatus
	}
	return e
}

// NewClosed builds the "connection closed" event from what the parser saw
// of the whole connection; the caller adds what only it knows (bytes each
// way, duration, why it ended).
func NewClosed(m Meta, obs handshake.Observation) *Closed {
	return &Closed{
		ConnID: m.ConnID, Mode: m.Mode, ClientAddr: m.ClientAddr, Target: m.Target, CommunityID: m.CommunityID, AppProtocol: m.AppProtocol,
		Handshakes: obs.Handshakes, TLSVersion: obs.Version.String(), NotTLS: obs.NotTLS,
		Errors: obs.Errors,
	}
}

// SetDuration sets how long the connection lasted, in milliseconds to the
// microsecond, as every mode writes it.
func (c *Closed) SetDuration(d time.Duration) { c.DurationMS = float64(d.Microseconds()) / 1000 }

// Fold adds this handshake's verdict to its connection's.
func (e *Handshake) Fold(c *rules.Connection) {
	c.Add(rules.Verdict(e.Verdict), e.VerdictCertain, e.pending)
}

// Conclude sets the connection's verdict from its folded handshakes.
func (c *Closed) Conclude(conn *rules.Connection) {
	v, certain := conn.Verdict()
	c.Verdict, c.VerdictCertain = string(v), nil
	if v != rules.VerdictNone {
		c.VerdictCertain = &certain
	}
}
