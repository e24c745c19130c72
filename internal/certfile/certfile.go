// Package certfile reads the certificates and keys people give certlens,
// in the forms they export them in: PEM (a chain, leaf first, and possibly
// the key), DER, and PKCS#12 with or without a password. It is the one
// place that decides what a file holds; the commands word its errors for
// the flag or key that named the file.
package certfile

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"software.sslmate.com/src/go-pkcs12"
)

// NotPKCS12Error is PKCS12's error for a file that is no PKCS#12 at
// all.
type NotPKCS12Error struct {
	What string // what the file looks like instead, e.g. "a PEM file"
}

func (e *NotPKCS12Error) Error() string { return "not a PKCS#12 file: " + e.What }

// ErrPKCS12Password is PKCS12's error for a password that does not
// open the file (or none given for a file that has one).
var ErrPKCS12Password = errors.New("the PKCS#12 password does not open it")

// FileError is Read's error for a file that was read but holds no
// certificate certlens can use.
type FileError struct {
	Path string
	Err  error // what the file is not, and what it should be
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FileError) Unwrap() error { return e.Err }

// Read reads the certificates of the file at path (as Certificates does),
// and returns the file's bytes too: a PEM may also hold the key. An error
// reading the file is the system's, which names the path; an error about
// what it holds is a *FileError.
func Read(path string) ([]*x509.Certificate, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	certs, err := Certificates(data)
	if err != nil {
		return nil, nil, &FileError{Path: path, Err: err}
	}
	return certs, data, nil
}

// Certificates reads the certificates of a certificate file's contents:
// PEM (possibly a chain, leaf first), DER, or PKCS#12 without a password.
// Only public certificates are read; a private key in the file is ignored.
// An error is one clause that says what the file is not and what it should
// be; the caller puts the path before it. It never carries the ASN.1
// parser's words, which mean nothing to the person who gave the file.
func Certificates(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		var certs []*x509.Certificate
		var others []string
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				if !slices.Contains(others, b.Type) {
					others = append(others, b.Type)
				}
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM CERTIFICATE block %d is damaged (%v); export the certificate again", len(certs)+1, strings.TrimPrefix(err.Error(), "x509: "))
			}
			certs = append(certs, c)
		}
		if len(certs) == 0 {
			if len(others) == 0 {
				return nil, errors.New("a -----BEGIN line but no PEM block that decodes: a PEM file damaged or cut short")
			}
			return nil, fmt.Errorf("a PEM file without a CERTIFICATE block (it holds %s)", strings.Join(others, ", "))
		}
		return certs, nil
	}
	if c, err := x509.ParseCertificate(data); err == nil {
		return []*x509.Certificate{c}, nil
	}
	_, leaf, cas, err := pkcs12.DecodeChain(data, "")
	if err == nil {
		return append([]*x509.Certificate{leaf}, cas...), nil
	}
	if certs, terr := pkcs12.DecodeTrustStore(data, ""); terr == nil && len(certs) > 0 {
		return certs, nil
	}
	var notP12 *NotPKCS12Error
	switch p12 := pkcs12Error(data, err); {
	case errors.Is(p12, ErrPKCS12Password):
		return nil, errors.New("a PKCS#12 file with a password, which certlens cannot open here; export the certificate without one, or as PEM (openssl pkcs12 -in FILE -nokeys -out cert.pem)")
	case errors.As(p12, &notP12):
		return nil, errors.New("not a certificate: " + notP12.What + "; " + certFileForms)
	default:
		return nil, fmt.Errorf("%v; %s", p12, certFileForms)
	}
}

// certFileForms is what Certificates takes.
const certFileForms = "give the certificate as PEM (-----BEGIN CERTIFICATE-----), DER (.cer, .der) or PKCS#12 without a password (.pfx, .p12)"

// PKCS12 reads a PKCS#12 file's private key and chain (leaf first).
// Its error is a *NotPKCS12Error when the file is not PKCS#12 and
// ErrPKCS12Password when the password does not open it.
func PKCS12(data []byte, password string) (any, []*x509.Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, nil, pkcs12Error(data, err)
	}
	return key, append([]*x509.Certificate{leaf}, cas...), nil
}

// pkcs12Error words an error of the pkcs12 package for data.
func pkcs12Error(data []byte, err error) error {
	var unsupported pkcs12.NotImplementedError
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword), errors.Is(err, pkcs12.ErrDecryption):
		return ErrPKCS12Password
	case errors.As(err, &unsupported) && isPFX(data):
		// A real PKCS#12 file, protected in a way the library does not read.
		return fmt.Errorf("a PKCS#12 file certlens cannot read (%s); export it again with AES-256 and SHA-256 (openssl pkcs12 -export, or Windows' certificate export)",
			strings.TrimPrefix(unsupported.Error(), "pkcs12: "))
	}
	return &NotPKCS12Error{What: notCertFile(data)}
}

// notCertFile says what data, given as a certificate file that none of the
// decoders took, looks like.
func notCertFile(data []byte) string {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return "the file is empty"
	case bytes.Contains(data, []byte("-----BEGIN")):
		return "a PEM file"
	case isDERCert(data):
		return "a DER certificate, without its key"
	case data[0] == 0x30:
		// An ASN.1 SEQUENCE: DER of something else (a key, a request), or cut short.
		return "DER data, but neither an X.509 certificate nor PKCS#12 (a key, a request, or a file cut short?)"
	case utf8.Valid(data) && !bytes.ContainsRune(data, 0):
		return "a text file without a -----BEGIN CERTIFICATE----- line: neither PEM, DER nor PKCS#12"
	}
	return "neither PEM, DER nor PKCS#12"
}

func isDERCert(data []byte) bool {
	_, err := x509.ParseCertificate(data)
	return err == nil
}

// isPFX reports whether data starts as a PKCS#12 PFX does: a SEQUENCE of
// version 3 and a ContentInfo. The pkcs12 package's "not implemented"
// also answers other DER, such as a PKCS#8 key (version 0).
func isPFX(data []byte) bool {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
	}
	_, err := asn1.Unmarshal(data, &pfx)
	return err == nil && pfx.Version == 3
}
