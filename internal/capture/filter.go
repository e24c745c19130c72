package capture

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Filter selects connections, in the spirit of a capture filter:
//
//	host 10.0.0.5        either endpoint has this address
//	port 443             either endpoint has this port
//	net 10.0.0.0/8       either endpoint is in this network
//	sni *.corp.example   the ClientHello named a matching server (path.Match
//	                     pattern, case-insensitive); "host NAME" is the same
//
// joined with "and", "or", "not" and parentheses ("and" binds tighter).
// A bare word is read by its form: 10.0.0.5 (host), 10.0.0.0/8 (net), 443
// (port), 10.0.0.5:443 or [::1]:443 (that address and port on the same
// endpoint), anything else a server name.
type Filter struct {
	root node
	text string
	sni  bool
}

func (f *Filter) String() string { return f.text }

// needsSNI: the filter can only be decided once the ClientHello is read.
func (f *Filter) needsSNI() bool { return f.sni }

func (f *Filter) match(a, b netip.AddrPort, sni string) bool { return f.root.match(a, b, sni) }

// Match reports whether a connection between a and b whose ClientHello
// named sni ("" if none was seen) is selected.
func (f *Filter) Match(a, b netip.AddrPort, sni string) bool { return f.match(a, b, sni) }

type node interface {
	match(a, b netip.AddrPort, sni string) bool
}

type (
	andNode  [2]node
	orNode   [2]node
	notNode  struct{ n node }
	hostNode netip.Addr
	portNode uint16
	netNode  netip.Prefix
	sniNode  string
	endpoint netip.AddrPort
)

func (n andNode) match(a, b netip.AddrPort, s string) bool {
	return n[0].match(a, b, s) && n[1].match(a, b, s)
}
func (n orNode) match(a, b netip.AddrPort, s string) bool {
	return n[0].match(a, b, s) || n[1].match(a, b, s)
}
func (n notNode) match(a, b netip.AddrPort, s string) bool { return !n.n.match(a, b, s) }
func (n hostNode) match(a, b netip.AddrPort, _ string) bool {
	h := netip.Addr(n)
	return a.Addr().Unmap() == h || b.Addr().Unmap() == h
}
func (n portNode) match(a, b netip.AddrPort, _ string) bool {
	return a.Port() == uint16(n) || b.Port() == uint16(n)
}
func (n netNode) match(a, b netip.AddrPort, _ string) bool {
	p := netip.Prefix(n)
	return p.Contains(a.Addr().Unmap()) || p.Contains(b.Addr().Unmap())
}
func (n sniNode) match(_, _ netip.AddrPort, s string) bool {
	ok, _ := path.Match(string(n), strings.ToLower(s))
	return s != "" && ok
}
func (n endpoint) match(a, b netip.AddrPort, _ string) bool {
	e := netip.AddrPortFrom(netip.AddrPort(n).Addr().Unmap(), netip.AddrPort(n).Port())
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) == e || netip.AddrPortFrom(b.Addr().Unmap(), b.Port()) == e
}

// ParseFilter reads a filter expression; the error says which word is wrong.
func ParseFilter(text string) (*Filter, error) {
	p := &filterParser{words: tokenize(text)}
	if len(p.words) == 0 {
		return nil, fmt.Errorf("empty filter")
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.words) {
		return nil, fmt.Errorf("unexpected %q (join terms with and, or)", p.words[p.i])
	}
	return &Filter{root: root, text: text, sni: p.sni}, nil
}

// tokenize splits on spaces and around parentheses.
func tokenize(s string) []string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "(", " ( "), ")", " ) ")
	return strings.Fields(s)
}

type filterParser struct {
	words []string
	i     int
	sni   bool
}

func (p *filterParser) peek() string {
	if p.i < len(p.words) {
		return strings.ToLower(p.words[p.i])
	}
	return ""
}

func (p *filterParser) or() (node, error) {
	n, err := p.and()
	for err == nil && p.peek() == "or" {
		p.i++
		var r node
		if r, err = p.and(); err == nil {
			n = orNode{n, r}
		}
	}
	return n, err
}

func (p *filterParser) and() (node, error) {
	n, err := p.not()
	for err == nil && p.peek() == "and" {
		p.i++
		var r node
		if r, err = p.not(); err == nil {
			n = andNode{n, r}
		}
	}
	return n, err
}

func (p *filterParser) not() (node, error) {
	if p.peek() == "not" {
		p.i++
		n, err := p.not()
		return notNode{n}, err
	}
	return p.term()
}

func (p *filterParser) term() (node, error) {
	w := p.peek()
	switch w {
	case "":
		return nil, fmt.Errorf("filter ends where a term was expected")
	case "(":
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return n, nil
	case "host", "port", "net", "sni":
		p.i++
		if p.i >= len(p.words) {
			return nil, fmt.Errorf("%s needs a value", w)
		}
		v := p.words[p.i]
		p.i++
		return p.value(w, v)
	case "and", "or", ")":
		return nil, fmt.Errorf("unexpected %q where a term was expected", w)
	}
	p.i++
	return p.value("", p.words[p.i-1])
}

// value reads one term's value, of the kind given or guessed from its form.
func (p *filterParser) value(kind, v string) (node, error) {
	if kind == "" || kind == "host" {
		if a, err := netip.ParseAddr(v); err == nil {
			return hostNode(a.Unmap()), nil
		}
	}
	if kind == "" || kind == "net" {
		if n, err := netip.ParsePrefix(v); err == nil {
			return netNode(n.Masked()), nil
		}
		if kind == "net" {
			return nil, fmt.Errorf("net %q is not a network like 10.0.0.0/8", v)
		}
	}
	if kind == "" || kind == "port" {
		if n, err := strconv.ParseUint(v, 10, 16); err == nil && n > 0 {
			return portNode(n), nil
		}
		if kind == "port" {
			return nil, fmt.Errorf("port %q is not a port number", v)
		}
	}
	if kind == "" {
		if ap, err := netip.ParseAddrPort(v); err == nil {
			return endpoint(ap), nil
		}
	}
	if strings.ContainsAny(v, "/:") {
		return nil, fmt.Errorf("%q is neither an address, a network, a port nor a server name", v)
	}
	if _, err := path.Match(v, ""); err != nil {
		return nil, fmt.Errorf("server name pattern %q: %v", v, err)
	}
	p.sni = true
	return sniNode(strings.ToLower(v)), nil
}
