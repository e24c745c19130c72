package certfile

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/testkit/peertest"
	"github.com/certlens/certlens/internal/testkit/pkitest"
	"github.com/certlens/certlens/rules"
)

func TestParseStore(t *testing.T) {
	cases := []struct {
		in   string
		want StoreSpec
		err  string
	}{
		{"nss", StoreSpec{Kind: StoreNSS}, ""},
		{"nss:/home/a/.pki/nssdb", StoreSpec{Kind: StoreNSS, Dir: "/home/a/.pki/nssdb"}, ""},
		{"NSS:sql:/db", StoreSpec{Kind: StoreNSS, Dir: "/db"}, ""},
		{"windows", StoreSpec{Kind: StoreWindows}, ""},
		{"macos", StoreSpec{Kind: StoreMacOS}, ""},
		{"nss:", StoreSpec{}, "needs a directory"},
		{"windows:x", StoreSpec{}, "want nss"},
		{"firefox", StoreSpec{}, "want nss"},
	}
	for _, tc := range cases {
		got, err := ParseStore(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseStore(%q) error %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStore(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// An NSS database built with NSS's own tools reads back with each
// certificate's key state and the chain the store holds.
func TestReadNSS(t *testing.T) {
	peertest.Require(t, "pk12util")
	root := pkitest.NewCA(t, "certlens nss root")
	inter := root.NewIntermediate(t, "certlens nss issuing CA")
	rsa := inter.NewClient(t, "alice rsa", pkitest.WithKeyType(pkitest.RSA2048))
	ec := inter.NewClient(t, "bob ecdsa")
	keyless := inter.NewClient(t, "carol without key")
	dir := peertest.NewNSSDB(t, t.TempDir())
	peertest.NSSImportIdentity(t, dir, rsa, "alice with spaces", inter, root)
	peertest.NSSImportIdentity(t, dir, ec, "bob")
	peertest.NSSImportCert(t, dir, keyless, "carol", ",,")

	s, err := ReadStore(context.Background(), StoreSpec{Kind: StoreNSS, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, id := range s.Identities() {
		got[id.Name] = fmt.Sprintf("key=%d chain=%d", id.Key.State, len(id.Chain))
	}
	want := map[string]string{
		"alice with spaces": fmt.Sprintf("key=%d chain=3", rules.KeyPresent),
		"bob":               fmt.Sprintf("key=%d chain=3", rules.KeyPresent),
		"carol":             fmt.Sprintf("key=%d chain=3", rules.KeyMissing),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("identity %q: %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("identities %v, want only %v (the CAs are not identities)", got, want)
	}

	_, err = ReadStore(context.Background(), StoreSpec{Kind: StoreNSS, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no NSS database there") || strings.Contains(err.Error(), "\n") {
		t.Errorf("empty directory: error %v, want one line saying there is no NSS database", err)
	}
}

// fakeCAPI is a CryptoAPI store as crypt32 would list it.
type fakeCAPI map[string][]capiCert

func (f fakeCAPI) certificates(store string) ([]capiCert, error) {
	if certs, ok := f[store]; ok {
		return certs, nil
	}
	return nil, fmt.Errorf("open CurrentUser\\%s: the system cannot find the file specified", store)
}

// The Windows store's key facts (linked or not, KeySpec, provider) reach
// the selection; tested with a fake crypt32 since the real one runs on
// Windows only.
func TestReadCAPIKeySpecAndMissingKey(t *testing.T) {
	root := pkitest.NewCA(t, "certlens capi root")
	inter := root.NewIntermediate(t, "certlens capi issuing CA")
	mk := func(cn string) *pkitest.Cert { return inter.NewClient(t, cn) }
	exchange, signature, cng, nokey := mk("exchange"), mk("signature"), mk("cng"), mk("no key")
	const csp = "Microsoft Strong Cryptographic Provider"
	src := fakeCAPI{
		"My": {
			{DER: exchange.DER, FriendlyName: "Alice (exchange)", ProvInfo: &capiProvInfo{Container: "{56B1}", Provider: csp, ProvType: 1, KeySpec: atKeyExchange}},
			{DER: signature.DER, ProvInfo: &capiProvInfo{Container: "{296A}", Provider: csp, ProvType: 1, KeySpec: atSignature}},
			{DER: cng.DER, ProvInfo: &capiProvInfo{Container: "c1", Provider: "Microsoft Software Key Storage Provider", KeySpec: certNCryptSpec}},
			{DER: nokey.DER},
			{DER: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}, // not a certificate: skipped
		},
		"CA":   {{DER: inter.DER}},
		"Root": {{DER: root.DER}},
	}
	s, err := readCAPI(StoreSpec{Kind: StoreWindows}, src)
	if err != nil {
		t.Fatal(err)
	}
	req := rules.Request{CR: nil, Names: []string{root.Cert.Subject.String()}}
	var got []string
	for _, id := range s.Identities() {
		c := rules.Choose(id, req, root.Cert.NotBefore.AddDate(0, 0, 1))
		var codes []string
		for _, r := range append(c.Reasons, c.Cautions...) {
			codes = append(codes, r.Code)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|chain %d|offered %v|%s", id.Name, id.Key.Spec, id.Key.Provider, len(id.Chain), c.Offered, strings.Join(codes, ",")))
	}
	want := []string{
		"Alice (exchange)|AT_KEYEXCHANGE|" + csp + "|chain 3|offered true|key-exchange-spec",
		"signature|AT_SIGNATURE|" + csp + "|chain 3|offered true|",
		"cng|CNG|Microsoft Software Key Storage Provider|chain 3|offered true|",
		"no key|||chain 3|offered false|no-private-key",
	}
	if !slices.Equal(got, want) {
		t.Errorf("identities\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	delete(src, "Root")
	if _, err := readCAPI(StoreSpec{Kind: StoreWindows}, src); err == nil || !strings.Contains(err.Error(), "Root") {
		t.Errorf("unreadable Root store: error %v, want one naming it", err)
	}
}

// fakeRunner answers the store tools' commands with canned output.
type fakeRunner map[string]string

func (f fakeRunner) run(_ context.Context, name string, args ...string) ([]byte, error) {
	out, ok := f[name+" "+strings.Join(args, " ")]
	if !ok {
		return nil, fmt.Errorf("unexpected command %s %v", name, args)
	}
	return []byte(out), nil
}

// The keychain reader on the output format of macOS's security command
// (written from its documentation and man page: not verified on a Mac).
func TestReadKeychainOutput(t *testing.T) {
	root := pkitest.NewCA(t, "certlens keychain root")
	alice := root.NewClient(t, "alice")
	expired := root.NewClient(t, "old alice")
	nokey := root.NewClient(t, "carol")
	sha := func(c *pkitest.Cert) string {
		s := sha1.Sum(c.DER)
		return strings.ToUpper(hex.EncodeToString(s[:]))
	}
	r := fakeRunner{
		"security find-certificate -a -p": string(alice.CertPEM()) + string(expired.CertPEM()) + string(nokey.CertPEM()) + string(root.CertPEM()),
		"security find-identity -p ssl-client": "\nPolicy: SSL (client)\n  Matching identities\n" +
			"  1) " + sha(alice) + " \"Alice Smith\"\n" +
			"  2) " + sha(expired) + " \"old alice\" (CSSMERR_TP_CERT_EXPIRED)\n" +
			"     2 identities found\n\n  Valid identities only\n  1) " + sha(alice) + " \"Alice Smith\"\n     1 valid identities found\n",
	}
	s, err := readKeychain(context.Background(), StoreSpec{Kind: StoreMacOS}, r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range s.Identities() {
		got = append(got, fmt.Sprintf("%s key=%d", id.Name, id.Key.State))
	}
	want := []string{fmt.Sprintf("Alice Smith key=%d", rules.KeyPresent), fmt.Sprintf("old alice key=%d", rules.KeyPresent), fmt.Sprintf("carol key=%d", rules.KeyMissing)}
	if !slices.Equal(got, want) {
		t.Errorf("identities %v, want %v", got, want)
	}
}
