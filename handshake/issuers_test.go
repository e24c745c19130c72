package handshake

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// vectorOf is a certificate_authorities vector's content naming dns.
func vectorOf(dns ...[]byte) []byte {
	var v []byte
	for _, dn := range dns {
		v = append(v, byte(len(dn)>>8), byte(len(dn)))
		v = append(v, dn...)
	}
	return v
}

func nameDER(t *testing.T, n pkix.Name) []byte {
	t.Helper()
	der, err := asn1.Marshal(n.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestIssuerListIndexes: names are DN.String's, unparsable DNs included,
// and each index leads to the first DN that has the DER, the name or the CN.
func TestIssuerListIndexes(t *testing.T) {
	a := nameDER(t, pkix.Name{Organization: []string{"A"}, CommonName: "Shared CN"})
	b := nameDER(t, pkix.Name{Organization: []string{"B"}, CommonName: "Shared CN"})
	noCN := nameDER(t, pkix.Name{Organization: []string{"No CN"}})
	bad := []byte{0x30, 0x03, 0x01}
	dns := [][]byte{bad, noCN, a, b, a}
	l, err := newIssuerCache(4, 1<<20).Lookup(vectorOf(dns...))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, dn := range dns {
		want = append(want, DN{Raw: dn}.String())
	}
	if !slices.Equal(l.Names(), want) || l.Len() != 5 {
		t.Errorf("names %q, want %q", l.Names(), want)
	}
	for _, tc := range []struct {
		what      string
		got, want int
	}{
		{"DER of A", l.IndexDER(a), 2}, {"DER of B", l.IndexDER(b), 3}, {"DER of the bad DN", l.IndexDER(bad), 0},
		{"DER not listed", l.IndexDER(nameDER(t, pkix.Name{CommonName: "x"})), -1},
		{"name of B", l.IndexName(want[3]), 3}, {"unparsed form", l.IndexName(want[0]), -1},
		{"shared CN", l.IndexCN("Shared CN"), 2}, {"empty CN", l.IndexCN(""), -1}, {"CN not listed", l.IndexCN("x"), -1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: index %d, want %d", tc.what, tc.got, tc.want)
		}
	}
}

// TestIssuerCacheParsesOnce: the same bytes give the same list, parsed
// once; other bytes another; a parser's requests share the list.
func TestIssuerCacheParsesOnce(t *testing.T) {
	c := newIssuerCache(8, 1<<20)
	v1, v2 := vectorOf(dnDER(1), dnDER(2)), vectorOf(dnDER(2), dnDER(1))
	l1, _ := c.Lookup(v1)
	again, _ := c.Lookup(bytes.Clone(v1))
	l2, _ := c.Lookup(v2)
	if l1 != again || l1 == l2 {
		t.Errorf("same bytes gave lists %p and %p; other bytes %p", l1, again, l2)
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 2 || s.Entries != 2 {
		t.Errorf("stats %+v", s)
	}

	var dns [][]byte
	for i := range 260 {
		dns = append(dns, dnDER(i))
	}
	var lists []*IssuerList
	for range 2 {
		hs, _ := run(t, mutualTLS12(16384, dns), feedModes[2], Options{})
		lists = append(lists, hs[0].CertRequest.IssuerList())
	}
	if lists[0] != lists[1] || lists[0].Len() != 260 {
		t.Errorf("two connections with one list: lists %p and %p", lists[0], lists[1])
	}
}

// TestIssuerCacheBounded: entries beyond the bound go least recently used
// first; bytes are bounded too, and a list larger than the bound is
// returned but not kept.
func TestIssuerCacheBounded(t *testing.T) {
	c := newIssuerCache(3, 1<<20)
	vs := make([][]byte, 5)
	for i := range vs {
		vs[i] = vectorOf(dnDER(i))
	}
	for _, i := range []int{0, 1, 2, 0, 3, 4} { // 0 used again: 1 and 2 go
		c.Lookup(vs[i])
	}
	if s := c.Stats(); s.Entries != 3 || s.Evictions != 2 {
		t.Errorf("stats %+v", s)
	}
	c.Lookup(vs[0])
	if s := c.Stats(); s.Hits != 2 {
		t.Errorf("the list used last before the evictions was evicted: %+v", s)
	}

	one, _ := newIssuerCache(10, 1<<20).Lookup(vs[0])
	c = newIssuerCache(10, one.size*3/2)
	c.Lookup(vs[0])
	c.Lookup(vs[1])
	if s := c.Stats(); s.Entries != 1 || s.Bytes > one.size*3/2 || s.Evictions != 1 {
		t.Errorf("byte bound %d: stats %+v", one.size*3/2, s)
	}
	big := vectorOf(dnDER(1), dnDER(2), dnDER(3))
	c.Reset()
	l, err := c.Lookup(big)
	if err != nil || l.Len() != 3 || c.Stats().Entries != 0 {
		t.Errorf("list over the byte bound: %d DNs, %v, stats %+v", l.Len(), err, c.Stats())
	}
}

// TestIssuerCacheConcurrent: connections looking lists up at once, with
// evictions going on, each get their own list's DNs (run with -race).
func TestIssuerCacheConcurrent(t *testing.T) {
	c := newIssuerCache(2, 1<<20)
	vs := make([][]byte, 4)
	for i := range vs {
		vs[i] = vectorOf(dnDER(i), dnDER(i+100))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range 300 {
				i := (g + k) % len(vs)
				l, _ := c.Lookup(vs[i])
				if l.Len() != 2 || !bytes.Equal(l.DNs()[0].Raw, dnDER(i)) || l.Names()[1] != (DN{Raw: dnDER(i + 100)}).String() {
					errs <- fmt.Errorf("lookup of list %d gave %q", i, l.Names())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMalformedListCached: a vector that breaks off gives the same DNs and
// the same error from the cache as when first parsed.
func TestMalformedListCached(t *testing.T) {
	c := newIssuerCache(4, 1<<20)
	v := append(vectorOf(dnDER(1)), 0xff, 0xff, 1)
	for range 2 {
		l, err := c.Lookup(v)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "certificate_authorities entry 2") || l.Len() != 1 {
			t.Errorf("%d DNs, err %v", l.Len(), err)
		}
	}
}

// TestSetIssuers: DNs handed over by crypto/tls make the list the wire
// would have given, from the same cache.
func TestSetIssuers(t *testing.T) {
	dns := [][]byte{dnDER(7), dnDER(8)}
	var cr CertificateRequest
	cr.SetIssuers(dns)
	wire, err := ParseCertificateRequest(certRequest12(dns...)[4:], false, true)
	if err != nil {
		t.Fatal(err)
	}
	if cr.IssuerList() != wire.IssuerList() || cr.IssuerBytes != wire.IssuerBytes || len(cr.Issuers) != 2 {
		t.Errorf("set: %d DNs, %d bytes; wire: %d bytes", len(cr.Issuers), cr.IssuerBytes, wire.IssuerBytes)
	}
	var none CertificateRequest
	none.SetIssuers(nil)
	if none.Issuers == nil || len(none.Issuers) != 0 || none.IssuerBytes != 0 {
		t.Errorf("no DNs: %#v", none.Issuers)
	}
}

// TestParsingALongListCostsLikeAShortOne: once a list is cached, a
// connection whose 60 KB list spans records allocates no more than one
// with a 3-DN list in one record: nothing per DN, no reassembly buffer.
func TestParsingALongListCostsLikeAShortOne(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (sync.Pool drops buffers)")
	}
	allocs := map[int]float64{}
	for _, n := range []int{3, 260} {
		var dns [][]byte
		for i := range n {
			dns = append(dns, dnDER(i))
		}
		c := mutualTLS12(16384, dns)
		feed := func() {
			p := NewParser(Options{})
			for _, ch := range *c {
				p.Feed(ch.from, ch.data)
			}
			p.Close()
		}
		feed()
		allocs[n] = testing.AllocsPerRun(50, feed)
	}
	if allocs[260] > allocs[3] {
		t.Errorf("a connection allocates %v times with 260 CAs, %v with 3", allocs[260], allocs[3])
	}
}
