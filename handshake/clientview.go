package handshake

import "slices"

// ClientView is what a mode that is itself the TLS client (certlens probe,
// intercept's upstream connection) knows of one handshake that a passive
// parser may not have read: its TLS stack decrypted everything. The proxy
// turns crypto/tls's state into this; Complete merges it, one way for
// every such mode.
type ClientView struct {
	// Version, CipherSuite and ALPN are what the client negotiated; Version
	// 0 when the handshake got no ServerHello.
	Version     Version
	CipherSuite CipherSuite
	ALPN        string
	// ServerChain is the server's certificate chain, DER, as the client read it.
	ServerChain [][]byte
	// CertRequest is the server's certificate request as the client was
	// handed it, nil when the server did not ask.
	CertRequest *CertificateRequest
	// Sent is the chain the client answered with (empty: an empty
	// Certificate); meaningful only with CertRequest.
	Sent [][]byte
	// Done: the client's TLS stack completed the handshake (it checked the
	// server's Finished), whatever the parser saw of its end.
	Done bool
	// ServerAlert is an alert the client read from the server, which the
	// parser saw only encrypted.
	ServerAlert *AlertDescription
	// Errors are the client's own, added to the handshake's.
	Errors Errors
}

// Complete returns h with what the client knew and the parser could not
// read. What the parser read in clear is kept; a handshake it saw only
// encrypted, inferred or cut short becomes decrypted once the client's view
// covers it (the client read every message, a missing CertificateRequest
// included). h itself is not changed.
func (h *Handshake) Complete(v ClientView) *Handshake {
	m := *h
	covered := false
	if m.Version == 0 && v.Version != 0 {
		m.Version = v.Version
	}
	if m.ServerHello == nil && v.Version != 0 {
		m.ServerHello = &ServerHello{Version: v.Version, CipherSuite: v.CipherSuite, ALPN: v.ALPN}
		covered = true
	}
	if m.ServerCertificate == nil && len(v.ServerChain) > 0 {
		m.ServerCertificate = &CertificateMsg{Chain: v.ServerChain}
		covered = true
	}
	if v.CertRequest != nil {
		if m.CertRequest == nil {
			m.CertRequest = v.CertRequest
		}
		if m.ClientCertificate == nil {
			m.ClientCertificate = &CertificateMsg{Chain: v.Sent}
			m.ClientCertificateVerify = len(v.Sent) > 0
		}
		covered = true
	}
	// The connection may end before the server speaks again, which is what
	// tells a passive parser a TLS 1.3 handshake is over; the client checked
	// the server's Finished, so it was.
	if v.Done && (m.End == EndEOF || m.Visibility == VisibilityPartial) {
		m.End, m.ClientFinished, m.ServerFinished = EndFinished, true, true
		covered = true
	}
	if v.Done && m.Completed() {
		covered = true
	}
	if len(v.Errors) > 0 {
		m.Errors = append(slices.Clip(m.Errors), v.Errors...)
	}
	if v.ServerAlert != nil {
		if alerts, ok := nameServerAlert(m.Alerts, *v.ServerAlert); ok {
			m.Alerts, m.End = alerts, EndAlert
			covered = true
		}
	}
	hidden := m.Visibility == VisibilityEncrypted || m.Visibility == VisibilityInferred || m.Visibility == VisibilityPartial && v.Done
	if covered && hidden {
		// What the client read supersedes what the record sizes suggested.
		m.Visibility, m.Inferred = VisibilityDecrypted, nil
	}
	return &m
}

// nameServerAlert puts the alert the client read, d, in place of the
// server's alerts the parser saw only encrypted. It reports false, and
// leaves alerts alone, when the parser read d itself.
func nameServerAlert(alerts []Alert, d AlertDescription) ([]Alert, bool) {
	named := Alert{From: FromServer, Level: AlertFatal, Description: d}
	out := make([]Alert, 0, len(alerts)+1)
	for _, a := range alerts {
		if a == named {
			return alerts, false
		}
		if !(a.Encrypted && a.From == FromServer) {
			out = append(out, a)
		}
	}
	return append(out, named), true
}
