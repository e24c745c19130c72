package handshake

import (
	"strconv"
	"strings"
)

// layout12 is how a TLS 1.2 suite grows a record, which is all that
// renegotiation records seen without keys show: AEAD suites add a fixed
// overhead (AES-GCM an 8-byte explicit nonce and a 16-byte tag, RFC 5288;
// ChaCha20-Poly1305 the tag alone, RFC 7905); CBC suites a 16-byte IV, the
// MAC and 1 to 256 bytes of padding (RFC 5246 6.2.3.2, RFC 7366), so a CBC
// record's length proves only a range of plaintext lengths.
type layout12 struct {
	kind   recordKind // kindGCM12, kindChaCha12, kindCBC12, kindCBCEtM12; 0 when unknown
	macLen int
	suite  CipherSuite
	// kx: the suite's key exchange sends a ServerKeyExchange (ECDHE, DHE).
	kx bool
	// ecdhe bounds the ClientKeyExchange: an EC point, not a DH value or
	// an RSA-encrypted secret.
	ecdhe bool
}

// rsaKeyExchange lists the suites of suites12 whose key exchange is RSA
// (no ServerKeyExchange); the DHE suites are dheKeyExchange's.
var (
	rsaKeyExchange = map[CipherSuite]bool{0x002f: true, 0x0035: true, 0x003c: true, 0x003d: true, 0x009c: true, 0x009d: true}
	dheKeyExchange = map[CipherSuite]bool{0x0033: true, 0x0039: true, 0x0067: true, 0x006b: true, 0x009e: true, 0x009f: true, 0xccaa: true}
)

// newLayout12 is the record layout of a TLS 1.2 suite, the zero layout for
// a suite whose records are not sized here.
func newLayout12(suite CipherSuite, etm bool) layout12 {
	s, ok := suites12[suite]
	if !ok {
		return layout12{}
	}
	l := layout12{kind: s.kind, macLen: s.macLen, suite: suite, kx: !rsaKeyExchange[suite]}
	l.ecdhe = l.kx && !dheKeyExchange[suite]
	if l.kind == kindCBC12 && etm {
		l.kind = kindCBCEtM12
	}
	return l
}

func (l layout12) known() bool { return l.kind != 0 }

const (
	gcmOverhead    = 8 + 16
	chachaOverhead = 16
	cbcIV          = 16
	maxCBCPadding  = 256 // the padding_length byte and up to 255 bytes of padding
)

// plain returns the plaintext lengths a record of n bytes can carry under
// l; ok is false when none can (the record is not of this layout).
func (l layout12) plain(n int) (lo, hi int, ok bool) {
	switch l.kind {
	case kindGCM12:
		lo = n - gcmOverhead
		hi = lo
	case kindChaCha12:
		lo = n - chachaOverhead
		hi = lo
	case kindCBC12, kindCBCEtM12:
		// Both orders have IV + MAC + plaintext + padding in n; they differ
		// in which part is a whole number of blocks.
		blocks := n - cbcIV
		if l.kind == kindCBCEtM12 {
			blocks -= l.macLen
		}
		if blocks <= 0 || blocks%16 != 0 {
			return 0, 0, false
		}
		hi = n - cbcIV - l.macLen - 1
		lo = max(0, n-cbcIV-l.macLen-maxCBCPadding)
	default:
		return 0, 0, false
	}
	hi = min(hi, maxPlaintext)
	return lo, hi, lo >= 0 && lo <= hi
}

// fits reports whether a record of n bytes can carry pt bytes.
func (l layout12) fits(n, pt int) bool {
	lo, hi, ok := l.plain(n)
	return ok && lo <= pt && pt <= hi
}

// full reports whether a record of n bytes can be a full 2^14-byte
// fragment: a handshake message that large goes on in the next record.
func (l layout12) full(n int) bool {
	_, hi, ok := l.plain(n)
	return ok && hi == maxPlaintext
}

// span is the plaintext range of a message carried by several records.
func (l layout12) span(recs []int) (lo, hi int, ok bool) {
	for _, n := range recs {
		a, b, fit := l.plain(n)
		if !fit {
			return 0, 0, false
		}
		lo, hi = lo+a, hi+b
	}
	return lo, hi, true
}

// describe names the layout and the sizes of a message of pt bytes in it.
func (l layout12) describe(n, pt int) string {
	switch l.kind {
	case kindGCM12:
		return strconv.Itoa(n) + " = " + strconv.Itoa(pt) + "+8+16"
	case kindChaCha12:
		return strconv.Itoa(n) + " = " + strconv.Itoa(pt) + "+16"
	}
	lo, hi, _ := l.plain(n)
	return strconv.Itoa(n) + ": " + strconv.Itoa(lo) + ".." + strconv.Itoa(hi) + " bytes after IV, MAC and padding"
}

// Sizes of TLS 1.2 handshake messages (header included) the inference
// tells apart.
const (
	helloRequestLen  = 4
	serverDoneLen    = 4
	emptyCert12Len   = 4 + 3                   // an empty certificate_list
	finished12Len    = 4 + 12                  // verify_data
	minCert12Len     = emptyCert12Len + 3 + 64 // a Certificate with one certificate: none is under 64 bytes of DER
	minCKEECDHE      = 4 + 1 + 32              // X25519
	maxCKEECDHE      = 4 + 1 + 133             // P-521, uncompressed
	minCKE           = minCKEECDHE             // a DH value or an RSA-encrypted secret is larger
	maxCKE           = 4 + 2 + 1024            // an 8192-bit DH value or RSA modulus
	minCertVerify12  = 4 + 2 + 2 + 64          // Ed25519; ECDSA and RSA signatures are larger
	maxCertVerify12  = 4 + 2 + 2 + 1024        // RSA 8192
	extStatusRequest = 5
)

// rec12 is one record of a TLS 1.2 renegotiation read without keys:
// handshake, ChangeCipherSpec or alert (application data is left out).
type rec12 struct {
	dir Direction
	typ ContentType
	n   int
}

// maxRec12 bounds the records a renegotiation keeps for the inference: a
// full handshake is about a dozen.
const maxRec12 = 2 * maxRecords

// renegotiation12 is what inferRenegotiation read besides the Inference.
type renegotiation12 struct {
	Inference
	// helloRequest: the server's first record, sent before any of the
	// client's, has a HelloRequest's size.
	helloRequest bool
	// sameLayout: both Finished records fit l, so the renegotiated suite
	// sizes records as the old one did and a later renegotiation can be
	// read too.
	sameLayout bool
}

// inferRenegotiation reads a TLS 1.2 renegotiation from the sizes and types
// of its records (protected under the keys of the handshake before it,
// layout l). status says the first handshake's ServerHello answered
// status_request, so the server's flight may carry a CertificateStatus.
//
// It reads only what fits the layouts of real stacks: a server that puts
// each message of its flight in its own record (OpenSSL, so Apache and
// nginx; Go), which shows a CertificateRequest as the extra record before
// ServerHelloDone; a client that does the same (OpenSSL, so curl; Go),
// whose Certificate record is empty (7 bytes of plaintext) or a chain; or
// one that packs its flight into one record (BoringSSL, so Chrome and
// Edge; NSS), read only where its size leaves no doubt. SChannel packs its
// whole server flight into one record: there only the client's side
// speaks. The server's answer to the client's flight is read from the
// record types, which TLS 1.2 does not hide: ChangeCipherSpec (accepted)
// or an alert (refused).
func inferRenegotiation(l layout12, status bool, recs []rec12) (r renegotiation12) {
	var ev []string
	defer func() {
		r.Evidence = strings.Join(ev, "; ") + " (" + l.suite.String() + ", renegotiation)"
	}()
	i := 0
	if len(recs) > 0 && recs[0].dir == FromServer && recs[0].typ == ContentHandshake {
		if !l.fits(recs[0].n, helloRequestLen) {
			// Not what a server may send first: records seen out of order
			// (a client's ClientHello behind the server's answer), or no
			// layout known here.
			ev = append(ev, "the server's first record ("+strconv.Itoa(recs[0].n)+" bytes) is not a HelloRequest: order unclear")
			return r
		}
		r.helloRequest = true
		ev = append(ev, "the server's first record is a HelloRequest ("+l.describe(recs[0].n, helloRequestLen)+")")
		i = 1
	}
	// The client's ClientHello opens its side.
	for i < len(recs) && !(recs[i].dir == FromClient && recs[i].typ == ContentHandshake) {
		if recs[i].typ == ContentAlert {
			ev = append(ev, recs[i].dir.String()+" alert before the client's ClientHello: renegotiation refused")
			return r
		}
		i++
	}
	if i == len(recs) {
		ev = append(ev, "no ClientHello from the client")
		return r
	}
	i++
	// The server's flight: its handshake records until the client speaks.
	start := i
	for i < len(recs) && recs[i].dir == FromServer && recs[i].typ == ContentHandshake {
		i++
	}
	flight := lengths(recs[start:i], FromServer)
	if i < len(recs) && recs[i].dir == FromServer && recs[i].typ == ContentChangeCipherSpec {
		// RFC 5246 7.3: an abbreviated handshake sends ServerHello (and a
		// NewSessionTicket), then ChangeCipherSpec: no certificates.
		r.CertRequested, r.CertSent, r.Resumed = No, No, true
		ev = append(ev, "server records "+ints(flight)+" then ChangeCipherSpec before the client's flight: an abbreviated handshake (session resumed)")
		r.sameLayout = finishedFit(l, recs[i:])
		return r
	}
	serverSays := Unknown
	groups := groupRecords(flight, l.full)
	if n := len(groups); n >= 3 && len(groups[n-1]) == 1 && l.fits(groups[n-1][0], serverDoneLen) {
		base := 3 // ServerHello, Certificate, ServerHelloDone
		names := "ServerHello, Certificate"
		if l.kx {
			base++
			names += ", ServerKeyExchange"
		}
		withStatus := 0
		if status {
			withStatus = 1
		}
		switch n {
		case base:
			serverSays = No
			ev = append(ev, "server flight "+ints(flight)+": "+names+", ServerHelloDone ("+l.describe(groups[n-1][0], serverDoneLen)+
				"), one record each, none for a CertificateRequest")
		case base + 1 + withStatus:
			serverSays = Yes
			cr := groups[n-2]
			lo, hi, _ := l.span(cr)
			r.CertRequestLen, r.CertRequestMin, r.CertRequestRecords = hi, lo, len(cr)
			size := strconv.Itoa(hi) + " bytes"
			if lo != hi {
				size = strconv.Itoa(lo) + ".." + size
			}
			if withStatus == 1 {
				names += ", CertificateStatus"
			}
			ev = append(ev, "server flight "+ints(flight)+": "+names+", CertificateRequest ("+size+" in "+ints(cr)+
				"), ServerHelloDone ("+l.describe(groups[n-1][0], serverDoneLen)+"), one record each")
		case base + 1:
			ev = append(ev, "server flight "+ints(flight)+": "+strconv.Itoa(n)+" messages, one more than "+names+
				", ServerHelloDone: a CertificateRequest or a CertificateStatus (the first ServerHello answered status_request)")
		default:
			ev = append(ev, "server flight "+ints(flight)+": "+strconv.Itoa(n)+" messages fit no one-message-per-record flight")
		}
	} else {
		ev = append(ev, "server flight "+ints(flight)+" does not end with a record of ServerHelloDone's size: messages packed together, nothing read from it")
	}
	// The client's flight: its handshake records up to its ChangeCipherSpec.
	start = i
	for i < len(recs) && recs[i].dir == FromClient && recs[i].typ == ContentHandshake {
		i++
	}
	answer := lengths(recs[start:i], FromClient)
	ccs := i < len(recs) && recs[i].dir == FromClient && recs[i].typ == ContentChangeCipherSpec
	clientSays, sent := Unknown, Unknown
	switch {
	case len(answer) == 0:
		ev = append(ev, "no client flight")
	case !ccs:
		ev = append(ev, "client records "+ints(answer)+" not followed by its ChangeCipherSpec: flight incomplete")
	default:
		clientSays, sent = clientFlight12(l, answer, serverSays, &ev)
	}
	switch {
	case serverSays == No && clientSays == Yes:
		ev = append(ev, "the two sides disagree: nothing inferred")
		r.CertRequestLen, r.CertRequestMin, r.CertRequestRecords = 0, 0, 0
		return r
	case serverSays != Unknown:
		r.CertRequested = serverSays
	default:
		r.CertRequested = clientSays
	}
	r.CertSent = sent
	if r.CertRequested == No {
		r.CertSent = No
	}
	// The server's answer to the client's flight.
	for j := i; j < len(recs); j++ {
		if recs[j].dir != FromServer || recs[j].typ == ContentHandshake {
			continue
		}
		if recs[j].typ == ContentAlert {
			r.ServerAlert = true
			ev = append(ev, "the server answered with an alert ("+strconv.Itoa(recs[j].n)+" bytes) instead of ChangeCipherSpec and Finished: refused")
		} else {
			ev = append(ev, "the server answered with ChangeCipherSpec: accepted")
			r.sameLayout = finishedFit(l, recs[i:])
		}
		break
	}
	return r
}

// clientFlight12 reads the client's records before its ChangeCipherSpec:
// whether they answer a CertificateRequest, and with a certificate.
func clientFlight12(l layout12, answer []int, serverSays Tri, ev *[]string) (requested, sent Tri) {
	groups := groupRecords(answer, l.full)
	minKX, maxKX := minCKE, maxCKE
	if l.ecdhe {
		minKX, maxKX = minCKEECDHE, maxCKEECDHE
	}
	type span struct{ lo, hi int }
	spans := make([]span, len(groups))
	for i, g := range groups {
		lo, hi, ok := l.span(g)
		if !ok {
			*ev = append(*ev, "client flight "+ints(answer)+": a record of no length the suite makes")
			return Unknown, Unknown
		}
		spans[i] = span{lo, hi}
	}
	switch len(groups) {
	case 2:
		// Certificate, ClientKeyExchange: only an empty Certificate goes
		// without a CertificateVerify.
		lo, hi := spans[0].lo, spans[0].hi
		klo, khi := spans[1].lo, spans[1].hi
		if len(groups[0]) == 1 && lo <= emptyCert12Len && emptyCert12Len <= hi && hi < minCert12Len && klo <= maxKX && khi >= minKX {
			*ev = append(*ev, "client flight "+ints(answer)+": an empty Certificate ("+l.describe(groups[0][0], emptyCert12Len)+") and ClientKeyExchange, one record each")
			return Yes, No
		}
	case 3:
		// Certificate with a chain, ClientKeyExchange, CertificateVerify.
		lo := spans[0].lo
		klo, khi := spans[1].lo, spans[1].hi
		vlo, vhi := spans[2].lo, spans[2].hi
		if lo > emptyCert12Len && klo <= maxKX && khi >= minKX && vlo <= maxCertVerify12 && vhi >= minCertVerify12 {
			*ev = append(*ev, "client flight "+ints(answer)+": Certificate with a chain (at least "+strconv.Itoa(lo)+
				" bytes), ClientKeyExchange, CertificateVerify, one record each")
			return Yes, Yes
		}
	case 1:
		// One message, or a whole flight packed into one record: only its
		// size can say which.
		lo, hi := spans[0].lo, spans[0].hi
		switch {
		case lo > emptyCert12Len+maxKX:
			*ev = append(*ev, "client flight "+ints(answer)+" holds at least "+strconv.Itoa(lo)+" bytes: more than an empty Certificate and any "+
				"ClientKeyExchange ("+strconv.Itoa(emptyCert12Len+maxKX)+"), so a certificate chain")
			return Yes, Yes
		case hi < minCert12Len+minKX+minCertVerify12:
			*ev = append(*ev, "client flight "+ints(answer)+" holds at most "+strconv.Itoa(hi)+" bytes: too small for a certificate, "+
				"its ClientKeyExchange and CertificateVerify ("+strconv.Itoa(minCert12Len+minKX+minCertVerify12)+")")
			if serverSays == Yes {
				*ev = append(*ev, "an empty Certificate and ClientKeyExchange packed into one record")
			}
			return Unknown, No
		}
	}
	*ev = append(*ev, "client flight "+ints(answer)+" fits no known flight")
	return Unknown, Unknown
}

// finishedFit reports whether the Finished records that follow each side's
// ChangeCipherSpec in recs carry a 16-byte Finished under l: sized by the
// renegotiated suite, they say whether it sizes records as l does.
func finishedFit(l layout12, recs []rec12) bool {
	var ccs [2]bool
	seen := 0
	for _, r := range recs {
		switch {
		case r.typ == ContentChangeCipherSpec:
			ccs[r.dir] = true
		case r.typ == ContentHandshake && ccs[r.dir]:
			if !l.fits(r.n, finished12Len) {
				return false
			}
			ccs[r.dir] = false
			seen++
		}
	}
	return seen == 2
}

// lengths returns the lengths of recs, all sent by from.
func lengths(recs []rec12, from Direction) []int {
	out := make([]int, 0, len(recs))
	for _, r := range recs {
		if r.dir == from {
			out = append(out, r.n)
		}
	}
	return out
}

// groupRecords splits a sender's records into its handshake messages, for
// a sender that starts each message in a record of its own: a record
// filled to the maximum fragment goes on into the next one. The groups
// share recs' array.
func groupRecords(recs []int, full func(int) bool) [][]int {
	var out [][]int
	start := 0
	for i, n := range recs {
		if !full(n) || i == len(recs)-1 {
			out = append(out, recs[start:i+1])
			start = i + 1
		}
	}
	return out
}
