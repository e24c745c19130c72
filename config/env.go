package config

import (
	"slices"
	"strings"
)

// otherEnv are the CERTLENS_ variables that are not config keys: where the
// config file is, the PKCS#12 password (a secret, never a key), and the
// switches of the tests and tools. A test keeps this list and the
// repository in step.
var otherEnv = []string{
	configFileEnv,
	PFXPasswordEnv,
	"CERTLENS_REQUIRE_PEERS", // tests: a missing peer fails instead of skipping
	"CERTLENS_LOAD",          // proxy's load test: "full" for 20,000 connections
	"CERTLENS_BENCH_PPROF",   // certlens-bench: serve the profiler
	"CERTLENS_EVENTS_DIR",    // tests: collect every event written, for the invariant check
	"CERTLENS_EVENTS_CHECK",  // tests: the directory the invariant check reads
	"CERTLENS_BARE_SUITE",    // tests: the suite run again without peers
}

// unknownEnv warns about each CERTLENS_ variable in environ that certlens
// does not read: a misspelt one would otherwise leave its key at the
// default without a word, where the same mistake in the file is an error.
// It is a warning, not an error, as the environment is shared with other
// programs and other versions of certlens.
func unknownEnv(environ []string) []string {
	known := make([]string, 0, len(keys)+len(otherEnv))
	for _, k := range keys {
		known = append(known, envVar(k.name))
	}
	known = append(known, otherEnv...)
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CERTLENS_") || slices.Contains(known, name) {
			continue
		}
		msg := name + " is not a certlens setting and is ignored; did you mean " + closestEnv(name) + "?"
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}

// closestEnv names the known variable with the fewest edits from name, and
// its key. A key is also compared under the names people reach for
// instead: its flag's (MAX_CONNS for limits.max_conns, from --max-conns)
// and its own without the section (IDLE_TIMEOUT for tunnel.idle_timeout);
// underscores are left out of the count. Ties go to the key table's order.
func closestEnv(name string) string {
	squash := strings.NewReplacer("_", "", "-", "")
	target := squash.Replace(name)
	best, bestD := "", -1
	consider := func(label string, aliases ...string) {
		for _, a := range aliases {
			if a == "" {
				continue
			}
			if d := editDistance(target, squash.Replace(envVar(a))); bestD < 0 || d < bestD {
				best, bestD = label, d
			}
		}
	}
	for _, k := range keys {
		_, leaf, _ := strings.Cut(k.name, ".")
		consider(envVar(k.name)+" ("+k.name+")", k.name, k.flag, leaf)
	}
	for _, v := range otherEnv {
		consider(v, strings.TrimPrefix(v, "CERTLENS_"))
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
