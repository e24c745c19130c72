package handshake

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Builders for synthetic TLS bytes: the edge cases real peers will not produce
// on demand (oversize, truncated, hostile). Real transcripts are in testdata/.

func record(typ ContentType, body []byte) []byte {
	b := []byte{byte(typ), 3, 3, byte(len(body) >> 8), byte(len(body))}
	return append(b, body...)
}

// records splits a handshake byte stream into records of at most size bytes.
func records(typ ContentType, data []byte, size int) []byte {
	var out []byte
	for len(data) > 0 {
		n := min(size, len(data))
		out = append(out, record(typ, data[:n])...)
		data = data[n:]
	}
	return out
}

func message(typ messageType, body []byte) []byte {
	b := []byte{byte(typ), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(b, body...)
}

func build(f func(b *cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	f(&b)
	return b.BytesOrPanic()
}

func clientHello(sni string, versions ...uint16) []byte {
	return message(typeClientHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0xc02b); b.AddUint16(0x1301) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(extServerName)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint8(0)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(sni)) })
				})
			})
			if len(versions) > 0 {
				b.AddUint16(extSupportedVersions)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
						for _, v := range versions {
							b.AddUint16(v)
						}
					})
				})
			}
		})
	}))
}

func serverHello(version uint16) []byte {
	return message(typeServerHello, build(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0303)
		b.AddBytes(make([]byte, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {})
		if version == 0x0304 {
			b.AddUint16(0x1301)
		} else {
			b.AddUint16(0xc02b)
		}
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			if version == 0x0304 {
				b.AddUint16(extSupportedVersions)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(version) })
			}
		})
	}))
}

// dnDER is the DER of a realistic issuer name.
func dnDER(i int) []byte {
	name := pkix.Name{
		Country:      []string{"US"},
		Organization: []string{fmt.Sprintf("certlens synthetic issuer %03d with a long organization name", i)},
		CommonName:   fmt.Sprintf("certlens synthetic CA %03d", i),
	}
	der, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		panic(err)
	}
	return der
}

func certRequest12(dns ...[]byte) []byte {
	return message(typeCertificateRequest, build(func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(1); b.AddUint8(64) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0x0403); b.AddUint16(0x0804) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, dn := range dns {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(dn) })
			}
		})
	}))
}

func certificate12(certs ...[]byte) []byte {
	return message(typeCertificate, build(func(b *cryptobyte.Builder) {
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, c := range certs {
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c) })
			}
		})
	}))
}

// conn is a scripted connection: chunks in the causal order a relay reads them.
type conn []chunk

type chunk struct {
	from Direction
	data []byte
}

func (c *conn) client(b ...[]byte) *conn { return c.add(FromClient, b) }
func (c *conn) server(b ...[]byte) *conn { return c.add(FromServer, b) }

func (c *conn) add(d Direction, parts [][]byte) *conn {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	*c = append(*c, chunk{d, all})
	return c
}

// mutualTLS12 scripts a full TLS 1.2 handshake in which the server asks with
// the given DNs (split into records of recSize) and the client answers with certs.
func mutualTLS12(recSize int, dns [][]byte, certs ...[]byte) *conn {
	c := &conn{}
	c.client(record(ContentHandshake, clientHello("example.test")))
	flight := append(append(append(serverHello(0x0303), certificate12([]byte("server-cert"))...), certRequest12(dns...)...), message(typeServerHelloDone, nil)...)
	c.server(records(ContentHandshake, flight, recSize))
	c.client(record(ContentHandshake, append(certificate12(certs...), message(typeClientKeyExchange, []byte{1, 2})...)),
		record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	c.server(record(ContentChangeCipherSpec, []byte{1}), record(ContentHandshake, make([]byte, 40)))
	return c
}
