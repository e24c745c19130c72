package handshake

import (
	"bytes"
	"crypto/x509/pkix"
	"fmt"
	"hash/maphash"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// IssuerList is one certificate_authorities list, parsed once. A server
// sends the same list on every handshake, and an IIS with a full Trusted
// Root store sends 100-300 names (20-60 KB): parsing and formatting them for
// every handshake, and comparing a client's chain against each, cost more
// than everything else certlens does with a handshake. So the list is
// parsed once per distinct byte string (issuerCache), with every form the
// event and the rules read: each DN's RFC 4514 string and CN, and indexes
// from DER, string and CN to the first listed DN that has it.
//
// An IssuerList is immutable and shared by every handshake that received
// the same bytes: what it returns must not be modified.
type IssuerList struct {
	raw   []byte // the vector's bytes; every DN is a slice of it
	dns   []DN
	names []string // DN.String() of each: RFC 4514, or the unparsed form
	// byName and byCN lead from an RFC 4514 string or a CN to the first DN
	// that parsed and has it; byDER from the hash of a DER to the first
	// DN with that hash (derClash: two different DERs share one, and
	// IndexDER scans instead).
	byName   map[string]int32
	byCN     map[string]int32
	byDER    map[uint64]int32
	derClash bool
	// bad is the 1-based entry where the vector broke (0: it did not): the
	// DNs before it are kept, as evidence.
	bad  int
	size int // bytes held, about: what issuerCache counts

	mu      sync.Mutex
	derived []derivedValue
}

type derivedValue struct {
	key   any
	value any
}

// dnSeed keys the DER hashes of every list and cache of this process.
var dnSeed = maphash.MakeSeed()

// perDNOverhead is what a DN costs an IssuerList beyond its bytes and
// strings: the DN, two string headers, three index entries.
const perDNOverhead = 200

// emptyIssuers is the list of a request that names no CA.
var emptyIssuers = newIssuerList(nil, []DN{}, 0)

// splitIssuers parses a certificate_authorities vector (its content, without
// the 2-byte length) into an IssuerList that owns a copy of it.
func splitIssuers(vector []byte) *IssuerList {
	raw := bytes.Clone(vector)
	s := cryptobyte.String(raw)
	dns, bad := []DN{}, 0
	for !s.Empty() {
		var dn cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&dn) || len(dn) == 0 {
			bad = len(dns) + 1
			break
		}
		// A full slice expression: a caller's append must not run into the next DN.
		dns = append(dns, DN{Raw: dn[:len(dn):len(dn)]})
	}
	return newIssuerList(raw, dns, bad)
}

func newIssuerList(raw []byte, dns []DN, bad int) *IssuerList {
	l := &IssuerList{raw: raw, dns: dns[:len(dns):len(dns)], names: make([]string, len(dns)), bad: bad,
		byName: make(map[string]int32, len(dns)), byCN: make(map[string]int32, len(dns)), byDER: make(map[uint64]int32, len(dns))}
	l.size = len(raw) + len(dns)*perDNOverhead
	for i, dn := range dns {
		if len(raw) == 0 {
			l.size += len(dn.Raw)
		}
		h := maphash.Bytes(dnSeed, dn.Raw)
		if j, ok := l.byDER[h]; !ok {
			l.byDER[h] = int32(i)
		} else if !bytes.Equal(dns[j].Raw, dn.Raw) {
			l.derClash = true
		}
		rdn, err := dn.Name()
		if err != nil {
			l.names[i] = dn.unparsed()
			l.size += len(l.names[i])
			continue
		}
		name, cn := rdn.String(), CommonName(rdn)
		l.names[i] = name
		// Twice the name: once here, once for what a later stage derives
		// from the list (the event's encoded JSON).
		l.size += 2*len(name) + len(cn)
		if _, ok := l.byName[name]; !ok {
			l.byName[name] = int32(i)
		}
		if _, ok := l.byCN[cn]; !ok && cn != "" {
			l.byCN[cn] = int32(i)
		}
	}
	return l
}

// CommonName is the CN of a parsed DN as crypto/x509 reads it (the last
// CN attribute that is a string), or "".
func CommonName(rdn pkix.RDNSequence) string {
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.CommonName
}

// Len is the number of DNs.
func (l *IssuerList) Len() int { return len(l.dns) }

// DNs are the DNs in wire order.
func (l *IssuerList) DNs() []DN { return l.dns }

// Names are the DNs' RFC 4514 strings in wire order (DN.String: a DN that
// does not parse shows as such).
func (l *IssuerList) Names() []string { return l.names }

// IndexDER is the index of the first DN whose DER is der, or -1.
func (l *IssuerList) IndexDER(der []byte) int {
	if l.derClash {
		for i, dn := range l.dns {
			if bytes.Equal(dn.Raw, der) {
				return i
			}
		}
		return -1
	}
	if i, ok := l.byDER[maphash.Bytes(dnSeed, der)]; ok && bytes.Equal(l.dns[i].Raw, der) {
		return int(i)
	}
	return -1
}

// IndexName is the index of the first DN that parsed and reads name
// (RFC 4514), or -1.
func (l *IssuerList) IndexName(name string) int {
	if i, ok := l.byName[name]; ok {
		return int(i)
	}
	return -1
}

// IndexCN is the index of the first DN that parsed and has the CN cn, or -1.
func (l *IssuerList) IndexCN(cn string) int {
	if i, ok := l.byCN[cn]; ok {
		return int(i)
	}
	return -1
}

// err is the error the vector's damage gives, numbering the broken entry
// after the `before` DNs an earlier certificate_authorities extension of
// the same message gave.
func (l *IssuerList) err(before int) error {
	if l.bad == 0 {
		return nil
	}
	return malformed("CertificateRequest", fmt.Sprintf("certificate_authorities entry %d", before+l.bad))
}

// Derived returns what derive makes of the list, computed once per key and
// then shared like the list: a later stage (the event's encoded JSON)
// caches what it renders of a list with it. Keys are compared with ==;
// there are as many as the program has kinds of rendering, so the values
// a list holds stay bounded.
func (l *IssuerList) Derived(key any, derive func(*IssuerList) any) any {
	l.mu.Lock()
	for _, d := range l.derived {
		if d.key == key {
			l.mu.Unlock()
			return d.value
		}
	}
	l.mu.Unlock()
	v := derive(l)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.derived {
		if d.key == key {
			return d.value // another goroutine was first
		}
	}
	l.derived = append(l.derived, derivedValue{key, v})
	return v
}

// issuerCache keeps the IssuerLists of the certificate_authorities vectors
// seen, by a hash of their bytes, least recently used out first. A
// handshake whose list is cached costs one hash of the vector and one
// comparison with the cached bytes (a hash is not proof), whatever its
// length. Safe for concurrent use.
type issuerCache struct {
	maxEntries, maxBytes int

	mu      sync.Mutex
	entries map[uint64]*issuerEntry
	lru     issuerEntry // sentinel: lru.next is the most recent
	bytes   int
	stats   issuerCacheStats
}

type issuerEntry struct {
	key        uint64
	list       *IssuerList
	prev, next *issuerEntry
}

// issuerCacheStats count what an issuerCache did.
type issuerCacheStats struct {
	Hits, Misses, Evictions uint64
	Entries, Bytes          int
}

// Bounds of the process's cache (defaultIssuers): a 261-DN list holds
// about 0.2 MB, so 16 MiB keeps some 80 of those, or 1,024 short lists.
const (
	defaultIssuerCacheEntries = 1024
	defaultIssuerCacheBytes   = 16 << 20
)

// newIssuerCache returns a cache of at most maxEntries lists and maxBytes
// bytes (IssuerList's estimate); a list larger than maxBytes is parsed
// and not kept.
func newIssuerCache(maxEntries, maxBytes int) *issuerCache {
	c := &issuerCache{maxEntries: max(1, maxEntries), maxBytes: max(0, maxBytes), entries: map[uint64]*issuerEntry{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// defaultIssuers is the process's cache: every parser (each tunnel's,
// each of analyze's connections) reads lists through it, so that a list
// is parsed once per process, whichever connection brought it. Bounded
// (defaultIssuerCacheEntries, defaultIssuerCacheBytes); tests empty it
// with Reset.
var defaultIssuers = newIssuerCache(defaultIssuerCacheEntries, defaultIssuerCacheBytes)

// Lookup returns the IssuerList of a certificate_authorities vector (its
// content, without the 2-byte length), parsing it only if it is not
// cached. A vector that breaks off gives the DNs before the damage and an
// error naming the broken entry.
func (c *issuerCache) Lookup(vector []byte) (*IssuerList, error) {
	if len(vector) == 0 {
		return emptyIssuers, nil
	}
	key := maphash.Bytes(dnSeed, vector)
	c.mu.Lock()
	if e := c.entries[key]; e != nil && bytes.Equal(e.list.raw, vector) {
		c.stats.Hits++
		c.unlink(e)
		c.pushFront(e)
		c.mu.Unlock()
		return e.list, e.list.err(0)
	}
	c.stats.Misses++
	c.mu.Unlock()

	l := splitIssuers(vector)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		if bytes.Equal(e.list.raw, vector) {
			return e.list, e.list.err(0) // parsed meanwhile by another connection
		}
		c.remove(e) // another list with the same hash: the newer one stays
	}
	if l.size <= c.maxBytes {
		e := &issuerEntry{key: key, list: l}
		c.entries[key] = e
		c.pushFront(e)
		c.bytes += l.size
		for len(c.entries) > c.maxEntries || c.bytes > c.maxBytes {
			c.remove(c.lru.prev)
			c.stats.Evictions++
		}
	}
	return l, l.err(0)
}

// Reset empties the cache and its statistics.
func (c *issuerCache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[uint64]*issuerEntry{}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	c.bytes = 0
	c.stats = issuerCacheStats{}
}

// Stats returns the counts so far and what the cache holds.
func (c *issuerCache) Stats() issuerCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = len(c.entries), c.bytes
	return s
}

func (c *issuerCache) pushFront(e *issuerEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

func (c *issuerCache) unlink(e *issuerEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *issuerCache) remove(e *issuerEntry) {
	c.unlink(e)
	delete(c.entries, e.key)
	c.bytes -= e.list.size
}

// fromDNs is the IssuerList of DNs that did not come as a vector (crypto/tls's
// AcceptableCAs, a CertificateRequest built by hand): through the cache
// when they can be written as one, which is every list a server can send.
func (c *issuerCache) fromDNs(dns []DN) *IssuerList {
	n := 0
	for _, dn := range dns {
		if len(dn.Raw) == 0 || len(dn.Raw) > 0xffff {
			return newIssuerList(nil, append([]DN{}, dns...), 0)
		}
		n += 2 + len(dn.Raw)
	}
	vector := make([]byte, 0, n)
	for _, dn := range dns {
		vector = append(vector, byte(len(dn.Raw)>>8), byte(len(dn.Raw)))
		vector = append(vector, dn.Raw...)
	}
	l, _ := c.Lookup(vector)
	return l
}

// IssuerList is the request's certificate_authorities, parsed (shared;
// not to be modified). A parsed request has it at hand; one built by hand
// finds it in the cache.
func (m *CertificateRequest) IssuerList() *IssuerList {
	if m.list != nil {
		return m.list
	}
	return defaultIssuers.fromDNs(m.Issuers)
}

// SetIssuers makes dns, received some other way than on the wire (the
// AcceptableCAs crypto/tls hands a client), the request's issuer list,
// with IssuerBytes as the wire would have it.
func (m *CertificateRequest) SetIssuers(dns [][]byte) {
	list := make([]DN, len(dns))
	m.IssuerBytes = 0
	for i, dn := range dns {
		list[i] = DN{Raw: dn}
		m.IssuerBytes += 2 + len(dn)
	}
	m.list = defaultIssuers.fromDNs(list)
	m.Issuers = m.list.dns
}
