package rpc

import (
	"io"
	"sync"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
)

// Many concurrent streams share the fabric: every one completes intact
// (the windows keep the shared queues from overflowing).
func TestManyConcurrentStreams(t *testing.T) {
	// Under this load a ping's answer may wait behind many frames.
	p := newPair(t, func(c *Config) { c.ProbeInterval = 3 * time.Second })
	ctx := testCtx(t, 60*time.Second)
	const calls, n = 48, 200
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			s, err := p.client.Count(ctx, &samplev1.CountRequest{N: n, PadBytes: 512})
			if err != nil {
				t.Error(err)
				return
			}
			got := int32(0)
			for {
				r, err := s.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("after %d messages: %v", got, err)
					return
				}
				got++
				if r.GetI() != got {
					t.Errorf("message %d has i=%d", got, r.GetI())
					return
				}
			}
			if got != n {
				t.Errorf("%d messages, want %d", got, n)
			}
		})
	}
	wg.Wait()
}
