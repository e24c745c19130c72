package handshake

import "encoding/json"

// Visibility says how much of a handshake could be read (DESIGN.md's event field).
type Visibility string

const (
	VisibilityClear     Visibility = "clear"
	VisibilityDecrypted Visibility = "decrypted"
	VisibilityInferred  Visibility = "inferred"
	VisibilityEncrypted Visibility = "encrypted"
	VisibilityPartial   Visibility = "partial"
)

// Phase says when in the connection a handshake happened.
type Phase string

const (
	PhaseInitial       Phase = "initial"
	PhaseRenegotiation Phase = "renegotiation"
	PhasePostHandshake Phase = "post_handshake"
)

// End says what made a handshake's outcome known.
type End string

const (
	EndFinished        End = "finished"         // both Finished seen (TLS 1.3: the server answered the client's flight)
	EndAlert           End = "alert"            // a fatal (or unreadable) alert
	EndApplicationData End = "application_data" // application data arrived first (False Start)
	EndEOF             End = "eof"              // the stream ended before the handshake did
	EndServerNotTLS    End = "server_not_tls"   // the server answered with something that is not TLS
	EndError           End = "error"            // a record or message could not be parsed
)

// Handshake is everything seen of one handshake, initial or renegotiation.
// Once handed out by Parser.Drain it is never modified again.
type Handshake struct {
	Index      int        `json:"index"`
	Phase      Phase      `json:"phase"`
	Visibility Visibility `json:"visibility"`
	End        End        `json:"end"`
	Version    Version    `json:"tls_version,omitempty"`
	// ALPN is the application protocol in force: this handshake's
	// ServerHello's, or for a renegotiation the connection's.
	ALPN string `json:"alpn,omitempty"`

	ClientHello       *ClientHello        `json:"client_hello,omitempty"`
	ServerHello       *ServerHello        `json:"server_hello,omitempty"`
	ServerCertificate *CertificateMsg     `json:"server_certificate,omitempty"`
	CertRequest       *CertificateRequest `json:"cert_request,omitempty"`
	ServerHelloDone   bool                `json:"server_hello_done,omitempty"`
	ClientCertificate *CertificateMsg     `json:"client_certificate,omitempty"`
	// ClientCertificateVerify is the client proving it holds the key.
	ClientCertificateVerify bool `json:"client_certificate_verify,omitempty"`
	ClientFinished          bool `json:"client_finished,omitempty"`
	ServerFinished          bool `json:"server_finished,omitempty"`
	// HelloRequest: the server asked for this (re)negotiation. Read in
	// clear or decrypted, or, for a TLS 1.2 renegotiation seen without
	// keys, from the server's record that opened it: outside a handshake
	// a server sends only HelloRequest, and the record has its size under
	// the suite's layout (not set where that layout is unknown).
	HelloRequest bool `json:"hello_request,omitempty"`
	// ClientInitiated: the client opened this renegotiation with its
	// ClientHello, no HelloRequest from the server before it. TLS 1.2
	// shows the record types, so this is read with or without keys.
	ClientInitiated bool `json:"client_initiated,omitempty"`
	// Abbreviated: a TLS 1.2 resumption (abbreviated handshake); no
	// certificate is exchanged. Resumed covers TLS 1.3 too.
	Abbreviated bool `json:"resumed,omitempty"`

	Alerts []Alert `json:"alerts,omitempty"`
	// Messages lists what each side sent, in order, as "client:client_hello";
	// protected records appear as "server:encrypted(53)".
	Messages []string `json:"messages"`
	// ClientRecords and ServerRecords are the lengths of the protected
	// handshake-phase records each side sent (TLS 1.3, renegotiation): the
	// evidence size-based inference reads.
	ClientRecords []int  `json:"client_encrypted_records,omitempty"`
	ServerRecords []int  `json:"server_encrypted_records,omitempty"`
	Errors        Errors `json:"errors,omitempty"`
	// Inferred is what a handshake seen without keys did, read from its
	// record sizes (Visibility inferred): a TLS 1.3 handshake, a TLS 1.2
	// renegotiation, a TLS 1.3 post-handshake authentication; nil when
	// nothing could be.
	Inferred *Inference `json:"inferred,omitempty"`
	// Unparsed: a parse error stopped reading this handshake; what is here is
	// true but incomplete.
	Unparsed bool `json:"unparsed,omitempty"`

	// SecretMissing: a key log was given, but it had no secret for this
	// connection (as opposed to a suite that cannot be decrypted, or no key
	// log at all).
	SecretMissing bool `json:"-"`

	// CertRequestEnd and ClientCertEnd are the stream offsets (bytes from the
	// start of the server's, resp. the client's stream) just past the
	// CertificateRequest and the client Certificate: capture readers map them
	// to the frames Wireshark shows the messages in. 0 when not seen in clear.
	CertRequestEnd int64 `json:"-"`
	ClientCertEnd  int64 `json:"-"`

	complete bool
	// decrypted: messages of this handshake were read from decrypted records.
	decrypted bool
	// inf13 is the last InferTLS13 of this handshake, for inf13Records
	// server and client records (inference13).
	inf13        *Inference
	inf13Records [2]int
	// hrrPending: a HelloRetryRequest was seen; the next ClientHello belongs here.
	hrrPending bool
	// recs12 are a TLS 1.2 renegotiation's protected records seen without
	// keys, for inferRenegotiation (at most maxRec12).
	recs12 []rec12
}

// Observation is the connection-level summary: what the proxy's "connection
// closed" event reports.
type Observation struct {
	// NotTLS says why the client's stream is not TLS ("" when it is).
	NotTLS       string  `json:"not_tls,omitempty"`
	Version      Version `json:"tls_version,omitempty"`
	Handshakes   int     `json:"handshakes"`
	ClientBytes  int64   `json:"client_bytes"`
	ServerBytes  int64   `json:"server_bytes"`
	ClientRecord int     `json:"client_records"`
	ServerRecord int     `json:"server_records"`
	// Alerts seen outside any handshake (close_notify, mostly encrypted).
	Alerts []Alert  `json:"alerts,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Per-handshake caps keep a hostile peer from growing the lists without bound.
const (
	maxAlerts   = 16
	maxMessages = 64
	maxRecords  = 32
	maxErrors   = 8
)

func (h *Handshake) addMessage(from Direction, what string) {
	if len(h.Messages) < maxMessages {
		h.Messages = append(h.Messages, from.String()+":"+what)
	}
}

// Errors are what went wrong in one handshake, kept as values so that a
// caller can branch on them (errors.Is(err, ErrOversize)); as JSON, and in
// the events, they are their texts.
type Errors []error

// Strings are the errors' texts; nil for none.
func (e Errors) Strings() []string {
	if len(e) == 0 {
		return nil
	}
	out := make([]string, len(e))
	for i, err := range e {
		out[i] = err.Error()
	}
	return out
}

func (e Errors) MarshalJSON() ([]byte, error) { return json.Marshal(e.Strings()) }

func (h *Handshake) addError(err error) {
	if len(h.Errors) < maxErrors {
		h.Errors = append(h.Errors, err)
	}
}

func (h *Handshake) addAlert(a Alert) {
	if len(h.Alerts) < maxAlerts {
		h.Alerts = append(h.Alerts, a)
	}
}
