package event

// PCAPRef is where `certlens analyze` found an event in a capture file, in
// Wireshark's terms, so that a user can jump to the evidence with the
// display filter "tcp.stream eq N" or "frame.number == F".
type PCAPRef struct {
	// Stream is Wireshark's tcp.stream: TCP connections numbered from 0 in
	// the order their first packet appears in the file.
	Stream int `json:"stream"`
	// Frames are the frame.number (from 1) of the messages the rules read;
	// nil on connection events and when neither message was seen in clear.
	Frames *PCAPFrames `json:"frames,omitempty"`
}

// PCAPFrames names the frames Wireshark shows a message in: the frame that
// completed the TLS record holding the message's last byte. 0 (omitted)
// when the message was not seen in clear.
type PCAPFrames struct {
	CertRequest int `json:"cert_request,omitempty"`
	ClientCert  int `json:"client_cert,omitempty"`
}
