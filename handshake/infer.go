package handshake

import (
	"strconv"
	"strings"
)

// Tri is a yes/no that may be unknown.
type Tri int8

const (
	Unknown Tri = iota
	Yes
	No
)

func (t Tri) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

func (t Tri) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Inference is what a TLS 1.3 handshake did, read from the sizes of its
// encrypted records alone. It is never certain: Evidence says what was read.
type Inference struct {
	CertRequested Tri `json:"cert_requested"`
	CertSent      Tri `json:"cert_sent"`
	// CertRequestLen is the inferred CertificateRequest message length
	// (header included), 0 when none or unknown; it bounds the issuer list.
	// Where record sizes give a range (TLS 1.2 CBC suites' padding) it is
	// the largest length the records allow.
	CertRequestLen int `json:"cert_request_len,omitempty"`
	// CertRequestMin is the smallest CertificateRequest length the records
	// allow: CertRequestLen itself but under CBC padding.
	CertRequestMin int `json:"cert_request_min,omitempty"`
	// CertRequestRecords is how many records carried the CertificateRequest
	// (a list over 16 KB spans several).
	CertRequestRecords int `json:"cert_request_records,omitempty"`
	// ServerAlert: the server's first record after the client's flight had
	// the size of an alert, as when it refuses the (missing) certificate.
	ServerAlert bool `json:"server_alert,omitempty"`
	// Resumed: a PSK resumption, which carries the first session's
	// authentication instead of a certificate exchange.
	Resumed bool `json:"resumed,omitempty"`
	// ClientFlight is how many of the client's records its handshake
	// flight took (0 when not known): the records after it are its data.
	ClientFlight int    `json:"-"`
	Evidence     string `json:"evidence"`
}

// Known reports whether anything was inferred.
func (i Inference) Known() bool { return i.CertRequested != Unknown || i.CertSent != Unknown }

// TLS 1.3 record protection adds the real content type byte and a 16-byte
// AEAD tag to every record (RFC 8446 5.2); no padding was seen from OpenSSL
// or Chromium (FACTS.md). Other layouts infer nothing.
const (
	aeadOverhead  = 1 + 16
	emptyCertMsg  = 4 + 1 + 3 // header, empty context, empty certificate_list
	alertRecord   = 2 + aeadOverhead
	maxCertRecord = 64 // a Certificate with a chain is never this small
)

// hashLen is the transcript hash length of a TLS 1.3 suite.
func hashLen(suite CipherSuite) int {
	if suite == 0x1302 { // TLS_AES_256_GCM_SHA384
		return 48
	}
	return 32
}

// InferTLS13 reads a TLS 1.3 handshake from its protected record lengths:
// the server's after its ServerHello (CCS excluded) and the client's flight.
// It recognises only layouts seen from real stacks (FACTS.md): a server that
// puts one message per record (OpenSSL), and a client that sends Finished,
// an empty Certificate and Finished (one record or two), or a chain.
func InferTLS13(suite CipherSuite, server, client []int) Inference {
	h := hashLen(suite)
	fin := 4 + h + aeadOverhead
	inf := Inference{}
	var ev []string
	finText := strconv.Itoa(fin) + " = 4+" + strconv.Itoa(h) + "+17"

	// Server: EncryptedExtensions, [CertificateRequest], Certificate,
	// CertificateVerify, Finished, each in records of its own: a message
	// over 2^14 bytes (a large issuer list) fills records to the maximum
	// and ends in a shorter one.
	groups := groupRecords(head(server, maxRecords), full13)
	g := -1
	for i, m := range groups {
		if len(m) == 1 && m[0] == fin {
			g = i
			break
		}
	}
	f := -1 // index of the server's Finished record
	if g >= 0 {
		f = 0
		for _, m := range groups[:g] {
			f += len(m)
		}
	}
	switch {
	case g == 4:
		cr := groups[1]
		inf.CertRequested = Yes
		inf.CertRequestLen = sum(cr) - len(cr)*aeadOverhead
		inf.CertRequestMin, inf.CertRequestRecords = inf.CertRequestLen, len(cr)
		in := ""
		if len(cr) > 1 {
			in = " in " + strconv.Itoa(len(cr)) + " records"
		}
		ev = append(ev, "server records "+ints(server[:f+1])+": EncryptedExtensions, CertificateRequest ("+strconv.Itoa(inf.CertRequestLen)+
			" bytes"+in+"), Certificate, CertificateVerify, Finished ("+finText+")")
	case g == 3:
		inf.CertRequested = No
		ev = append(ev, "server records "+ints(server[:f+1])+": EncryptedExtensions, Certificate, CertificateVerify, Finished ("+finText+
			"), no record for a CertificateRequest")
	case g == 1:
		// PSK resumption: no certificates either way (RFC 8446 4.3.2).
		inf.CertRequested, inf.Resumed = No, true
		ev = append(ev, "server records "+ints(server[:f+1])+": EncryptedExtensions and Finished only (resumption)")
	default:
		f = -1
		ev = append(ev, "server records "+ints(head(server, 6))+" fit no one-message-per-record layout with a "+strconv.Itoa(fin)+"-byte Finished")
	}

	// Client: its flight is the first records it protected.
	switch {
	case len(client) == 0:
	case client[0] == fin:
		inf.CertSent, inf.ClientFlight = No, 1
		if inf.CertRequested == Unknown {
			// A client asked for a certificate must answer with a Certificate.
			inf.CertRequested = No
		}
		ev = append(ev, "client flight starts with a "+strconv.Itoa(fin)+"-byte record: Finished alone")
	case client[0] == emptyCertMsg+aeadOverhead && len(client) > 1 && client[1] == fin:
		inf.CertSent, inf.CertRequested, inf.ClientFlight = No, Yes, 2
		ev = append(ev, "client records "+ints(client[:2])+": an empty Certificate ("+strconv.Itoa(emptyCertMsg+aeadOverhead)+") then Finished ("+strconv.Itoa(fin)+")")
	case client[0] == emptyCertMsg+4+h+aeadOverhead:
		inf.CertSent, inf.CertRequested, inf.ClientFlight = No, Yes, 1
		ev = append(ev, "client record of "+strconv.Itoa(client[0])+" bytes: an empty Certificate and Finished together")
	case client[0] > fin+maxCertRecord && f >= 0:
		// Only beside a server whose records are unpadded: a padded Finished
		// is as large as a short chain.
		inf.CertSent, inf.CertRequested = Yes, Yes
		ev = append(ev, "client flight starts with a "+strconv.Itoa(client[0])+"-byte record: a certificate chain")
	default:
		ev = append(ev, "client records "+ints(head(client, 4))+" fit no known flight")
	}
	if f >= 0 && len(server) > f+1 && len(client) > 0 && server[f+1] == alertRecord {
		inf.ServerAlert = true
		ev = append(ev, "the server's next record is "+strconv.Itoa(alertRecord)+" bytes: an alert")
	}
	inf.Evidence = strings.Join(ev, "; ") + " (" + suite.String() + ")"
	return inf
}

// full13 reports whether a TLS 1.3 record of n bytes carries a full
// 2^14-byte fragment (unpadded), which a longer message continues.
func full13(n int) bool { return n == maxPlaintext+aeadOverhead }

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

func head(xs []int, n int) []int { return xs[:min(len(xs), n)] }

// ints writes what %v would: InferTLS13 runs for every
// keyless TLS 1.3 handshake, and fmt's reflection was a visible share of a
// tunnel's CPU.
func ints(xs []int) string {
	b := make([]byte, 0, 8*len(xs)+2)
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(append(b, ']'))
}
