package handshake

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Key log labels (NSS key log format, FACTS.md "Key logs").
const (
	LabelClientRandom           = "CLIENT_RANDOM"
	LabelClientHandshakeTraffic = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	LabelServerHandshakeTraffic = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	LabelClientTraffic0         = "CLIENT_TRAFFIC_SECRET_0"
	LabelServerTraffic0         = "SERVER_TRAFFIC_SECRET_0"
)

// maxKeyLogLine bounds one key log line: the longest real one is a label,
// 64 hex digits and a 48-byte (96 hex digit) secret, about 200 bytes.
const maxKeyLogLine = 512

// maxSecretLen bounds a secret: SHA-384's 48 bytes is the largest any suite uses.
const maxSecretLen = 64

// ErrKeyLog is wrapped by every key log parse error.
var ErrKeyLog = errors.New("bad key log line")

// Secret is key material from a key log. It never prints: whatever the verb,
// fmt, zap's reflection and encoding/json show only its length, so a secret
// that reaches a log by mistake does not decrypt anything.
type Secret []byte

func (s Secret) String() string   { return fmt.Sprintf("[secret, %d bytes]", len(s)) }
func (s Secret) GoString() string { return s.String() }

// Format hides the bytes from every fmt verb, %x included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Secrets are what a key log holds for one connection, named by the
// ClientHello's random. A TLS 1.2 connection needs Master; TLS 1.3 needs the
// handshake traffic secrets, and the first application traffic secrets to
// read what follows the handshake (alerts, post-handshake messages).
type Secrets struct {
	Master          Secret // CLIENT_RANDOM: the TLS 1.2 master secret
	ClientHandshake Secret
	ServerHandshake Secret
	ClientTraffic   Secret // CLIENT_TRAFFIC_SECRET_0
	ServerTraffic   Secret // SERVER_TRAFFIC_SECRET_0
}

// Has13 reports whether the TLS 1.3 handshake secrets of both sides are known.
func (s *Secrets) Has13() bool { return s.ClientHandshake != nil && s.ServerHandshake != nil }

// Set stores a secret by its label and reports whether the label is one this
// package uses; others (EXPORTER_SECRET, early secrets) are ignored.
func (s *Secrets) Set(label string, secret Secret) bool {
	switch label {
	case LabelClientRandom:
		s.Master = secret
	case LabelClientHandshakeTraffic:
		s.ClientHandshake = secret
	case LabelServerHandshakeTraffic:
		s.ServerHandshake = secret
	case LabelClientTraffic0:
		s.ClientTraffic = secret
	case LabelServerTraffic0:
		s.ServerTraffic = secret
	default:
		return false
	}
	return true
}

func usedLabel(label string) bool {
	var s Secrets
	return s.Set(label, nil)
}

// String names the secrets held, never their bytes.
func (s Secrets) String() string {
	var have []string
	for _, x := range []struct {
		name string
		v    Secret
	}{{LabelClientRandom, s.Master}, {LabelClientHandshakeTraffic, s.ClientHandshake},
		{LabelServerHandshakeTraffic, s.ServerHandshake}, {LabelClientTraffic0, s.ClientTraffic},
		{LabelServerTraffic0, s.ServerTraffic}} {
		if x.v != nil {
			have = append(have, x.name)
		}
	}
	return "Secrets{" + strings.Join(have, " ") + "}"
}

func (s Secrets) GoString() string { return s.String() }

// KeyLogEntry is one line of a key log.
type KeyLogEntry struct {
	Label        string
	ClientRandom [32]byte
	Secret       Secret
}

// ParseKeyLogLine decodes one key log line (without its newline). ok is false
// for a blank line or a comment; err names what is wrong with a broken line,
// without quoting the secret.
func ParseKeyLogLine(line string) (e KeyLogEntry, ok bool, err error) {
	line = strings.TrimRight(line, "\r")
	if len(line) > maxKeyLogLine {
		return e, false, fmt.Errorf("%w: %d bytes, more than %d", ErrKeyLog, len(line), maxKeyLogLine)
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return e, false, nil
	}
	fields := strings.Fields(trimmed)
	if len(fields) != 3 {
		return e, false, fmt.Errorf("%w: %d fields, want LABEL CLIENT_RANDOM SECRET", ErrKeyLog, len(fields))
	}
	e.Label = fields[0]
	if !usedLabel(e.Label) {
		// EXPORTER_SECRET, the early secrets, NSS's "RSA <prefix> <premaster>"
		// lines: valid, just not needed here.
		return KeyLogEntry{}, false, nil
	}
	if len(fields[1]) != 64 {
		return KeyLogEntry{}, false, fmt.Errorf("%w: %s: client_random is %d hex digits, want 64", ErrKeyLog, e.Label, len(fields[1]))
	}
	if _, err := hex.Decode(e.ClientRandom[:], []byte(fields[1])); err != nil {
		return KeyLogEntry{}, false, fmt.Errorf("%w: %s: client_random is not hex", ErrKeyLog, e.Label)
	}
	n := len(fields[2])
	if n == 0 || n%2 != 0 || n/2 > maxSecretLen {
		return KeyLogEntry{}, false, fmt.Errorf("%w: %s: secret is %d hex digits, want an even number up to %d", ErrKeyLog, e.Label, n, 2*maxSecretLen)
	}
	e.Secret = make(Secret, n/2)
	if _, err := hex.Decode(e.Secret, []byte(fields[2])); err != nil {
		return KeyLogEntry{}, false, fmt.Errorf("%w: %s: secret is not hex", ErrKeyLog, e.Label)
	}
	return e, true, nil
}

// SecretSource finds the secrets of a connection by its ClientHello random.
// Implementations are safe for concurrent use; the returned Secrets are not
// modified afterwards.
type SecretSource interface {
	Lookup(clientRandom [32]byte) (Secrets, bool)
}

// KeyLog is a SecretSource read once from a whole key log (analyze, tests).
type KeyLog map[[32]byte]Secrets

// Lookup implements SecretSource.
func (k KeyLog) Lookup(cr [32]byte) (Secrets, bool) {
	s, ok := k[cr]
	return s, ok
}

// Add stores one entry and reports whether its label is one that is used.
func (k KeyLog) Add(e KeyLogEntry) bool {
	s := k[e.ClientRandom]
	if !s.Set(e.Label, e.Secret) {
		return false
	}
	k[e.ClientRandom] = s
	return true
}

// ReadKeyLog reads a whole key log. Broken lines are counted, not fatal:
// writers append concurrently and a line may be cut; bad is how many were
// skipped and firstErr the first reason.
func ReadKeyLog(r io.Reader) (k KeyLog, bad int, firstErr error) {
	k = KeyLog{}
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, tooLong, err := readLine(br)
		if line != "" || tooLong {
			e, ok, perr := ParseKeyLogLine(line)
			if tooLong {
				perr = fmt.Errorf("%w: longer than %d bytes", ErrKeyLog, maxKeyLogLine)
			}
			if perr != nil {
				bad++
				if firstErr == nil {
					firstErr = perr
				}
			} else if ok {
				k.Add(e)
			}
		}
		if err == io.EOF {
			return k, bad, nil
		}
		if err != nil {
			return k, bad, err
		}
	}
}

// readLine reads one line, dropping the rest of any line longer than
// maxKeyLogLine so that a file without newlines cannot grow memory.
func readLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(b)+len(frag) <= maxKeyLogLine+1 {
			b = append(b, frag...)
		} else {
			tooLong = true
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if tooLong {
			return "", true, err
		}
		return strings.TrimSuffix(string(b), "\n"), false, err
	}
}
