package handshake

import (
	"strings"
	"testing"
)

func TestStreamShorterThanAHeader(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"other protocol", "ping", `starts with "ping"`},
		{"truncated TLS", "\x16\x03\x01", "the stream ended after 3 bytes (160301)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{}
			c.client([]byte(tc.data))
			hs, obs := runAll(t, c, Options{})
			if len(hs) != 0 || !strings.Contains(obs.NotTLS, tc.want) {
				t.Errorf("handshakes %d, not_tls %q, want %q", len(hs), obs.NotTLS, tc.want)
			}
		})
	}
}
