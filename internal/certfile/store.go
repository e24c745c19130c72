package certfile

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/certlens/certlens/rules"
)

// The kinds of certificate store certlens reads.
const (
	StoreNSS     = "nss"     // Chromium and Firefox on Linux, through NSS's certutil
	StoreWindows = "windows" // the user's (or the machine's) My store, through crypt32
	StoreMacOS   = "macos"   // the login keychain, through security
)

// StoreSpec names one store: "nss" (sql:$HOME/.pki/nssdb), "nss:DIR",
// "windows", "macos".
type StoreSpec struct {
	Kind string
	Dir  string // nss: the database directory
	// Machine reads Windows' LocalMachine\My instead of CurrentUser\My.
	Machine bool
}

// ParseStore reads a store's name as --store and --expect-cert store:
// take it. An error says what is accepted.
func ParseStore(s string) (StoreSpec, error) {
	kind, dir, hasDir := strings.Cut(s, ":")
	switch kind = strings.ToLower(kind); {
	case kind == StoreNSS && hasDir && dir == "":
		return StoreSpec{}, fmt.Errorf("store %q: nss: needs a directory after the colon, e.g. nss:%s", s, filepath.Join("$HOME", ".pki", "nssdb"))
	case kind == StoreNSS:
		return StoreSpec{Kind: kind, Dir: strings.TrimPrefix(dir, "sql:")}, nil
	case (kind == StoreWindows || kind == StoreMacOS) && !hasDir:
		return StoreSpec{Kind: kind}, nil
	}
	return StoreSpec{}, fmt.Errorf("store %q: want nss, nss:DIR (an NSS database directory), windows or macos", s)
}

// String is the store as the user names it, the NSS directory resolved.
func (s StoreSpec) String() string {
	switch {
	case s.Kind == StoreNSS && s.Dir != "":
		return "nss:" + s.Dir
	case s.Kind == StoreWindows && s.Machine:
		return "windows (LocalMachine\\My)"
	case s.Kind == StoreWindows:
		return "windows (CurrentUser\\My)"
	}
	return s.Kind
}

// StoreCert is one certificate of a store and what the store says of its
// private key.
type StoreCert struct {
	Name string // NSS nickname, Windows friendly name, keychain label
	Cert *x509.Certificate
	Key  rules.Key
}

// Store is what a store holds: its certificates (client certificates and
// CAs alike) and further CA certificates a browser builds chains from
// (Windows' CA and Root stores).
type Store struct {
	Spec  StoreSpec
	Certs []StoreCert
	Pool  []*x509.Certificate
}

// ReadStore reads the store spec names.
func ReadStore(ctx context.Context, spec StoreSpec) (*Store, error) {
	switch spec.Kind {
	case StoreNSS:
		if spec.Dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("store nss: no home directory to find .pki/nssdb in (%v); name the database: nss:DIR", err)
			}
			spec.Dir = filepath.Join(home, ".pki", "nssdb")
		}
		return readNSS(ctx, spec, execRunner{})
	case StoreWindows:
		src, err := openCAPI(spec.Machine)
		if err != nil {
			return nil, fmt.Errorf("store windows: %w", err)
		}
		return readCAPI(spec, src)
	case StoreMacOS:
		if runtime.GOOS != "darwin" {
			return nil, errors.New("store macos: the login keychain is read with macOS's security command; run certlens on the Mac")
		}
		return readKeychain(ctx, spec, execRunner{})
	}
	return nil, fmt.Errorf("store %q: unknown kind", spec.Kind)
}

// Identities are the store's client certificates, as a browser sees them:
// each certificate that is no CA, or has a private key, with the chain
// built from the store's own certificates (rules.BuildChain: no AIA).
func (s *Store) Identities() []rules.ExpectedCert {
	local := append([]*x509.Certificate{}, s.Pool...)
	for _, c := range s.Certs {
		local = append(local, c.Cert)
	}
	var out []rules.ExpectedCert
	for _, c := range s.Certs {
		if c.Cert.IsCA && c.Key.State != rules.KeyPresent {
			continue
		}
		chain, _ := rules.BuildChain(c.Cert, local)
		out = append(out, rules.ExpectedCert{Name: c.Name, Chain: chain, Store: s.Spec.String(), Key: c.Key})
	}
	return out
}
