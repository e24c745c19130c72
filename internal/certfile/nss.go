package certfile

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/certlens/certlens/rules"
)

// readNSS reads an NSS database (sql: format, Chromium's and Firefox's on
// Linux) with NSS's own certutil: -L for the nicknames and each nickname's
// certificates, -K for the private keys. A key belongs to the certificate
// whose CKA_ID it carries, which NSS derives from the public key.
func readNSS(ctx context.Context, spec StoreSpec, r runner) (*Store, error) {
	db := "sql:" + spec.Dir
	where := "store " + spec.String()
	list, err := r.run(ctx, "certutil", "-L", "-d", db)
	if err != nil {
		return nil, nssError(where, err)
	}
	keys, err := r.run(ctx, "certutil", "-K", "-d", db)
	var te *toolError
	if errors.As(err, &te) && strings.Contains(te.msg, "no keys found") {
		err = nil
	}
	if err != nil {
		return nil, nssError(where, err)
	}
	ids := nssKeyIDs(keys)
	s := &Store{Spec: spec}
	seen := map[string]bool{}
	for _, nick := range nssNicknames(list) {
		pemOut, err := r.run(ctx, "certutil", "-L", "-d", db, "-n", nick, "-a")
		if err != nil {
			return nil, nssError(where, err)
		}
		certs, err := Certificates(pemOut)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %q: %w", where, nick, err)
		}
		for _, c := range certs {
			fp := string(c.Raw)
			if seen[fp] {
				continue // one nickname's certificates are listed once per nickname line
			}
			seen[fp] = true
			key := rules.Key{State: rules.KeyMissing}
			if id := nssKeyID(c); id != "" && ids[id] {
				key.State = rules.KeyPresent
			}
			s.Certs = append(s.Certs, StoreCert{Name: nick, Cert: c, Key: key})
		}
	}
	return s, nil
}

func nssError(where string, err error) error {
	var te *toolError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("%s: NSS's certutil is not installed (apt-get install libnss3-tools, or dnf install nss-tools)", where)
	case errors.As(err, &te) && strings.Contains(te.msg, "SEC_ERROR_BAD_DATABASE"):
		return fmt.Errorf("%s: no NSS database there (certutil: bad database); Chromium's is $HOME/.pki/nssdb, Firefox's the profile directory", where)
	case errors.As(err, &te) && strings.Contains(te.msg, "SEC_ERROR_BAD_PASSWORD"):
		return fmt.Errorf("%s: the database has a password, which certlens cannot give certutil; list it with certutil -K -d sql:DIR", where)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// nssTrustLine is a line of certutil -L: the nickname, then the trust
// attributes (SSL,S/MIME,JAR/XPI) in the last column.
var nssTrustLine = regexp.MustCompile(`^(.*\S)\s+([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*)\s*$`)

// nssNicknames reads certutil -L's listing, in its order, each once.
func nssNicknames(out []byte) []string {
	var nicks []string
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		m := nssTrustLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "Certificate Nickname") || m[2] == "SSL,S/MIME,JAR/XPI" {
			continue
		}
		if !seen[m[1]] {
			seen[m[1]] = true
			nicks = append(nicks, m[1])
		}
	}
	return nicks
}

// nssKeyLine is a line of certutil -K: "< 0> rsa   CKA_ID-hex   nickname".
var nssKeyLine = regexp.MustCompile(`^<\s*\d+>\s+\S+\s+([0-9a-fA-F]+)\s`)

func nssKeyIDs(out []byte) map[string]bool {
	ids := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := nssKeyLine.FindStringSubmatch(line); m != nil {
			ids[strings.ToLower(m[1])] = true
		}
	}
	return ids
}

// nssKeyID is the CKA_ID NSS gives the key of c's public key: SHA-1 of
// the RSA modulus or of the EC point (uncompressed), as pk12util and
// certutil -K show it. "" for other key types.
func nssKeyID(c *x509.Certificate) string {
	var material []byte
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		material = k.N.Bytes()
	case *ecdsa.PublicKey:
		ecdh, err := k.ECDH()
		if err != nil {
			return ""
		}
		material = ecdh.Bytes()
	case ed25519.PublicKey:
		material = bytes.Clone(k)
	default:
		return ""
	}
	sum := sha1.Sum(material)
	return hex.EncodeToString(sum[:])
}
