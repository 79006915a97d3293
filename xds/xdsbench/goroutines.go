package xdsbench

import (
	"bufio"
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// GoroutineKind is one kind of goroutine the connected nodes hold.
type GoroutineKind struct {
	// Kind names the goroutine: where it waits, and the function it runs.
	Kind string `json:"kind"`
	// PerNode is how many of them there are per connected node.
	PerNode float64 `json:"per_node"`
}

// goroutineKinds groups a goroutine dump (runtime/pprof debug=1 text: "N @
// pcs" then one "#\tpc\tfunc+off\tfile:line" line per frame) by kind, and
// returns the kinds that at least every other node holds, most first.
func goroutineKinds(dump []byte, nodes int) []GoroutineKind {
	counts := map[string]int{}
	var count int
	var frames []string
	flush := func() {
		if count > 0 && len(frames) > 0 {
			counts[kindOf(frames)] += count
		}
		count, frames = 0, frames[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(dump))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#\t"):
			if f := strings.Split(line, "\t"); len(f) >= 3 {
				fn := f[2]
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				frames = append(frames, fn)
			}
		case line == "":
			flush()
		default:
			if n, rest, ok := strings.Cut(line, " @ "); ok && rest != "" {
				flush()
				count, _ = strconv.Atoi(n)
			}
		}
	}
	flush()
	var out []GoroutineKind
	for k, c := range counts {
		if 2*c >= nodes {
			out = append(out, GoroutineKind{Kind: k, PerNode: float64(c) / float64(nodes)})
		}
	}
	slices.SortFunc(out, func(a, b GoroutineKind) int {
		return cmp.Or(cmp.Compare(b.PerNode, a.PerNode), strings.Compare(a.Kind, b.Kind))
	})
	return out
}

// kindOf names a goroutine by the innermost frame outside the runtime and
// the standard library plumbing (where it waits) and its outermost frame
// (what it runs).
func kindOf(frames []string) string {
	wait := frames[0]
	for _, f := range frames {
		if !isPlumbing(f) {
			wait = f
			break
		}
	}
	top := frames[len(frames)-1]
	if top == "runtime.goexit" && len(frames) > 1 {
		top = frames[len(frames)-2]
	}
	if short(top) == short(wait) {
		return short(wait)
	}
	return short(wait) + " in " + short(top)
}

func isPlumbing(fn string) bool {
	for _, p := range []string{"runtime.", "internal/", "sync.", "net.", "io.", "syscall.", "time.", "os.", "bufio."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// short drops the import path: "google.golang.org/grpc/internal/transport.(*loopyWriter).run"
// becomes "transport.(*loopyWriter).run".
func short(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}
