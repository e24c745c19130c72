package main

import (
	"strings"
	"testing"
	"time"
)

func TestCurlArgsPerPath(t *testing.T) {
	b := &bench{dir: "/d"}
	cases := []struct {
		name string
		p    *peer
		want []string // in order, among the arguments
		not  string
		url  string
	}{
		{"direct goes around any proxy", &peer{name: "direct"}, []string{"--noproxy", "*"}, "-x", "https://127.0.0.1:443/small"},
		{"a proxy gets a CONNECT", &peer{name: "squid", addr: "127.0.0.1:3128"}, []string{"-x", "http://127.0.0.1:3128"}, "--noproxy", "https://127.0.0.1:443/small"},
		{"a sidecar is the server", &peer{name: "certlens-sidecar", addr: "127.0.0.1:8443", sidecar: true}, []string{"--noproxy", "*"}, "-x", "https://127.0.0.1:8443/small"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := b.curlArgs(tc.p, "127.0.0.1:443", 0, smallPath)
			line := strings.Join(args, " ")
			if !strings.Contains(line, strings.Join(tc.want, " ")) || strings.Contains(line, " "+tc.not+" ") {
				t.Fatalf("args %q: want %q, not %q", line, tc.want, tc.not)
			}
			if args[len(args)-1] != tc.url {
				t.Fatalf("URL %q, want %q", args[len(args)-1], tc.url)
			}
			if !strings.Contains(line, "--tlsv1.2 --tls-max 1.2") {
				t.Fatalf("TLS 1.2 run without its flags: %q", line)
			}
		})
	}
	if got := strings.Join(b.curlArgs(&peer{}, "o:1", 1, "/bulk"), " "); !strings.Contains(got, "--tlsv1.3") || strings.Contains(got, "tls-max") {
		t.Fatalf("TLS 1.3 run: %q", got)
	}
}

func TestSequentialCountsEveryTunnel(t *testing.T) {
	b := &bench{seq: 25}
	peers := []*peer{{name: "direct"}, {name: "x"}}
	var order []string
	stats := b.sequential(peers, 10, 1, func(p *peer, v, n int) ([]time.Duration, int) {
		if v == 0 {
			order = append(order, p.name)
		}
		lat := make([]time.Duration, n)
		for i := range lat {
			lat[i] = time.Duration(i+1) * time.Millisecond
		}
		if p.name == "x" {
			return lat[1:], 1
		}
		return lat, 0
	})
	// 25 in blocks of 2: 13 rounds, each starting with the next path.
	if len(order) != 26 || order[0] != "direct" || order[1] != "x" || order[2] != "x" || order[3] != "direct" {
		t.Fatalf("order %v", order)
	}
	if stats[0].errors != [2]int{0, 0} || stats[1].errors != [2]int{13, 13} {
		t.Fatalf("errors %v %v", stats[0].errors, stats[1].errors)
	}
	// direct: 12 runs of 1 and 2 ms, one of 1 ms; x: each run's first failed.
	if stats[0].p50[1] != time.Millisecond || stats[1].p50[1] != 2*time.Millisecond {
		t.Fatalf("p50 %v %v", stats[0].p50, stats[1].p50)
	}
	cpu, added, _ := stats[1].columns(&stats[0])
	if cpu != "-" || added != "1.000 ms / 1.000 ms" {
		t.Fatalf("columns %q %q", cpu, added)
	}
}
