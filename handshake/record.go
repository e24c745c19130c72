package handshake

// The record layer's header, as every reader of TLS streams must judge it
// alike: analyze's framer falls back to raw bytes exactly where the parser
// would stop.

// Record sizes.
const (
	// RecordHeaderLen is the length of a record header: type, version,
	// body length.
	RecordHeaderLen = recordHeaderLen
	// MaxRecord is the largest record body any TLS version allows.
	MaxRecord = maxCiphertext
)

// ValidRecordHeader reports whether h starts with a record header the
// parser reads on: a known content type, a TLS (or SSL 3.0) version and a
// body length TLS allows.
func ValidRecordHeader(h []byte) bool {
	if len(h) < RecordHeaderLen {
		return false
	}
	typ, length := ContentType(h[0]), int(h[3])<<8|int(h[4])
	return typ >= ContentChangeCipherSpec && typ <= ContentHeartbeat && h[1] == 3 && h[2] <= 4 && length <= maxCiphertext
}
