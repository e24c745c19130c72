package event

import (
	"sync"

	"github.com/certlens/certlens/handshake"
)

// dnNames remembers the RFC 4514 form of the DNs already seen. A server
// sends the same issuer list on every handshake, a few hundred DNs for an
// IIS with a full Trusted Root store, and rendering a DN (ASN.1 decoding,
// then escaping) costs more than everything else done with a handshake:
// without it, analyze spends two thirds of its time on the same strings.
var dnNames = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// maxDNNames bounds the memory: a few MB at most; when full it starts over.
const maxDNNames = 8192

func dnString(dn handshake.DN) string {
	dnNames.Lock()
	s, ok := dnNames.m[string(dn.Raw)]
	dnNames.Unlock()
	if ok {
		return s
	}
	s = dn.String()
	dnNames.Lock()
	if len(dnNames.m) >= maxDNNames {
		dnNames.m = map[string]string{}
	}
	dnNames.m[string(dn.Raw)] = s
	dnNames.Unlock()
	return s
}
