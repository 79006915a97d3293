package rpc

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestBench runs the exported benchmark small, as a smoke test.
func TestBench(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	cfg := BenchConfig{UnaryCalls: 50, StreamMessages: 500, MessageBytes: 256}
	if os.Getenv("AGW_RPC_BENCH_FULL") != "" {
		cfg = DefaultBenchConfig()
	}
	r, err := Bench(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Direct.UnaryP50 <= 0 || r.Sidecars.UnaryP50 <= 0 || r.Sidecars.StreamMsgsPerSec <= 0 {
		t.Fatalf("empty result: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "through two sidecars") {
		t.Fatalf("table: %s", s)
	}
	t.Logf("\n%s", r)
}
