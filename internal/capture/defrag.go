package capture

import (
	"net/netip"
	"slices"
	"time"
)

// defragmenter reassembles IP datagrams (IPv4, and IPv6's fragment header)
// from their fragments, as Wireshark does before TCP sees them. What it
// holds is bounded: a datagram's fragments wait at most fragWait of
// capture time, at most maxPendingDatagrams at once; a fragment that
// overlaps another with different bytes is taken as first seen.
type defragmenter struct {
	pending map[defragKey]*datagram
	// Lost counts fragments dropped: their datagram never came whole.
	lost int
}

type defragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    int
}

type datagram struct {
	first time.Time
	ip    ipPacket // the first fragment's header fields
	parts []fragmentPart
	end   int // the datagram's length, once its last fragment came; -1 before
	size  int
}

type fragmentPart struct {
	off  int
	data []byte
}

const (
	fragWait            = 30 * time.Second
	maxPendingDatagrams = 4096
	maxDatagram         = 65535 + 8
)

func (d *defragmenter) init() { d.pending = map[defragKey]*datagram{} }

// add files a fragment; when its datagram is whole it returns it, with
// the payload copied out of the capture's buffer.
func (d *defragmenter) add(ip ipPacket, now time.Time) (ipPacket, bool) {
	end := ip.fragOff + len(ip.payload)
	if end > maxDatagram || ip.more && len(ip.payload)%8 != 0 {
		d.lost++
		return ipPacket{}, false
	}
	k := defragKey{ip.src, ip.dst, ip.fragID, ip.proto}
	if ip.v6 {
		k.proto = -1 // the id alone names an IPv6 datagram; proto is the fragment's next header
	}
	g := d.pending[k]
	if g == nil {
		if len(d.pending) >= maxPendingDatagrams {
			d.expire(now)
			if len(d.pending) >= maxPendingDatagrams {
				d.lost++
				return ipPacket{}, false
			}
		}
		g = &datagram{first: now, end: -1}
		d.pending[k] = g
	}
	if ip.fragOff == 0 {
		g.ip = ip
	}
	if !ip.more {
		g.end = end
	}
	g.parts = append(g.parts, fragmentPart{ip.fragOff, append([]byte(nil), ip.payload...)})
	g.size += len(ip.payload)
	if g.end < 0 || g.size < g.end {
		return ipPacket{}, false
	}
	// Perhaps whole: walk the parts in offset order.
	slices.SortStableFunc(g.parts, func(a, b fragmentPart) int { return a.off - b.off })
	buf := make([]byte, g.end)
	covered := 0
	for _, p := range g.parts {
		if p.off > covered {
			return ipPacket{}, false // a hole
		}
		if e := min(p.off+len(p.data), g.end); e > covered {
			copy(buf[covered:e], p.data[covered-p.off:])
			covered = e
		}
	}
	if covered < g.end {
		return ipPacket{}, false
	}
	delete(d.pending, k)
	whole := g.ip
	whole.frag, whole.more, whole.fragOff = false, false, 0
	whole.payload = buf
	return whole, true
}

// expire forgets datagrams whose first fragment came before now-fragWait.
func (d *defragmenter) expire(now time.Time) {
	for k, g := range d.pending {
		if now.Sub(g.first) > fragWait {
			d.lost += len(g.parts)
			delete(d.pending, k)
		}
	}
}

// held counts the fragments still waiting (at the end of the capture: lost).
func (d *defragmenter) held() int {
	n := 0
	for _, g := range d.pending {
		n += len(g.parts)
	}
	return n
}
