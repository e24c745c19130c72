package communityid

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
)

// baseline is a row of the specification's baseline/*.json
// (corelight/community-id-spec b1fe530, copied to testdata with its COPYING).
type baseline struct {
	Proto uint8  `json:"proto"`
	Saddr string `json:"saddr"`
	Daddr string `json:"daddr"`
	Sport *int   `json:"sport"`
	Dport *int   `json:"dport"`
	ID    string `json:"communityid"`
}

func TestBaselineFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		seed uint16
	}{{"testdata/baseline_deflt.json", 0}, {"testdata/baseline_seed1.json", 1}} {
		raw, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var rows []baseline
		if err := json.Unmarshal(raw, &rows); err != nil {
			t.Fatal(err)
		}
		tested := map[uint8]int{}
		for _, r := range rows {
			a := netip.AddrPortFrom(netip.MustParseAddr(r.Saddr), port(r.Sport))
			b := netip.AddrPortFrom(netip.MustParseAddr(r.Daddr), port(r.Dport))
			got, err := Flow(tc.seed, r.Proto, a, b)
			if r.Proto == 1 || r.Proto == 58 {
				if !errors.Is(err, ErrICMP) {
					t.Errorf("%s: ICMP row %v: err %v, want ErrICMP", tc.file, r, err)
				}
				continue
			}
			if err != nil || got != r.ID {
				t.Errorf("%s: proto %d %s:%v -> %s:%v: got %q, %v; want %q", tc.file, r.Proto, r.Saddr, r.Sport, r.Daddr, r.Dport, got, err, r.ID)
			}
			tested[r.Proto]++
		}
		// The files hold TCP over IPv4 and IPv6 in both directions: a
		// filter that skipped them all would pass vacuously.
		if tested[ProtoTCP] < 4 || tested[ProtoUDP] < 2 || tested[ProtoSCTP] < 2 {
			t.Errorf("%s: only %v rows checked", tc.file, tested)
		}
	}
}

func port(p *int) uint16 {
	if p == nil {
		return 0
	}
	return uint16(*p)
}

// The tables of the specification's baseline/README.md, seed 0 and seed 1.
func TestBaselineTables(t *testing.T) {
	const v6a, v6b = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"
	for _, tc := range []struct {
		name       string
		seed       uint16
		proto      uint8
		src, dst   string
		sport, dpt uint16
		want       string
	}{
		{"tcp seed 0", 0, ProtoTCP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
		{"udp seed 0", 0, ProtoUDP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
		{"sctp seed 0", 0, ProtoSCTP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="},
		{"rsvp seed 0 has no ports", 0, 46, "1.2.3.4", "5.6.7.8", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768="},
		{"rsvp ipv6 seed 0", 0, 46, v6a, v6b, 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="},
		{"tcp seed 1", 1, ProtoTCP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
		{"udp seed 1", 1, ProtoUDP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
		{"sctp seed 1", 1, ProtoSCTP, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:uitchpn5MMGAQKBJh7bIr/bAr7s="},
		{"rsvp ipv6 seed 1", 1, 46, v6a, v6b, 0, 0, "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.AddrPortFrom(netip.MustParseAddr(tc.src), tc.sport)
			b := netip.AddrPortFrom(netip.MustParseAddr(tc.dst), tc.dpt)
			for _, dir := range [][2]netip.AddrPort{{a, b}, {b, a}} {
				got, err := Flow(tc.seed, tc.proto, dir[0], dir[1])
				if err != nil || got != tc.want {
					t.Errorf("%s -> %s: got %q, %v; want %q", dir[0], dir[1], got, err, tc.want)
				}
			}
		})
	}
}

func TestSameAddressOrdersByPort(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:443")
	b := netip.MustParseAddrPort("10.0.0.1:50000")
	if TCP(0, a, b) != TCP(0, b, a) {
		t.Error("a flow between two ports of one address hashed differently each way")
	}
	if TCP(0, a, b) == TCP(0, a, netip.MustParseAddrPort("10.0.0.1:50001")) {
		t.Error("two different client ports gave the same ID")
	}
}

func TestAddressForms(t *testing.T) {
	want := "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" // baseline_deflt.json, TCP 128.232.110.120:34855 <-> 66.35.250.204:80
	if got := FromStrings(0, "128.232.110.120:34855", "66.35.250.204:80"); got != want {
		t.Errorf("FromStrings = %q, want %q", got, want)
	}
	// A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d.
	if got := FromStrings(0, "[::ffff:128.232.110.120]:34855", "66.35.250.204:80"); got != want {
		t.Errorf("IPv4-mapped client: %q, want %q", got, want)
	}
	a := &net.TCPAddr{IP: net.ParseIP("66.35.250.204"), Port: 80}
	b := &net.TCPAddr{IP: net.ParseIP("128.232.110.120"), Port: 34855}
	if got := FromAddrs(0, a, b); got != want {
		t.Errorf("FromAddrs = %q, want %q", got, want)
	}
	if got := FromStrings(0, "example.com:443", "66.35.250.204:80"); got != "" {
		t.Errorf("a host name gave %q; a name is no flow", got)
	}
	if got := FromAddrs(0, &net.UnixAddr{Name: "x"}, a); got != "" {
		t.Errorf("a unix address gave %q", got)
	}
}
