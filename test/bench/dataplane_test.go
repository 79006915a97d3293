package bench

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestRunDataPlane runs a short measurement of the three paths and checks that
// every message sent arrived and that the figures are filled in. With
// AGW_BENCH_DURATION set (e.g. 3s) it runs that long and logs the figures,
// including CPU time per message, which varies little with machine load.
func TestRunDataPlane(t *testing.T) {
	opts := Options{Duration: 300 * time.Millisecond, RateFor: 300 * time.Millisecond}
	if d, err := time.ParseDuration(os.Getenv("AGW_BENCH_DURATION")); err == nil && d > 0 {
		opts.Duration, opts.RateFor = d, d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := RunDataPlane(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]Figures{"direct": rep.Direct, "sidecars": rep.Sidecars, "mls": rep.MLS} {
		if f.Sent == 0 || f.Received != f.Sent {
			t.Errorf("%s: sent %d, received %d", name, f.Sent, f.Received)
		}
		if f.Samples == 0 || f.P50 <= 0 || f.P99 < f.P50 || f.Max < f.P99 {
			t.Errorf("%s: latency figures %+v", name, f)
		}
		if runtime.GOOS == "linux" && f.CPUPerMsg <= 0 {
			t.Errorf("%s: no CPU time per message", name)
		}
	}
	t.Logf("direct   %8.0f msg/s  cpu/msg %6.2fµs  p50 %v p99 %v", rep.Direct.Throughput, us(rep.Direct.CPUPerMsg), rep.Direct.P50, rep.Direct.P99)
	t.Logf("sidecars %8.0f msg/s  cpu/msg %6.2fµs  p50 %v p99 %v", rep.Sidecars.Throughput, us(rep.Sidecars.CPUPerMsg), rep.Sidecars.P50, rep.Sidecars.P99)
	t.Logf("mls      %8.0f msg/s  cpu/msg %6.2fµs  p50 %v p99 %v", rep.MLS.Throughput, us(rep.MLS.CPUPerMsg), rep.MLS.P50, rep.MLS.P99)
	t.Logf("throughput ratio %.2f  cpu ratio %.2f  added p99 %v; mls/plaintext %.2f, mls added p99 %v", rep.ThroughputRatio(), rep.CPURatio(), rep.AddedP99(), rep.MLSRatio(), rep.MLSAddedP99())
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
