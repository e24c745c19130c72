package event

import (
	"bytes"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/certlens/certlens/handshake"
)

// A handshake event carries its request's whole issuer list, 60 KB for an
// IIS that sends its Trusted Root store, and zap's JSON encoder escapes
// every string of it one byte at a time: for such a list that cost more
// than the rest of the handshake's work in the proxy. The list is the
// same bytes on every handshake to that server, so its JSON is the same
// too: it is encoded once per list (handshake.IssuerList.Derived) and
// handed to zap ready-made.

// PreEncodedJSON is JSON already encoded exactly as zap's JSON encoder
// writes the value it stands for. Given to zap as a reflected value, the
// logger's reflected encoder (internal/logging) writes it as is; any other
// JSON encoder gets it through MarshalJSON, and writes the same bytes.
type PreEncodedJSON []byte

// PreEncodedJSON returns the bytes to write.
func (p PreEncodedJSON) PreEncodedJSON() []byte { return p }

// MarshalJSON returns the bytes, for encoders that know only encoding/json.
func (p PreEncodedJSON) MarshalJSON() ([]byte, error) { return p, nil }

// zapIssuersKey names the zap encoding among what is derived from a list.
type zapIssuersKey struct{}

// zapIssuers is the list's names as zap's JSON encoder writes an array of
// strings (what AddArray("issuers", strs(names)) writes after the key).
func zapIssuers(l *handshake.IssuerList) PreEncodedJSON {
	return l.Derived(zapIssuersKey{}, func(l *handshake.IssuerList) any {
		const key = "i"
		enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
		buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.Array(key, strs(l.Names()))})
		if err != nil {
			return PreEncodedJSON(nil)
		}
		defer buf.Free()
		// {"i":[...]}\n
		out, ok := bytes.CutPrefix(buf.Bytes(), []byte(`{"`+key+`":`))
		if !ok {
			return PreEncodedJSON(nil)
		}
		if out, ok = bytes.CutSuffix(out, []byte("}\n")); !ok {
			return PreEncodedJSON(nil)
		}
		return PreEncodedJSON(bytes.Clone(out))
	}).(PreEncodedJSON)
}

// addIssuers writes the issuers array: the list's pre-encoded JSON when the
// event's names are the list's own, as NewHandshake leaves them.
func (c *CertRequest) addIssuers(enc zapcore.ObjectEncoder) error {
	if l := c.list; l != nil && len(c.Issuers) == l.Len() && len(c.Issuers) > 0 && &c.Issuers[0] == &l.Names()[0] {
		if pre := zapIssuers(l); pre != nil {
			return enc.AddReflected("issuers", pre)
		}
	}
	return enc.AddArray("issuers", strs(c.Issuers))
}
