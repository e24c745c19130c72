// Package ownclient holds what certlens's own TLS clients (the probe, and
// intercept mode's upstream connections) share: the connection under
// crypto/tls that lets the parser read a whole oversize request before the
// client's alert, the key log that lets the parser decrypt the client's
// own connection, and crypto/tls's view of a handshake turned into the
// parser's types.
package ownclient

// What certlens's own TLS clients know of a handshake that the parser may
// not have read: crypto/tls's view, turned into the parser's types.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"

	"github.com/certlens/certlens/handshake"
)

// CertRequest rebuilds the CertificateRequest from what crypto/tls
// passed to GetClientCertificate. The DNs are the raw DER in wire order, so
// IssuerBytes is the vector length as sent. Certificate types are not
// passed on (TLS 1.2), and Records is the fewest records that can carry
// the list, not a count.
func CertRequest(cri *tls.CertificateRequestInfo, v handshake.Version) *handshake.CertificateRequest {
	cr := &handshake.CertificateRequest{TLS13: v == handshake.VersionTLS13,
		HasAuthorities: len(cri.AcceptableCAs) > 0 || v != handshake.VersionTLS13}
	cr.SetIssuers(cri.AcceptableCAs)
	for _, s := range cri.SignatureSchemes {
		cr.SignatureSchemes = append(cr.SignatureSchemes, handshake.SignatureScheme(s))
	}
	cr.Records = (cr.IssuerBytes + 1<<14 - 1) >> 14
	cr.Records = max(cr.Records, 1)
	return cr
}

// RemoteAlert returns the alert the server sent, when crypto/tls failed
// because of one. Its error type is unexported; its value is the alert's
// description byte.
func RemoteAlert(err error) (handshake.AlertDescription, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return 0, false
	}
	return handshake.AlertDescription(v.Uint()), true
}

// VerifyServer checks the chain a server sent against roots (nil: the
// system's) for host, as a browser would; probe and intercept both record
// the answer instead of failing the handshake on it.
func VerifyServer(cs tls.ConnectionState, host string, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	return err
}
