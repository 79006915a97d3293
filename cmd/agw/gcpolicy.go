package main

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGOGC is the sidecar's GC target percentage when neither AGW_GOGC
// nor GOGC is set. A sidecar's live heap is tiny (a few MB), so with Go's
// default of 100 the collector runs at the 4 MB minimum heap goal, many
// times a second under load, and takes ~20% of the CPU. 400 puts the
// minimum goal at 16 MB. Measured with `agw bench rpc --runs 5` on a shared
// 2-core machine (two series each): added p99 at 1,000 calls/s, best /
// median, 0.64-0.97 / 1.1-1.8 ms at 400 against 1.7-2.2 / 2.0-3.1 ms at
// 100 and 200; sequential calls/s ratio 25-27% median against 22-25%;
// sidecar stream throughput ~5-10% lower than at 200. The idle RSS of
// agw-sidecar does not move (18.0-18.2 MiB at 100 and 400, ratio 1.11-1.13
// to a bare gRPC server): an idle sidecar hardly allocates.
const defaultGOGC = 400

// gcConfig is the sidecar's garbage collector configuration as given
// (AGW_GOGC, AGW_MEMORY_LIMIT, or the flags --gogc and --memory-limit).
type gcConfig struct {
	// GOGC is the GC target percentage, or "off" (then a memory limit is
	// required). Empty: GOGC from the environment if set, else
	// defaultGOGC.
	GOGC string
	// MemoryLimit is a soft memory limit (runtime/debug.SetMemoryLimit) in
	// bytes, with an optional unit: B, KiB, MiB, GiB, KB, MB, GB. Empty or
	// 0: none beyond GOMEMLIMIT. In a container, about 90% of its memory
	// limit.
	MemoryLimit string
}

// gcConfigFromEnv reads AGW_GOGC and AGW_MEMORY_LIMIT.
func gcConfigFromEnv(getenv func(string) string) gcConfig {
	return gcConfig{GOGC: getenv("AGW_GOGC"), MemoryLimit: getenv("AGW_MEMORY_LIMIT")}
}

// gcPolicy is a resolved gcConfig.
type gcPolicy struct {
	// Percent is applied with debug.SetGCPercent when SetPercent (-1 is
	// off).
	Percent    int
	SetPercent bool
	// Source says where Percent comes from.
	Source string
	// MemoryLimit is applied with debug.SetMemoryLimit when above 0.
	MemoryLimit int64
}

// policy resolves c; getenv reads GOGC and GOMEMLIMIT (the runtime's own
// variables, which an empty AGW_GOGC respects).
func (c gcConfig) policy(getenv func(string) string) (gcPolicy, error) {
	var p gcPolicy
	var errs []error
	limit, err := parseByteSize(c.MemoryLimit)
	if err != nil {
		errs = append(errs, fmt.Errorf("AGW_MEMORY_LIMIT %q: %w", c.MemoryLimit, err))
	}
	p.MemoryLimit = limit
	switch v := strings.TrimSpace(c.GOGC); {
	case strings.EqualFold(v, "off"):
		p.Percent, p.SetPercent, p.Source = -1, true, "AGW_GOGC"
		if limit == 0 && strings.TrimSpace(getenv("GOMEMLIMIT")) == "" {
			errs = append(errs, errors.New("AGW_GOGC=off needs a memory limit (AGW_MEMORY_LIMIT or GOMEMLIMIT), else the heap grows without bound"))
		}
	case v != "":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("AGW_GOGC %q: want a percentage of at least 1 or \"off\"", c.GOGC))
		}
		p.Percent, p.SetPercent, p.Source = n, true, "AGW_GOGC"
	case strings.TrimSpace(getenv("GOGC")) != "":
		p.Source = "GOGC"
	default:
		p.Percent, p.SetPercent, p.Source = defaultGOGC, true, "default"
	}
	return p, errors.Join(errs...)
}

// apply sets the policy in the runtime and returns a function restoring the
// previous settings.
func (p gcPolicy) apply() (restore func()) {
	prevPercent, prevLimit := -2, int64(-1)
	if p.SetPercent {
		prevPercent = debug.SetGCPercent(p.Percent)
	}
	if p.MemoryLimit > 0 {
		prevLimit = debug.SetMemoryLimit(p.MemoryLimit)
	}
	return func() {
		if prevPercent != -2 {
			debug.SetGCPercent(prevPercent)
		}
		if prevLimit >= 0 {
			debug.SetMemoryLimit(prevLimit)
		}
	}
}

// String describes the policy, such as "GOGC=400 (default), no memory
// limit".
func (p gcPolicy) String() string {
	var b strings.Builder
	switch {
	case !p.SetPercent:
		fmt.Fprintf(&b, "GOGC from the environment (%d)", currentGCPercent())
	case p.Percent < 0:
		fmt.Fprintf(&b, "GOGC=off (%s)", p.Source)
	default:
		fmt.Fprintf(&b, "GOGC=%d (%s)", p.Percent, p.Source)
	}
	if p.MemoryLimit > 0 {
		fmt.Fprintf(&b, ", memory limit %d MiB", p.MemoryLimit>>20)
	} else if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		fmt.Fprintf(&b, ", memory limit %d MiB (GOMEMLIMIT)", l>>20)
	} else {
		b.WriteString(", no memory limit")
	}
	return b.String()
}

// currentGCPercent reads the runtime's GC percentage without changing it.
func currentGCPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// byteUnits are the units parseByteSize accepts, longest first.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// parseByteSize parses a size such as "512MiB", "1GB" or "1048576"; empty
// is 0.
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range byteUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a non-negative number of bytes with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}
