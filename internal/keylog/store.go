// Package keylog follows a client's key log (the file SSLKEYLOGFILE names)
// and indexes its secrets by client_random for handshake decryption.
package keylog

import (
	"container/list"
	"sync"

	"github.com/certlens/certlens/handshake"
)

// DefaultMaxSecrets bounds the connections whose secrets are kept: a
// browser writes a few lines per connection and the file only grows.
const DefaultMaxSecrets = 100_000

// Store is a bounded, concurrency-safe index of key log secrets by
// client_random: least recently used connections are dropped first. It
// implements handshake.SecretSource. It never logs or prints a secret.
type Store struct {
	mu      sync.Mutex
	max     int
	order   *list.List // of *entry, most recent first
	byCR    map[[32]byte]*list.Element
	waiters map[[32]byte][]chan struct{}
	evicted int64
	lines   int64
	bad     int64
}

type entry struct {
	cr      [32]byte
	secrets handshake.Secrets
}

// NewStore returns a Store holding the secrets of at most max connections
// (DefaultMaxSecrets when max <= 0).
func NewStore(max int) *Store {
	if max <= 0 {
		max = DefaultMaxSecrets
	}
	return &Store{max: max, order: list.New(), byCR: map[[32]byte]*list.Element{}, waiters: map[[32]byte][]chan struct{}{}}
}

// Lookup implements handshake.SecretSource.
func (s *Store) Lookup(cr [32]byte) (handshake.Secrets, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byCR[cr]
	if !ok {
		return handshake.Secrets{}, false
	}
	s.order.MoveToFront(el)
	return el.Value.(*entry).secrets, true
}

// Add stores one key log entry and wakes whoever waits for its connection.
func (s *Store) Add(e handshake.KeyLogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines++
	el, ok := s.byCR[e.ClientRandom]
	if ok {
		s.order.MoveToFront(el)
	} else {
		el = s.order.PushFront(&entry{cr: e.ClientRandom})
		s.byCR[e.ClientRandom] = el
		for s.order.Len() > s.max {
			old := s.order.Back()
			s.order.Remove(old)
			delete(s.byCR, old.Value.(*entry).cr)
			s.evicted++
		}
	}
	// Lookup hands out copies of the struct; the Secret bytes are never
	// written after parsing, so the copies stay valid.
	ent := el.Value.(*entry)
	ent.secrets.Set(e.Label, e.Secret)
	for _, ch := range s.waiters[e.ClientRandom] {
		close(ch)
	}
	delete(s.waiters, e.ClientRandom)
}

// Wait returns a channel closed at the next Add for cr, and a function that
// withdraws the wait (call it when no longer interested, or the waiter
// stays registered until a line for cr arrives). Check Lookup after
// registering: a secret added before Wait does not close the channel.
func (s *Store) Wait(cr [32]byte) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters[cr] = append(s.waiters[cr], ch)
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ws := s.waiters[cr]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(s.waiters, cr)
		} else {
			s.waiters[cr] = ws
		}
	}
}

// Stats are counters for the metrics and the admin page.
type Stats struct {
	Connections int   // client_randoms held
	Lines       int64 // entries added
	BadLines    int64 // lines that did not parse
	Evicted     int64 // connections dropped by the bound
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Connections: s.order.Len(), Lines: s.lines, BadLines: s.bad, Evicted: s.evicted}
}

func (s *Store) addBad() {
	s.mu.Lock()
	s.bad++
	s.mu.Unlock()
}
