package proxy

// Intercept mode, issuer-list mirroring: the list a server sent is what
// the browser is asked with, byte for byte, so that it makes the choice it
// would make for the real server.

import (
	"crypto/x509"
	"sync"
)

// maxMirrorHosts bounds the targets whose list is kept.
const maxMirrorHosts = 4096

// mirrorLists are the issuer lists learned per target (host:port), the
// raw DNs and a CertPool that makes crypto/tls send exactly them.
type mirrorLists struct {
	mu sync.Mutex
	m  map[string]*learnedList
}

type learnedList struct {
	dns  [][]byte
	pool *x509.CertPool
}

// learn keeps target's latest list. crypto/tls sends ClientCAs.Subjects(),
// each certificate's RawSubject in the order added, so a pool of stand-ins
// whose RawSubject is a learned DN sends that DN byte for byte. Their Raw
// only has to be distinct (the pool drops duplicates by it) for a list
// that names a DN twice to be mirrored twice too.
func (ml *mirrorLists) learn(target string, dns [][]byte) {
	pool := x509.NewCertPool()
	for i, dn := range dns {
		raw := append([]byte{byte(i >> 8), byte(i)}, dn...)
		pool.AddCert(&x509.Certificate{Raw: raw, RawSubject: dn})
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if _, ok := ml.m[target]; !ok && len(ml.m) >= maxMirrorHosts {
		ml.m = map[string]*learnedList{}
	}
	ml.m[target] = &learnedList{dns: dns, pool: pool}
}

func (ml *mirrorLists) get(target string) *learnedList {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	return ml.m[target]
}
