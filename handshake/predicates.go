package handshake

// The predicates below are how the rules read a Handshake: each says what
// the evidence shows, whichever way it was read (in clear, decrypted, or
// inferred from record sizes), so that no rule re-derives it from fields.

// extPreSharedKey is RFC 8446's pre_shared_key extension: in a ServerHello
// it means the server accepted a PSK, a resumption.
const extPreSharedKey = 41

// Readable reports whether the handshake's messages were read, in clear or
// decrypted (by a key log, or by certlens being the client).
func (h *Handshake) Readable() bool {
	return h.Visibility == VisibilityClear || h.Visibility == VisibilityDecrypted
}

// Completed reports whether the handshake ended with both Finished messages
// (or application data that proves them).
func (h *Handshake) Completed() bool {
	return h.End == EndFinished || h.End == EndApplicationData
}

// Resumed reports whether the handshake resumed an earlier session (TLS 1.2
// abbreviated handshake, TLS 1.3 PSK read or inferred): it carries that
// session's authentication, and no certificate is exchanged.
func (h *Handshake) Resumed() bool {
	if h.Abbreviated {
		return true
	}
	if h.Version == VersionTLS13 && h.ServerHello != nil {
		for _, e := range h.ServerHello.Extensions {
			if e == extPreSharedKey {
				return true
			}
		}
	}
	return h.Visibility == VisibilityInferred && h.Inferred != nil && h.Inferred.Resumed
}

// CertRequested says whether the server asked for a client certificate in
// this handshake: Yes or No when read, as inferred otherwise, Unknown when
// the evidence cannot tell.
func (h *Handshake) CertRequested() Tri {
	switch {
	case h.CertRequest != nil:
		return Yes
	case h.Readable() && (h.Completed() || h.ClientCertificate != nil):
		return No
	case h.Visibility == VisibilityInferred && h.Inferred != nil:
		return h.Inferred.CertRequested
	}
	return Unknown
}

// CertSent says whether the client's answer carried a certificate: Yes for
// a chain, No for an empty Certificate message (or, read in full, none at
// all to a request it finished), as inferred from record sizes otherwise.
func (h *Handshake) CertSent() Tri {
	switch {
	case h.ClientCertificate != nil && len(h.ClientCertificate.Chain) > 0:
		return Yes
	case h.ClientCertificate != nil:
		return No
	case h.Visibility == VisibilityInferred && h.Inferred != nil:
		return h.Inferred.CertSent
	}
	return Unknown
}

// ClientAborted reports whether the server asked for a certificate and the
// client sent nothing more (no Certificate, no Finished) before the
// handshake or the connection ended: it hung up, often to let its user pick
// a certificate and retry on a new connection.
func (h *Handshake) ClientAborted() bool {
	if inf := h.Inferred; inf != nil && h.Visibility == VisibilityPartial && inf.CertRequested == Yes {
		// Read from record sizes: nothing protected from the client after
		// the server's flight (a renegotiation's ClientHello is protected).
		hello := 0
		if h.Phase == PhaseRenegotiation {
			hello = 1
		}
		if len(h.ClientRecords) == hello {
			return h.End == EndEOF
		}
	}
	if h.CertRequest == nil || h.ClientCertificate != nil || h.ClientFinished {
		return false
	}
	if h.End == EndEOF {
		return true
	}
	// An alert ends it: the server's answer to the hang-up (OpenSSL's
	// decode_error on EOF) is no verdict, but a fatal alert of the client's
	// own is a failure it reports, not an abandonment.
	if h.End == EndAlert {
		for _, a := range h.Alerts {
			if a.From == FromClient && a.Fatal() && !a.Encrypted {
				return false
			}
		}
		return true
	}
	return false
}

// ServerStarted reports whether the server started this renegotiation (a
// HelloRequest, or its record came first), as IIS does to ask for a
// certificate after the request; false when the client started it.
func (h *Handshake) ServerStarted() bool {
	if h.ClientInitiated {
		return false
	}
	if h.HelloRequest {
		return true
	}
	for _, m := range h.Messages {
		return len(m) > 7 && m[:7] == "server:"
	}
	return false
}
