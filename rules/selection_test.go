package rules

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/testkit/pkitest"
)

func TestBuildChainFromLocalCertificatesOnly(t *testing.T) {
	f := newFixture(t)
	alice := f.inter.NewClient(t, "alice")
	// A CA with alice's issuer's name but another key: found by name, refused by signature.
	impostor := pkitest.NewCA(t, "certlens rules issuing CA")

	chain, complete := BuildChain(alice.Cert, []*x509.Certificate{impostor.Cert, f.root.Cert, f.inter.Cert, f.foreign.Cert})
	if !complete || len(chain) != 3 || chain[1] != f.inter.Cert || chain[2] != f.root.Cert {
		t.Errorf("chain %s complete=%v, want alice <- issuing CA <- root, complete", chainNames(chain), complete)
	}
	chain, complete = BuildChain(alice.Cert, []*x509.Certificate{f.root.Cert, impostor.Cert})
	if complete || len(chain) != 1 {
		t.Errorf("intermediate missing: chain %s complete=%v, want the leaf alone, incomplete", chainNames(chain), complete)
	}
}

func TestChooseStoreCertificate(t *testing.T) {
	f := newFixture(t)
	alice := f.inter.NewClient(t, "alice")
	full := []*x509.Certificate{alice.Cert, f.inter.Cert, f.root.Cert}
	rootOnly := request(dns(f.root))
	cases := []struct {
		name     string
		exp      ExpectedCert
		req      Request
		want     []string
		cautions []string
		text     string // in the reasons' text
	}{
		{"in the store with its key", ExpectedCert{Chain: full, Store: "nss", Key: Key{State: KeyPresent}}, Request{CR: rootOnly}, nil, nil, ""},
		{"no private key in the store", ExpectedCert{Chain: full, Store: "nss", Key: Key{State: KeyMissing}}, Request{CR: rootOnly},
			[]string{"no-private-key"}, nil, "no private key"},
		{"intermediate missing from the store, root listed", ExpectedCert{Chain: full[:1], Store: "nss", Key: Key{State: KeyPresent}}, Request{CR: rootOnly},
			[]string{"issuer-not-listed"}, nil, "never fetch a missing CA certificate"},
		{"intermediate missing, but its name is the leaf's issuer and listed", ExpectedCert{Chain: full[:1], Store: "nss", Key: Key{State: KeyPresent}},
			Request{CR: request(dns(f.inter))}, nil, nil, ""},
		{"AT_KEYEXCHANGE: offered, with a caution", ExpectedCert{Chain: full, Store: "windows", Key: Key{State: KeyPresent, Spec: SpecKeyExchange, Provider: "Microsoft Strong Cryptographic Provider"}},
			Request{CR: rootOnly}, nil, []string{"key-exchange-spec"}, ""},
		{"names only: root listed by name", ExpectedCert{Chain: full}, Request{Names: []string{f.root.Cert.Subject.String()}}, nil, nil, ""},
		{"names only: nothing listed matches", ExpectedCert{Chain: full}, Request{Names: []string{f.foreign.Cert.Subject.String()}},
			[]string{"issuer-not-listed"}, nil, "Compared by name"},
		{"names only: empty list takes any", ExpectedCert{Chain: full}, Request{}, nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Choose(tc.exp, tc.req, now)
			var got, cautions []string
			var text strings.Builder
			for _, r := range c.Reasons {
				got = append(got, r.Code)
				text.WriteString(r.Text)
			}
			for _, r := range c.Cautions {
				cautions = append(cautions, r.Code)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(cautions, tc.cautions) || c.Offered != (len(tc.want) == 0) {
				t.Errorf("offered=%v reasons %v cautions %v, want reasons %v cautions %v", c.Offered, got, cautions, tc.want, tc.cautions)
			}
			if !strings.Contains(text.String(), tc.text) {
				t.Errorf("reasons %q do not say %q", text.String(), tc.text)
			}
		})
	}
}

// A store's certificates make one finding, naming the closest near miss.
func TestExpectedStoreNamesClosestNearMiss(t *testing.T) {
	f := newFixture(t)
	expired := f.inter.NewClient(t, "expired alice", pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)))
	everythingWrong := f.foreign.NewClient(t, "mallory", pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment),
		pkitest.WithExtKeyUsage(x509.ExtKeyUsageEmailProtection))
	good := f.inter.NewClient(t, "good alice")
	store := func(cs ...*pkitest.Cert) []ExpectedCert {
		var out []ExpectedCert
		for _, c := range cs {
			var chain []*x509.Certificate
			for _, x := range c.Chain() {
				chain = append(chain, x.Cert)
			}
			out = append(out, ExpectedCert{Name: c.Cert.Subject.CommonName, Chain: chain, Store: "nss:/home/alice/.pki/nssdb", Key: Key{State: KeyPresent}})
		}
		return out
	}
	findings := func(exps []ExpectedCert) []Finding {
		r := Diagnose(tls12(request(dns(f.root)), nil), Evidence{}, Options{ExpectCerts: exps, Now: now})
		var out []Finding
		for _, f := range r.Findings {
			if f.ID == "expected-cert-not-selectable" {
				out = append(out, f)
			}
		}
		return out
	}
	got := findings(store(everythingWrong, expired))
	if len(got) != 1 || !strings.Contains(got[0].Summary, "expired alice") || !strings.Contains(got[0].Summary, "1 reason") ||
		!strings.Contains(got[0].Detail, "None of the 2 certificates") {
		t.Errorf("findings %+v, want one naming expired alice, the closest", got)
	}
	got = findings(store(everythingWrong, expired, good))
	if len(got) != 1 || !strings.Contains(got[0].Summary, "good alice") || !strings.Contains(got[0].Summary, "would be offered") ||
		!strings.Contains(got[0].Detail, "1 of the 3 certificates") {
		t.Errorf("findings %+v, want one naming good alice, offered", got)
	}
	// The client sent one of the store's certificates: nothing to explain.
	r := Diagnose(tls12(request(dns(f.root)), good), Evidence{}, Options{ExpectCerts: store(expired, good), Now: now})
	for _, f := range r.Findings {
		if f.ID == "expected-cert-not-selectable" {
			t.Errorf("finding %+v for a client that sent a certificate", f)
		}
	}
}

// Every reason Choose can give has its clause in the finding's remedy:
// a reason without one would leave expected-cert-not-selectable's remedy
// silent about it.
func TestEveryReasonHasARemedy(t *testing.T) {
	f := newFixture(t)
	bad := f.foreign.NewClient(t, "everything wrong", pkitest.WithValidity(now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)),
		pkitest.WithKeyUsage(x509.KeyUsageKeyEncipherment), pkitest.WithExtKeyUsage(x509.ExtKeyUsageServerAuth))
	future := f.inter.NewClient(t, "future", pkitest.WithValidity(now.AddDate(1, 0, 0), now.AddDate(2, 0, 0)))
	cr := request(dns(f.root))
	cr.CertTypes, cr.SignatureSchemes = []handshake.CertificateType{handshake.CertTypeRSASign}, []handshake.SignatureScheme{0x0401}
	seen := map[string]bool{}
	for _, exp := range []ExpectedCert{
		{Chain: []*x509.Certificate{bad.Cert, f.foreign.Cert}, Store: "nss", Key: Key{State: KeyMissing}},
		{Chain: []*x509.Certificate{future.Cert, f.inter.Cert, f.root.Cert}},
	} {
		for _, r := range Choose(exp, Request{CR: cr, Version: handshake.VersionTLS12}, now).Reasons {
			seen[r.Code] = true
			if reasonFixes([]string{r.Code}) == "" {
				t.Errorf("reason %s has no remedy in reasonRemedies", r.Code)
			}
		}
	}
	for _, code := range allReasonCodes() {
		if !seen[code] {
			t.Errorf("reason %s not produced here: add a certificate that earns it", code)
		}
	}
}
