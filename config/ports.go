package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// PortSet is a set of TCP ports, such as the CONNECT targets the proxy may
// tunnel to. The zero value holds no port.
type PortSet struct {
	// Sorted, disjoint and never adjacent, so that String is canonical and
	// Contains can binary search.
	ranges []portRange
}

type portRange struct{ lo, hi int }

// parsePortSet reads a comma separated list of ports and inclusive ranges,
// e.g. "443,8443,10000-20000". Spaces around items and empty items are
// ignored; an empty list gives an empty set.
func parsePortSet(s string) (PortSet, error) {
	var rs []portRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r, err := parsePortRange(item)
		if err != nil {
			return PortSet{}, err
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	var merged []portRange
	for _, r := range rs {
		if n := len(merged); n > 0 && r.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	return PortSet{ranges: merged}, nil
}

func parsePortRange(item string) (portRange, error) {
	loText, hiText, isRange := strings.Cut(item, "-")
	loText, hiText = strings.TrimSpace(loText), strings.TrimSpace(hiText)
	if !isRange {
		hiText = loText
	}
	lo, okLo := parsePort(loText)
	hi, okHi := parsePort(hiText)
	switch {
	case !okLo || !okHi:
		return portRange{}, fmt.Errorf("%q is not a port or range", item)
	case !isRange && (lo < 1 || lo > 65535):
		return portRange{}, fmt.Errorf("%q is not a port from 1 to 65535", item)
	case lo < 1 || lo > 65535:
		return portRange{}, fmt.Errorf("%q: %s is not a port from 1 to 65535", item, loText)
	case hi < 1 || hi > 65535:
		return portRange{}, fmt.Errorf("%q: %s is not a port from 1 to 65535", item, hiText)
	case lo > hi:
		return portRange{}, fmt.Errorf("%q is a reversed range; write %d-%d", item, hi, lo)
	}
	return portRange{lo, hi}, nil
}

// parsePort accepts decimal digits only: strconv.Atoi alone would let "+443"
// through, and a sign has no business in a port list. A number too long
// for an int is simply out of range.
func parsePort(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 65536, true
	}
	return n, true
}

// Contains reports whether port is in the set.
func (p PortSet) Contains(port int) bool {
	i := sort.Search(len(p.ranges), func(i int) bool { return p.ranges[i].hi >= port })
	return i < len(p.ranges) && p.ranges[i].lo <= port
}

// String gives the set back as a canonical list: sorted, overlapping and
// adjacent items merged, e.g. "443,4443,8443,10000-20000". parsePortSet
// reads it back to an equal set.
func (p PortSet) String() string {
	var b strings.Builder
	for i, r := range p.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.lo))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.hi))
		}
	}
	return b.String()
}

// Empty reports whether the set holds no port.
func (p PortSet) Empty() bool { return len(p.ranges) == 0 }
