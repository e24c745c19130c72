package handshake

import (
	"strconv"
	"strings"
)

// Sizes of a TLS 1.3 post-handshake authentication (RFC 8446 4.6.2) as
// messages, header included.
const (
	// A CertificateRequest carries a non-empty context (1 to 255 bytes)
	// and extensions, signature_algorithms at least (4.3.2).
	minPHARequest = 4 + 1 + 1 + 2 + (4 + 2 + 2)
	// The client's empty Certificate echoes the context.
	minPHAEmptyCert = 4 + 1 + 1 + 3
	maxPHAEmptyCert = 4 + 1 + 255 + 3
	// A Certificate with one certificate (none is under 64 bytes of DER),
	// its extensions' length included.
	minPHACert = 4 + 1 + 1 + 3 + 3 + 64 + 2
	// CertificateVerify: Ed25519's 64-byte signature up to RSA 8192's.
	minCertVerify13 = 4 + 2 + 2 + 64
	maxCertVerify13 = 4 + 2 + 2 + 1024
)

// phaWatch follows a TLS 1.3 connection seen without keys after its
// handshake, when the client offered post_handshake_auth, for the exchange
// a server that asks after the request (Apache's per-location
// SSLVerifyClient) starts: the client's request, a server record the size
// of a CertificateRequest, and the client's answer, an empty Certificate
// and Finished or a Certificate, CertificateVerify and Finished, each in a
// record of its own (OpenSSL, so curl). The Finished record's size (from
// the suite's hash) anchors the answer: a NewSessionTicket is never
// answered, so it is not read as a request.
type phaWatch struct {
	ch  *ClientHello // the handshake's, which offered post_handshake_auth
	fin int          // the client's Finished record
	// requested: the client sent data (its request) before the server's
	// current run of records.
	requested bool
	// serverLast: the server sent the last record.
	serverLast bool
	// serverRun is the server's records since the client last spoke; cr
	// the last message of the run before the client's current one (what
	// the client may be answering), when a request came before it.
	serverRun []int
	cr        []int
	clientRun []int
	// left counts down the records still watched, both ways.
	left int
}

// phaResult is a post-handshake authentication read from record sizes.
type phaResult struct {
	ch             *ClientHello
	inf            Inference
	server, client []int
	response       int // the server's next record, 0 when the connection ended first
}

func newPHAWatch(h *Handshake, fin int) *phaWatch {
	w := &phaWatch{ch: h.ClientHello, fin: fin, left: 2 * maxPHARecords, serverLast: true}
	if n := len(h.ServerRecords); n > 0 {
		// The server's record that ended the handshake (a NewSessionTicket,
		// or a request answered at once) opens its first run.
		w.serverRun = append(w.serverRun, h.ServerRecords[n-1])
	}
	w.requested = h.Inferred != nil && len(h.ClientRecords) > h.Inferred.ClientFlight
	return w
}

// record reads one protected record's length. It returns a result when a
// post-handshake authentication was read, and whether the watch is over.
func (w *phaWatch) record(from Direction, n int) (*phaResult, bool) {
	w.left--
	if from == FromClient {
		if w.serverLast {
			w.serverLast = false
			w.cr = nil
			if w.requested && len(w.serverRun) > 0 {
				groups := groupRecords(w.serverRun, full13)
				w.cr = groups[len(groups)-1]
			}
			w.clientRun = w.clientRun[:0]
		}
		if len(w.clientRun) < maxRecords {
			w.clientRun = append(w.clientRun, n)
		} else {
			w.cr = nil // more than any answer: data
		}
		return nil, w.left <= 0
	}
	if !w.serverLast {
		// The client's run ended: an answer to the server's request, or
		// data (a request) the server now answers.
		w.serverLast = true
		if r := w.match(n); r != nil {
			return r, true
		}
		w.requested = true
		w.serverRun = w.serverRun[:0]
	}
	if len(w.serverRun) < maxRecords {
		w.serverRun = append(w.serverRun, n)
	} else {
		// Only the run's last message can be a request: keep its tail.
		copy(w.serverRun, w.serverRun[1:])
		w.serverRun[len(w.serverRun)-1] = n
	}
	return nil, w.left <= 0
}

// end is the watch's last word when the connection ends: an answer the
// server never responded to.
func (w *phaWatch) end() *phaResult {
	if w.serverLast {
		return nil
	}
	return w.match(0)
}

// match reads the client's current run as an answer to w.cr; response is
// the server's record after it (0: none).
func (w *phaWatch) match(response int) *phaResult {
	if len(w.cr) == 0 || len(w.clientRun) == 0 {
		return nil
	}
	crLen := sum(w.cr) - len(w.cr)*aeadOverhead
	if crLen < minPHARequest {
		return nil
	}
	groups := groupRecords(w.clientRun, full13)
	if last := groups[len(groups)-1]; len(last) != 1 || last[0] != w.fin {
		return nil
	}
	inf := Inference{CertRequested: Yes, CertRequestLen: crLen, CertRequestMin: crLen, CertRequestRecords: len(w.cr)}
	var ev []string
	in := ""
	if len(w.cr) > 1 {
		in = " in " + strconv.Itoa(len(w.cr)) + " records"
	}
	ev = append(ev, "after the client's request, a server record of "+ints(w.cr)+": a CertificateRequest ("+strconv.Itoa(crLen)+" bytes"+in+")")
	msg := func(g []int) int { return sum(g) - len(g)*aeadOverhead }
	switch len(groups) {
	case 2:
		// An empty Certificate echoes the request's context, which the
		// request holds with signature_algorithms besides.
		c := msg(groups[0])
		if len(groups[0]) != 1 || c < minPHAEmptyCert || c > maxPHAEmptyCert || crLen < c+minPHARequest-minPHAEmptyCert {
			return nil
		}
		inf.CertSent = No
		ev = append(ev, "the client answered "+ints(w.clientRun)+": an empty Certificate ("+strconv.Itoa(c)+" bytes, its context "+
			strconv.Itoa(c-minPHAEmptyCert+1)+") and Finished ("+strconv.Itoa(w.fin)+")")
	case 3:
		c, v := msg(groups[0]), msg(groups[1])
		if c < minPHACert || len(groups[1]) != 1 || v < minCertVerify13 || v > maxCertVerify13 {
			return nil
		}
		inf.CertSent = Yes
		ev = append(ev, "the client answered "+ints(w.clientRun)+": a Certificate with a chain ("+strconv.Itoa(c)+" bytes), CertificateVerify ("+
			strconv.Itoa(v)+"), Finished ("+strconv.Itoa(w.fin)+")")
	default:
		return nil
	}
	switch response {
	case 0:
		ev = append(ev, "the connection ended before the server answered")
	case alertRecord:
		inf.ServerAlert = true
		ev = append(ev, "the server's next record is "+strconv.Itoa(alertRecord)+" bytes: an alert")
	default:
		ev = append(ev, "the server went on ("+strconv.Itoa(response)+"-byte record)")
	}
	inf.Evidence = strings.Join(ev, "; ") + " (post-handshake authentication)"
	return &phaResult{ch: w.ch, inf: inf, server: append([]int(nil), w.cr...), client: append([]int(nil), w.clientRun...), response: response}
}
