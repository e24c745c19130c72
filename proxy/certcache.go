package proxy

import (
	"container/list"
	"crypto/tls"
	"sync"
)

// certCache is goproxy's CertStorage (the library ships none): the leaf
// certificates signed for the browser side, one per host, the least
// recently used dropped beyond max. Signing costs a key generation, and a
// browser opens several connections per host.
type certCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *certEntry, most recent first
	byKey map[string]*list.Element
	// signing holds one in-progress generation per host, so concurrent
	// connections to a new host sign it once.
	signing map[string]*signCall
}

type certEntry struct {
	host string
	cert *tls.Certificate
}

type signCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

func newCertCache(max int) *certCache {
	if max <= 0 {
		max = 1024
	}
	return &certCache{max: max, order: list.New(), byKey: map[string]*list.Element{}, signing: map[string]*signCall{}}
}

// Fetch returns host's certificate, generating it with gen when missing.
func (c *certCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	if el, ok := c.byKey[host]; ok {
		c.order.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*certEntry).cert, nil
	}
	if call, ok := c.signing[host]; ok {
		c.mu.Unlock()
		<-call.done
		return call.cert, call.err
	}
	call := &signCall{done: make(chan struct{})}
	c.signing[host] = call
	c.mu.Unlock()

	call.cert, call.err = gen()
	c.mu.Lock()
	delete(c.signing, host)
	if call.err == nil {
		c.byKey[host] = c.order.PushFront(&certEntry{host: host, cert: call.cert})
		for c.order.Len() > c.max {
			last := c.order.Back()
			c.order.Remove(last)
			delete(c.byKey, last.Value.(*certEntry).host)
		}
	}
	c.mu.Unlock()
	close(call.done)
	return call.cert, call.err
}

// Len is the number of cached certificates.
func (c *certCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
