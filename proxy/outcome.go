package proxy

// Intercept mode, the HTTP outcome: each browser request goes upstream on
// the browser connection's own transport, and the answer's status (and an
// IIS error page's substatus) is the evidence of highest rank for the
// handshake it followed.

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"

	"github.com/elazarl/goproxy"

	"github.com/certlens/certlens/rules"
)

// Bounds on what is read of an error answer's body for the rules.
const (
	maxBodyPeek     = 8 << 10
	maxInflatedPeek = 32 << 10
)

// roundTrip sends one browser request upstream and notes the answer.
func (ic *icConn) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	var up *upstream
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c, ok := info.Conn.(*upConn); ok {
				up = c.up
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if up != nil {
				up.mu.Lock()
				up.requestsSent++
				up.mu.Unlock()
			}
		},
	}
	resp, err := ic.transport.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		ic.last.Store(nil)
		// goproxy would only log a warning and drop the browser: answer.
		return badGateway(req, ic.host, err), nil
	}
	o := peekOutcome(resp)
	ic.last.Store(o)
	if up != nil {
		up.answered(o)
	}
	return resp, nil
}

func badGateway(req *http.Request, host string, err error) *http.Response {
	msg := fmt.Sprintf("certlens (intercept mode): no answer from %s: %v\n", host, err)
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) || strings.Contains(err.Error(), "not trusted") {
		msg += "The server's certificate is not trusted: add its CA to intercept.upstream_roots, or set intercept.insecure_upstream: true.\n"
	}
	return &http.Response{
		StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:          io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)),
		Request:       req,
	}
}

// peekOutcome reads the status, and for an error the start of the body
// (the IIS error page names the substatus; rules read 0x80070032), then
// puts the bytes back in front of the body for the browser. The body is
// kept for the rules only, never logged.
func peekOutcome(resp *http.Response) *rules.HTTPOutcome {
	o := &rules.HTTPOutcome{Status: resp.StatusCode}
	if resp.StatusCode < 400 || resp.Body == nil || resp.Body == http.NoBody {
		return o
	}
	buf := make([]byte, maxBodyPeek)
	n, err := io.ReadFull(resp.Body, buf)
	prefix := buf[:n]
	rest := io.Reader(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		rest = errReader{err}
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(prefix), rest), resp.Body}
	text := prefix
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		text = inflatePrefix(prefix)
	}
	o.Body = string(text)
	o.Substatus = rules.IISSubstatus(resp.StatusCode, o.Body)
	return o
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// inflatePrefix decompresses what it can of the start of a gzip stream.
func inflatePrefix(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(io.LimitReader(zr, maxInflatedPeek))
	return out
}
