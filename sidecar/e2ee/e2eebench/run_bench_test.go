package e2eebench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/agwproject/agw/sidecar/e2ee"
)

// TestFigures prints the figures of a full run (AGW_E2EE_BENCH=1).
func TestFigures(t *testing.T) {
	if os.Getenv("AGW_E2EE_BENCH") == "" {
		t.Skip("set AGW_E2EE_BENCH=1 for the full benchmark")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, fan := range []uint32{0, 1} {
		r, err := Run(ctx, Options{Messages: 20000, PayloadSize: 1024, Fanout: fan})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("fanout %d, 1 KiB: plaintext %.0f msg/s p50 %v p99 %v; mls %.0f msg/s p50 %v p99 %v; ratio %.2f", fan,
			r.Plaintext.MsgsPerSec, r.Plaintext.P50, r.Plaintext.P99, r.Encrypted.MsgsPerSec, r.Encrypted.P50, r.Encrypted.P99, r.Ratio)
	}
	rs, err := e2ee.MeasureAdmission(ctx, []int{2, 16, 128})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("admit into a channel of %d: joined %v, all members applied %v", r.Size, r.Joined, r.Applied)
	}
}
