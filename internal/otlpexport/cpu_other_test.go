//go:build !unix

package otlpexport

import "time"

// processCPU is not measured here: the benchmark's cpu-ns/tunnel reads 0.
func processCPU() time.Duration { return 0 }
