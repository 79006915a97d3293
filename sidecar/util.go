package sidecar

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agwproject/agw/internal/names"
)

func validateName(s string) error { return names.Validate(s) }

// idGen makes message ids: "<node>-<random hex>-<counter base 36>". The
// random part keeps ids unique across restarts of the same node.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen(node string) *idGen {
	var b [6]byte
	_, _ = crand.Read(b[:])
	return &idGen{prefix: node + "-" + hex.EncodeToString(b[:]) + "-"}
}

func (g *idGen) next() string {
	buf := make([]byte, 0, len(g.prefix)+13)
	buf = append(buf, g.prefix...)
	buf = strconv.AppendUint(buf, g.n.Add(1), 36)
	return string(buf)
}

// logEvery reports whether an event may be logged now, at most once per
// interval per *last.
func logEvery(last *atomic.Int64, now int64, every time.Duration) bool {
	prev := last.Load()
	if now-prev < int64(every) {
		return false
	}
	return last.CompareAndSwap(prev, now)
}

// jitter returns d scaled by a random factor in [0.8, 1.2).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// uint32Counter is a round-robin cursor.
type uint32Counter struct{ atomic.Uint32 }

func (c *uint32Counter) next() uint32 { return c.Add(1) - 1 }
