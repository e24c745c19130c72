//go:build race

package handshake

// raceEnabled: the race detector makes sync.Pool drop what it is given at
// random, so allocation counts are not what a normal build does.
const raceEnabled = true
