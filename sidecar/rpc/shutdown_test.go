package rpc

import (
	"errors"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Shutdown of the target's layer: the call in flight within the grace
// period finishes; one that outlasts it is cancelled at the target and
// ends UNAVAILABLE at the caller; new calls find no instance.
func TestGracefulShutdown(t *testing.T) {
	p := newPair(t, func(c *Config) {
		c.ShutdownTimeout = 600 * time.Millisecond
		c.AcceptTimeout = 500 * time.Millisecond
	})
	ctx := testCtx(t, 20*time.Second)
	if _, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "warm"}); err != nil {
		t.Fatal(err)
	}
	short := make(chan error, 1)
	long := make(chan error, 1)
	go func() {
		_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "short", DelayMillis: 300})
		short <- err
	}()
	go func() {
		_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "long", DelayMillis: 10000})
		long <- err
	}()
	eventually(t, 5*time.Second, "both calls at the target", func() bool {
		p.b.layer.mu.Lock()
		defer p.b.layer.mu.Unlock()
		return len(p.b.layer.in) == 2
	})
	closed := make(chan struct{})
	go func() { _ = p.b.layer.Close(); close(closed) }()
	if err := <-short; err != nil {
		t.Fatalf("call within the grace period: %v", err)
	}
	if err := <-long; status.Code(err) != codes.Unavailable {
		t.Fatalf("call beyond the grace period: %v, want UNAVAILABLE", err)
	}
	eventually(t, 5*time.Second, "the target to observe the cancellation", func() bool { return p.app.Cancelled.Load() == 1 })
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := p.b.layer.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := p.b.layer.Run(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "after"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("call after shutdown: %v, want UNAVAILABLE", err)
	}
}
