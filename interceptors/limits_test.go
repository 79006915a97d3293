package interceptors

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestLimiterRate(t *testing.T) {
	lm := NewLimiter(Limits{Rate: 10, Burst: 2})
	now := time.Unix(1000, 0)
	lm.now = func() time.Time { return now }
	for i := range 2 {
		if err := lm.enter("/m"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
		lm.leave()
	}
	if err := lm.enter("/m"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over the burst: %v", err)
	}
	now = now.Add(100 * time.Millisecond) // one token back at 10/s
	if err := lm.enter("/m"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if err := lm.enter("/m"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("only one token refilled: %v", err)
	}
}

// blocking is a health server whose Watch blocks until its context ends.
type blocking struct{ *health.Server }

func (blocking) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	<-s.Context().Done()
	return s.Context().Err()
}

func TestLimiterConcurrencyAndSize(t *testing.T) {
	srv := grpc.NewServer(InterceptChain(ChainConfig{Limits: Limits{MaxConcurrent: 1, MaxMessageBytes: 64}, LocalOnly: true})...)
	healthpb.RegisterHealthServer(srv, blocking{health.NewServer()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: string(make([]byte, 100))}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v", err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	w, err := c.Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The Watch holds the only slot once the server has it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) == codes.ResourceExhausted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second call while one is in progress: %v, want RESOURCE_EXHAUSTED", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wcancel()
	_, _ = w.Recv()
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stream ended: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
