package handshake

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
)

// DN is one distinguished name from a certificate_authorities list, kept as the
// DER bytes the server sent. Its RFC 4514 form is computed on demand; a
// list's DNs are rendered once per list (IssuerList), not per handshake.
type DN struct {
	Raw []byte
}

// Name parses the DER as an X.501 Name. A DN that does not parse is still a DN
// the server sent: callers keep it, raw, and show the error.
func (d DN) Name() (pkix.RDNSequence, error) {
	var rdn pkix.RDNSequence
	rest, err := asn1.Unmarshal(d.Raw, &rdn)
	if err != nil {
		return nil, fmt.Errorf("distinguished name: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("distinguished name: %d trailing bytes", len(rest))
	}
	return rdn, nil
}

// String is the RFC 4514 form, or a hex dump marked as unparsed.
func (d DN) String() string {
	rdn, err := d.Name()
	if err != nil {
		return d.unparsed()
	}
	return rdn.String()
}

func (d DN) unparsed() string {
	return fmt.Sprintf("<unparsed DN %d bytes: %x>", len(d.Raw), d.Raw[:min(len(d.Raw), 32)])
}

// MarshalJSON gives both forms, so golden files and tools see exactly what was sent.
func (d DN) MarshalJSON() ([]byte, error) {
	v := struct {
		RFC4514 string `json:"rfc4514,omitempty"`
		Error   string `json:"error,omitempty"`
		Raw     []byte `json:"der"`
	}{Raw: d.Raw}
	if rdn, err := d.Name(); err != nil {
		v.Error = err.Error()
	} else {
		v.RFC4514 = rdn.String()
	}
	return json.Marshal(v)
}
