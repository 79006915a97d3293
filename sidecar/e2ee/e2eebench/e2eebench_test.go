package e2eebench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, fan := range []uint32{0, 1} {
		r, err := Run(ctx, Options{Messages: 500, PayloadSize: 256, Fanout: fan, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if r.Plaintext.Messages != 500 || r.Encrypted.Messages != 500 || r.Ratio <= 0 || r.Encrypted.P99 < r.Encrypted.P50 {
			t.Fatalf("%+v", r)
		}
		t.Logf("fanout %d: plaintext %.0f msg/s p99 %v; mls %.0f msg/s p99 %v; ratio %.2f", fan,
			r.Plaintext.MsgsPerSec, r.Plaintext.P99, r.Encrypted.MsgsPerSec, r.Encrypted.P99, r.Ratio)
	}
}
