package config

import "testing"

func TestParsePortSet(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "the default list", in: "443,4443,8443", want: "443,4443,8443"},
		{name: "ports and a range", in: "443,8443,10000-20000", want: "443,8443,10000-20000"},
		{name: "sorted on output", in: "8443,443", want: "443,8443"},
		{name: "spaces and empty items are ignored", in: " 443 , ,8443, ", want: "443,8443"},
		{name: "spaces inside a range", in: "10 - 20", want: "10-20"},
		{name: "duplicates collapse", in: "443,443", want: "443"},
		{name: "overlapping ranges merge", in: "100-200,150-300", want: "100-300"},
		{name: "adjacent ports merge into a range", in: "443,444,445", want: "443-445"},
		{name: "a port inside a range disappears", in: "1000-2000,1500", want: "1000-2000"},
		{name: "one-port range prints as a port", in: "443-443", want: "443"},
		{name: "the whole range", in: "1-65535", want: "1-65535"},
		{name: "empty list", in: "", want: ""},
		{name: "leading zeros", in: "0443", want: "443"},
		{name: "a word", in: "443,abc", wantErr: `"abc" is not a port or range`},
		{name: "a sign", in: "+443", wantErr: `"+443" is not a port or range`},
		{name: "a negative port", in: "-1", wantErr: `"-1" is not a port or range`},
		{name: "a range with no end", in: "10000-", wantErr: `"10000-" is not a port or range`},
		{name: "a range of three", in: "1-2-3", wantErr: `"1-2-3" is not a port or range`},
		{name: "port zero", in: "0", wantErr: `"0" is not a port from 1 to 65535`},
		{name: "port above 65535", in: "65536", wantErr: `"65536" is not a port from 1 to 65535`},
		{name: "a number too long for an int", in: "99999999999999999999", wantErr: `"99999999999999999999" is not a port from 1 to 65535`},
		{name: "range starting at zero", in: "0-10", wantErr: `"0-10": 0 is not a port from 1 to 65535`},
		{name: "range ending above 65535", in: "10000-70000", wantErr: `"10000-70000": 70000 is not a port from 1 to 65535`},
		{name: "reversed range", in: "9000-8000", wantErr: `"9000-8000" is a reversed range; write 8000-9000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parsePortSet(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parsePortSet(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePortSet(%q): %v", tt.in, err)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("parsePortSet(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := parsePortSet(p.String())
			if err != nil || again.String() != p.String() {
				t.Errorf("String() does not read back: %q gave %q, %v", p.String(), again.String(), err)
			}
		})
	}
}

func TestPortSetContains(t *testing.T) {
	p, err := parsePortSet("443,8443,10000-20000")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		port int
		want bool
	}{
		{443, true},
		{8443, true},
		{10000, true},
		{15000, true},
		{20000, true},
		{0, false},
		{-443, false},
		{80, false},
		{442, false},
		{444, false},
		{9999, false},
		{20001, false},
		{65535, false},
		{65536 + 443, false},
	}
	for _, tt := range tests {
		if got := p.Contains(tt.port); got != tt.want {
			t.Errorf("%v.Contains(%d) = %v, want %v", p, tt.port, got, tt.want)
		}
	}
	var zero PortSet
	if zero.Contains(443) || !zero.Empty() || zero.String() != "" {
		t.Errorf("zero PortSet: Contains(443) = %v, Empty() = %v, String() = %q; want false, true, \"\"", zero.Contains(443), zero.Empty(), zero.String())
	}
}
