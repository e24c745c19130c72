package capture

// A connection through an HTTP proxy: the client's CONNECT and the proxy's
// answer come first, then the tunnel's TLS to the CONNECT target.

import (
	"bytes"
	"strconv"
	"strings"
)

// expectConnect reads the client's side as an HTTP CONNECT tunnel through a
// proxy: heads first, then TLS, on both sides.
func (c *conn) expectConnect(client int) {
	cf, sf := &c.sides[client].fr, &c.sides[1-client].fr
	cf.state, cf.headPrefix = stateHead, []byte("CONNECT ")
	cf.onHead = func(head []byte) (int64, framerState) {
		// CONNECT authority HTTP/1.1
		if f := strings.Fields(string(head[:bytes.IndexByte(head, '\n')+1])); len(f) >= 2 {
			c.connect = f[1]
		}
		return 0, stateAligned
	}
	sf.headPrefix = []byte("HTTP/")
	sf.onHead = func(head []byte) (int64, framerState) {
		status, length, chunked := parseResponseHead(head)
		switch {
		case status >= 200 && status < 300:
			return 0, stateAligned // the tunnel is open: TLS follows
		case chunked:
			return 0, stateRaw
		}
		// A refusal (407 asking for proxy credentials): its body, then
		// the answer to the client's next CONNECT.
		return length, stateHead
	}
}

// parseResponseHead reads an HTTP response head's status and body length.
func parseResponseHead(head []byte) (status int, length int64, chunked bool) {
	lines := strings.Split(string(head), "\r\n")
	if f := strings.Fields(lines[0]); len(f) >= 2 {
		status, _ = strconv.Atoi(f[1])
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			length, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			length = max(length, 0)
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(v), "chunked")
		}
	}
	return status, length, chunked
}
