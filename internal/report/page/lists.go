package page

import (
	"bytes"
	"hash/maphash"
)

// An issuer list is most of a handshake event (60 KB of names from a
// cluttered IIS) and a server sends the same one every time. The stream
// sends each list once per browser (an event named "list") and the events
// that carry it with {"list":N} in its place, which the page puts back.
// Writing the 60 KB again for every handshake is what an open page would
// otherwise cost the proxy.

// minSharedList is the smallest list worth sending once: below it the
// reference and the bookkeeping cost more than the bytes.
const minSharedList = 512

// maxSharedLists bounds what one stream remembers; when full it forgets
// them all and sends lists again as they come.
const maxSharedLists = 256

var issuersKey = []byte(`"issuers":[`)

// issuersArray finds the cert_request's "issuers" array in an event's
// JSON line: line[start] is its '[' and line[end-1] its ']'. An unescaped
// quote ends every JSON string, so `"issuers":[` can only be the key, and
// the array holds strings only (the event's DNs).
func issuersArray(line []byte) (start, end int, ok bool) {
	i := bytes.Index(line, issuersKey)
	if i < 0 {
		return 0, 0, false
	}
	start = i + len(issuersKey) - 1
	for j := start + 1; j < len(line); {
		switch line[j] {
		case ']':
			return start, j + 1, true
		case ',':
			j++
		case '"':
			k, ok := stringEnd(line, j+1)
			if !ok {
				return 0, 0, false
			}
			j = k + 1
		default:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// stringEnd is the index of the quote that ends the JSON string whose
// content starts at from.
func stringEnd(line []byte, from int) (int, bool) {
	for k := from; ; k++ {
		q := bytes.IndexByte(line[k:], '"')
		if q < 0 {
			return 0, false
		}
		k += q
		backslashes := 0
		for m := k - 1; m >= from && line[m] == '\\'; m-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return k, true
		}
	}
}

// sharedLists is what one stream has sent.
type sharedLists struct {
	seed maphash.Seed
	ids  map[uint64]int
	next int
}

func newSharedLists() *sharedLists {
	return &sharedLists{seed: maphash.MakeSeed(), ids: map[uint64]int{}}
}

// id returns the list's number for this stream, and whether it is new
// (to be sent before the event that refers to it).
func (s *sharedLists) id(list []byte) (int, bool) {
	h := maphash.Bytes(s.seed, list)
	if id, ok := s.ids[h]; ok {
		return id, false
	}
	if len(s.ids) >= maxSharedLists {
		clear(s.ids)
	}
	s.next++
	s.ids[h] = s.next
	return s.next, true
}
