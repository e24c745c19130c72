package certfile

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/certlens/certlens/rules"
)

// readKeychain reads the user's keychains (login and the search list)
// with macOS's security command: find-certificate for every certificate,
// find-identity for the ones with a private key, matched by SHA-1. Not
// -v: an expired identity must be listed, with its reason.
func readKeychain(ctx context.Context, spec StoreSpec, r runner) (*Store, error) {
	where := "store " + spec.String()
	pemOut, err := r.run(ctx, "security", "find-certificate", "-a", "-p")
	if err != nil {
		return nil, keychainError(where, err)
	}
	idOut, err := r.run(ctx, "security", "find-identity", "-p", "ssl-client")
	if err != nil {
		return nil, keychainError(where, err)
	}
	ids := keychainIdentities(idOut)
	s := &Store{Spec: spec}
	if len(strings.TrimSpace(string(pemOut))) == 0 {
		return s, nil
	}
	certs, err := Certificates(pemOut)
	if err != nil {
		return nil, fmt.Errorf("%s: security find-certificate: %w", where, err)
	}
	seen := map[string]bool{}
	for _, c := range certs {
		sum := sha1.Sum(c.Raw)
		h := strings.ToUpper(hex.EncodeToString(sum[:]))
		if seen[h] {
			continue
		}
		seen[h] = true
		key := rules.Key{State: rules.KeyMissing}
		name := c.Subject.CommonName
		if label, ok := ids[h]; ok {
			key.State, name = rules.KeyPresent, label
		}
		s.Certs = append(s.Certs, StoreCert{Name: name, Cert: c, Key: key})
	}
	return s, nil
}

// keychainIdentity is a line of security find-identity: `  1) SHA1 "label"`,
// possibly followed by why it is not valid.
var keychainIdentity = regexp.MustCompile(`^\s*\d+\)\s+([0-9A-Fa-f]{40})\s+"(.*?)"`)

func keychainIdentities(out []byte) map[string]string {
	ids := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := keychainIdentity.FindStringSubmatch(line); m != nil {
			ids[strings.ToUpper(m[1])] = m[2]
		}
	}
	return ids
}

func keychainError(where string, err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%s: macOS's security command is not on PATH", where)
	}
	return fmt.Errorf("%s: %w", where, err)
}
