package handshake

import (
	"errors"
	"fmt"
	"slices"
)

// maxHeld bounds the protected bytes one connection holds while its secrets
// are not yet in the key log: a server flight with a 64 KiB issuer list and
// certificate chains fits; a connection past it is read without keys.
const maxHeld = 256 << 10

// heldOverhead is what a held record costs besides its body, so that a
// stream of bodiless application-data records is bounded too.
const heldOverhead = 64

// extEncryptThenMAC is RFC 7366's extension; a ServerHello echoes it.
const extEncryptThenMAC uint16 = 22

// decryptor is a Parser's decryption state (Options.Secrets). Records are
// decrypted only in the handshake phases: a direction stops at its first
// application data (TLS 1.3) or its renegotiation's ChangeCipherSpec
// (TLS 1.2, whose application data is counted and never decrypted).
type decryptor struct {
	src SecretSource
	ch  *ClientHello // the connection's first ClientHello
	sh  *ServerHello // and ServerHello: the keys are theirs
	// ready: ciphers are set up; missing: the secret did not come (or the
	// suite is not supported) and records are read as before, encrypted.
	ready, missing bool
	// phaLeft counts down the server records read after a TLS 1.3
	// handshake for a post-handshake CertificateRequest (a client that
	// offered post_handshake_auth); phaOpen: one is being answered.
	phaLeft        int
	phaOpen        bool
	clientFinished bool // the client's handshake Finished was read
	secrets        Secrets
	dirs           [2]dirCipher
	held           []heldRecord
	heldBytes      int
	// plain is the buffer records are opened into, reused: what the
	// decoders keep, they copy (they parse in place without keys too).
	plain []byte
}

type dirCipher struct {
	c    *recordCipher
	done bool // nothing more is decrypted in this direction
	// needTraffic: TLS 1.3, after this direction's Finished, its
	// application traffic secret was not in the key log yet (a client
	// logs it a moment after the handshake ones).
	needTraffic bool
	// unkeyed counts TLS 1.2 records that passed before the keys were
	// set up (they are set up only for a renegotiation): the cipher's
	// sequence number starts after them.
	unkeyed uint64
}

type heldRecord struct {
	dir     Direction
	typ     ContentType
	version uint16
	length  int
	keep    bool
	body    []byte
}

func (d *decryptor) clientHello(h *Handshake, m *ClientHello) {
	if d != nil && h.Index == 0 && d.ch == nil && len(m.Random) == 32 {
		d.ch = m
	}
}

func (d *decryptor) serverHello(h *Handshake, m *ServerHello) {
	if d != nil && h.Index == 0 && !m.HelloRetry {
		d.sh = m
	}
}

// holding reports whether records wait for the secret.
func (d *decryptor) holding() bool { return d != nil && len(d.held) > 0 }

// wants reports whether a protected record's body must be kept to be
// decrypted (or held until it can be).
func (d *decryptor) wants(p *Parser, s *stream, typ ContentType) bool {
	if d == nil || d.missing || !s.protected || d.dirs[s.dir].done || typ == ContentChangeCipherSpec {
		return false
	}
	if d.skipClient(p, s) {
		return false
	}
	// TLS 1.2 shows the type: application data is only counted, and the
	// initial handshake's Finished shows nothing the clear part did not.
	return p.tls13 || typ != ContentApplicationData && !initialFinished12(p, s)
}

// initialFinished12 reports whether the protected record s starts is a
// TLS 1.2 initial handshake's Finished.
func initialFinished12(p *Parser, s *stream) bool {
	h := p.current(s)
	return s.awaitFinished && h != nil && h.Phase == PhaseInitial
}

// keyless12 says whether a TLS 1.2 record can pass before the keys are set
// up, only counted: all but a renegotiation's records. A clear handshake
// is neither held for a secret nor blamed for a missing one; an alert is
// opened if the secret is already there.
func (p *Parser) keyless12(s *stream, typ ContentType) bool {
	d := p.dec
	switch {
	case p.tls13 || d.ready:
		return false
	case typ == ContentApplicationData, typ == ContentHandshake && initialFinished12(p, s):
		return true
	case typ == ContentAlert:
		if d.ch == nil {
			return true
		}
		_, ok := d.src.Lookup([32]byte(d.ch.Random))
		return !ok || !p.setupKeys()
	}
	return false
}

// maxPHARecords bounds the server records opened after a TLS 1.3 handshake
// to find a post-handshake CertificateRequest: a server asks right after
// it read the request (Apache per location), within its first records.
const maxPHARecords = 64

// watchingPHA reports whether the parser still reads a TLS 1.3 connection
// after its handshake, for a post-handshake CertificateRequest: only with
// keys, only for a client that offered post_handshake_auth.
func (d *decryptor) watchingPHA(p *Parser) bool {
	if d == nil || !d.ready || !p.tls13 || d.ch == nil || !d.ch.PostHandshakeAuth {
		return false
	}
	return d.phaOpen || (d.phaLeft > 0 && !d.dirs[FromServer].done)
}

// watchPHA is called for each application-data record read after the
// handshake and says whether the direction keeps being read.
func (d *decryptor) watchPHA(p *Parser, dir Direction) bool {
	if !d.watchingPHA(p) {
		return false
	}
	if dir == FromServer && !d.phaOpen {
		d.phaLeft--
		return d.phaLeft > 0
	}
	return true
}

// skipClient: a TLS 1.3 client's record after its Finished, while no
// post-handshake request waits for its answer.
func (d *decryptor) skipClient(p *Parser, s *stream) bool {
	return p.tls13 && s.dir == FromClient && d.clientFinished && !d.phaOpen && d.watchingPHA(p)
}

// postHandshake starts the handshake a post-handshake CertificateRequest
// opens, pairing both directions with it.
func (p *Parser) postHandshake(s *stream) *Handshake {
	c := &p.streams[FromClient]
	idx := max(s.count, c.count)
	s.count, c.count = idx, idx
	h := p.begin(s, PhasePostHandshake)
	if h == nil {
		return nil
	}
	c.count, c.hs, c.inHandshake = idx+1, idx, true
	h.ClientHello = p.dec.ch
	// The server sends no Finished of its own: its Finished was the
	// handshake's (RFC 8446 4.6.2).
	h.ServerFinished = true
	p.dec.phaOpen = true
	return h
}

// Waiting reports the client_random whose secret the parser waits for: its
// protected records are held until Retry finds the secret or GiveUp.
func (p *Parser) Waiting() (clientRandom [32]byte, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.dec.holding() || p.dec.ch == nil {
		return clientRandom, false
	}
	return [32]byte(p.dec.ch.Random), true
}

// Retry looks the secret up again (the key log grew) and, when it is
// there, decrypts what was held. Drain then has what it decided.
func (p *Parser) Retry() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dec.holding() {
		p.retry()
		p.updateDone()
	}
}

// GiveUp stops waiting for the secret: held records are read as a parser
// without keys reads them, and the handshakes stay encrypted.
func (p *Parser) GiveUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dec.holding() {
		p.giveUp()
		p.updateDone()
	}
}

func (p *Parser) retry() {
	if !p.setupKeys() {
		return
	}
	// Held behind a late traffic secret: replay only once it is there, not
	// on every chunk that comes meanwhile (each replay copied the first
	// record again to hold it anew).
	if d := p.dec; len(d.held) > 0 {
		dir := d.held[0].dir
		if dc := &d.dirs[dir]; dc.needTraffic && !dc.done && !d.trafficKeys(p, dir) && !dc.done {
			return
		}
	}
	p.replay()
}

func (p *Parser) giveUp() {
	p.dec.missing = true
	if h := p.latestOpen(); h != nil && !p.dec.ready {
		h.addError(errors.New("decrypt: no secret in the key log for this connection's client_random"))
		h.SecretMissing = true
	}
	p.replay()
}

// replay feeds the held records again, in the order they came.
func (p *Parser) replay() {
	held := p.dec.held
	p.dec.held, p.dec.heldBytes = nil, 0
	for i, r := range held {
		p.route(&p.streams[r.dir], r.typ, r.version, r.length, r.keep, r.body)
		if p.dec.holding() {
			// A new wait began (the traffic secret is late): keep the rest behind it.
			p.dec.held = append(p.dec.held, held[i+1:]...)
			return
		}
	}
}

// setupKeys builds the record ciphers once the secrets are known. It
// reports whether they are ready.
func (p *Parser) setupKeys() bool {
	d := p.dec
	if d.ready || d.missing {
		return d.ready
	}
	if d.ch == nil || d.sh == nil {
		return false
	}
	sec, ok := d.src.Lookup([32]byte(d.ch.Random))
	tls13 := d.sh.Version == VersionTLS13
	if !ok || (tls13 && !sec.Has13()) || (!tls13 && sec.Master == nil) {
		if _, static := d.src.(KeyLog); static {
			// A whole key log read up front will not grow: no point waiting.
			d.missing = true
			if h := p.latestOpen(); h != nil {
				h.SecretMissing = true
			}
		}
		return false
	}
	d.secrets = sec
	var c, s *recordCipher
	var err error
	switch {
	case tls13:
		if c, err = newTLS13Cipher(d.sh.CipherSuite, sec.ClientHandshake); err == nil {
			s, err = newTLS13Cipher(d.sh.CipherSuite, sec.ServerHandshake)
		}
	case d.sh.Version == VersionTLS12:
		c, s, err = newTLS12Ciphers(tls12Params{Suite: d.sh.CipherSuite, Master: sec.Master,
			ClientRandom: d.ch.Random, ServerRandom: d.sh.Random,
			EncryptThenMAC: slices.Contains(d.sh.Extensions, extEncryptThenMAC)})
	default:
		err = fmt.Errorf("%w: %s", ErrUnsupportedSuite, d.sh.Version)
	}
	if err != nil {
		d.missing = true
		p.addError(p.latestOpen(), fmt.Errorf("decrypt: %w", err))
		return false
	}
	d.dirs[FromClient].c, d.dirs[FromServer].c = c, s
	for i := range d.dirs {
		d.dirs[i].c.seq += d.dirs[i].unkeyed
	}
	d.ready = true
	return true
}

// intercept takes a record the decryptor is concerned with and reports
// whether it consumed it; false sends it on as the parser would without keys.
func (p *Parser) intercept(s *stream, typ ContentType, version uint16, length int, keep bool, body []byte) bool {
	d := p.dec
	if len(d.held) > 0 {
		return d.hold(p, s, typ, version, length, keep, body)
	}
	dc := &d.dirs[s.dir]
	if typ == ContentChangeCipherSpec {
		if !p.tls13 && s.protected && d.ready {
			// A renegotiation's own ChangeCipherSpec: its keys take over,
			// and they are not the first handshake's.
			dc.done = true
		}
		return false
	}
	if !s.protected || dc.done || d.missing {
		return false
	}
	if p.keyless12(s, typ) {
		dc.unkeyed++
		return false
	}
	if !d.ready && !p.setupKeys() {
		if d.missing {
			return false
		}
		return d.hold(p, s, typ, version, length, keep, body)
	}
	if !p.tls13 && typ == ContentApplicationData {
		dc.c.Skip()
		return false
	}
	if dc.needTraffic && !d.trafficKeys(p, s.dir) {
		if dc.done {
			return false
		}
		return d.hold(p, s, typ, version, length, keep, body)
	}
	if d.skipClient(p, s) {
		// The client's requests while no post-handshake request is open:
		// counted for the nonces, never opened.
		dc.c.Skip()
		return false
	}
	h := p.latestOpen()
	rtyp, pt, err := dc.c.Open(d.plain[:0], typ, version, body)
	if err != nil {
		dc.done = true
		p.addError(h, fmt.Errorf("decrypt: %s record: %w", s.dir, err))
		return false
	}
	if h != nil && (p.tls13 || h.Phase != PhaseInitial) {
		p.addRecord(h, s.dir, length)
	}
	p.decrypting = true
	defer func() {
		p.decrypting = false
		// Nothing of a record outlives it in the buffer: application data
		// opened to learn its type above all.
		clear(pt)
		d.plain = pt[:0]
	}()
	switch rtyp {
	case ContentHandshake:
		s.awaitFinished = false
		p.handshakeData(s, pt)
	case ContentAlert:
		p.alerts(s, pt)
	case ContentApplicationData:
		// TLS 1.3 hides the type: the record was opened only to learn it.
		// Its content is dropped unread, and the direction is done, unless
		// the server may still ask for a certificate after the handshake.
		if !d.watchPHA(p, s.dir) {
			dc.done = true
		}
	}
	// TLS 1.3: the server's first record after both Finished tells the
	// outcome (an alert finished it already).
	if h := p.latestOpen(); p.tls13 && h != nil && s.dir == FromServer && h.ClientFinished && h.ServerFinished {
		p.finish(h, EndFinished)
	}
	return true
}

// hold keeps a record until the secret comes; a connection over the bound
// gives up waiting.
func (d *decryptor) hold(p *Parser, s *stream, typ ContentType, version uint16, length int, keep bool, body []byte) bool {
	if d.heldBytes+len(body)+heldOverhead > maxHeld {
		p.addError(p.latestOpen(), fmt.Errorf("decrypt: more than %d bytes held waiting for the key log", maxHeld))
		p.giveUp()
		return false
	}
	var cp []byte
	if keep {
		cp = append([]byte(nil), body...)
	}
	d.held = append(d.held, heldRecord{s.dir, typ, version, length, keep, cp})
	d.heldBytes += len(cp) + heldOverhead
	return true
}

// finished switches a TLS 1.3 direction to its first application traffic
// secret after its Finished, to read what follows the handshake (an alert,
// a NewSessionTicket). Without that secret the direction is done.
func (d *decryptor) finished(p *Parser, s *stream, h *Handshake) {
	if d == nil || !d.ready || !p.tls13 || !h.decrypted {
		return
	}
	if s.dir == FromClient {
		d.clientFinished = true
	}
	d.phaLeft = maxPHARecords
	d.dirs[s.dir].c, d.dirs[s.dir].needTraffic = nil, true
	d.trafficKeys(p, s.dir)
}

// trafficKeys sets up a TLS 1.3 direction's first application traffic
// keys. It reports false while the secret is not in the key log (the
// records wait for it as for the handshake's), or when it cannot be used
// (the direction is then done).
func (d *decryptor) trafficKeys(p *Parser, dir Direction) bool {
	if sec, ok := d.src.Lookup([32]byte(d.ch.Random)); ok {
		d.secrets = sec // the traffic secrets are logged after the handshake ones
	}
	secret := d.secrets.ClientTraffic
	if dir == FromServer {
		secret = d.secrets.ServerTraffic
	}
	if len(secret) == 0 {
		if _, static := d.src.(KeyLog); static {
			d.dirs[dir].done = true // a whole key log will not grow
		}
		return false
	}
	c, err := newTLS13Cipher(d.sh.CipherSuite, secret)
	if err != nil {
		d.dirs[dir].done = true
		p.addError(p.latestOpen(), fmt.Errorf("decrypt: %s traffic secret: %w", dir, err))
		return false
	}
	d.dirs[dir].c, d.dirs[dir].needTraffic = c, false
	return true
}
