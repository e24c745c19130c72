package rules

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

// nearMissReference is nearMiss as it was before issuer lists were parsed
// once (every listed DN parsed and formatted again for each DN of the
// chain): the oracle the indexed version must agree with, message for
// message.
func nearMissReference(chain []*x509.Certificate, issuers []handshake.DN) string {
	for _, c := range chain {
		for _, raw := range [][]byte{c.RawIssuer, c.RawSubject} {
			var mine pkix.RDNSequence
			if _, err := asn1.Unmarshal(raw, &mine); err != nil {
				continue
			}
			for i, dn := range issuers {
				listed, err := dn.Name()
				if err != nil {
					continue
				}
				if mine.String() == listed.String() {
					return fmt.Sprintf("Near miss: listed DN #%d reads the same (%s) but is encoded differently (%s); browsers compare the encoded bytes, so it does not match.",
						i+1, listed, encodingDifference(raw, dn.Raw))
				}
				if cn := handshake.CommonName(mine); cn != "" && cn == handshake.CommonName(listed) {
					return fmt.Sprintf("Near miss: listed DN #%d has the same CN but differs elsewhere: listed %s, chain has %s.", i+1, listed, mine)
				}
			}
		}
	}
	return ""
}

// parsedRequest is a TLS 1.2 CertificateRequest naming dns, through the
// parser (and so the issuer cache), as a server's would be read.
func parsedRequest(t testing.TB, dns []handshake.DN) *handshake.CertificateRequest {
	t.Helper()
	var vector []byte
	for _, dn := range dns {
		vector = append(vector, byte(len(dn.Raw)>>8), byte(len(dn.Raw)))
		vector = append(vector, dn.Raw...)
	}
	body := append([]byte{2, 1, 64, 0, 4, 4, 3, 8, 4, byte(len(vector) >> 8), byte(len(vector))}, vector...)
	cr, err := handshake.ParseCertificateRequest(body, false, true)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// TestNearMissMatchesReference: over random lists mixing the chain's own
// DNs, the same names re-encoded, names sharing only the CN, unrelated and
// unparsable DNs, in random order and with repeats, the near-miss text and
// the listed/not-listed answer are the ones the per-DN comparison gave,
// for a parsed request and for one built by hand.
func TestNearMissMatchesReference(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.NewClient(t, "alice")
	chain := []*x509.Certificate{leaf.Cert, f.inter.Cert, f.root.Cert}
	var pool [][]byte
	for _, c := range chain {
		for _, raw := range [][]byte{c.RawSubject, c.RawIssuer} {
			var rdn pkix.RDNSequence
			if _, err := asn1.Unmarshal(raw, &rdn); err != nil {
				t.Fatal(err)
			}
			reencoded, err := asn1.Marshal(reencodeUTF8(rdn))
			if err != nil {
				t.Fatal(err)
			}
			var n pkix.Name
			n.FillFromRDNSequence(&rdn)
			sameCN, _ := asn1.Marshal(pkix.Name{CommonName: n.CommonName, Organization: []string{"Elsewhere"}}.ToRDNSequence())
			pool = append(pool, raw, reencoded, sameCN)
		}
	}
	noCN, _ := asn1.Marshal(pkix.Name{Organization: []string{"No CN"}}.ToRDNSequence())
	pool = append(pool, f.foreign.Cert.RawSubject, noCN, []byte{0x30, 0x03, 0x01}, append(bytes.Clone(f.foreign.Cert.RawSubject), 0))
	for _, m := range pkitest.ManyCAs(t, 5) {
		pool = append(pool, m.Cert.RawSubject)
	}
	rng := rand.New(rand.NewPCG(22, 1))
	for i := range 500 {
		var dns []handshake.DN
		for range rng.IntN(12) {
			dns = append(dns, handshake.DN{Raw: pool[rng.IntN(len(pool))]})
		}
		sub := chain[:1+rng.IntN(len(chain))]
		want, wantListed := nearMissReference(sub, dns), chainMatches(sub, dns)
		for _, cr := range []*handshake.CertificateRequest{parsedRequest(t, dns), request(dns)} {
			if got := nearMiss(sub, cr); got != want {
				t.Fatalf("case %d: nearMiss\n got %q\nwant %q", i, got, want)
			}
			if got := chainListed(sub, cr); got != wantListed {
				t.Fatalf("case %d: chainListed %v, chainMatches %v", i, got, wantListed)
			}
		}
	}
}

// TestDiagnoseCostIndependentOfListLength: once a list is cached, the
// rules allocate as much for 261 listed CAs as for 3 (47,033 times against
// 464 when every listed DN was parsed for the near miss), for a client whose
// leaf no CA of the list issued (every listed DN a near-miss candidate).
func TestDiagnoseCostIndependentOfListLength(t *testing.T) {
	f := newFixture(t)
	sent := f.foreign.NewClient(t, "bob")
	many := dns(pkitest.ManyCAs(t, 261)...)
	opts := Options{Now: now, IssuerListWarnBytes: 1 << 20, IssuerListErrorBytes: 1 << 20} // no size finding
	allocs := map[int]float64{}
	for _, list := range [][]handshake.DN{many[:3], many} {
		h := tls12(parsedRequest(t, list), sent)
		r := Diagnose(h, Evidence{}, opts)
		if ids := ids(r); len(ids) != 1 || ids[0] != "client-cert-issuer-not-listed" {
			t.Fatalf("%d CAs: findings %v", len(list), ids)
		}
		allocs[len(list)] = testing.AllocsPerRun(20, func() { Diagnose(h, Evidence{}, opts) })
	}
	// One more at most: a count of 256 or more is boxed for fmt, a smaller one is not.
	if allocs[261] > allocs[3]+1 {
		t.Errorf("Diagnose allocates %v times for 261 CAs, %v for 3: the cost grows with the list", allocs[261], allocs[3])
	}
}
