package rpc

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestUnknownTarget(t *testing.T) {
	p := newPair(t, func(c *Config) { c.RouteWait = 100 * time.Millisecond })
	ctx := testCtx(t, 10*time.Second)
	_, err := dialEcho(t, p.a.layer, "nope.demo").Say(ctx, &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "acme/demo/nope") {
		t.Fatalf("unknown service: %v, want UNAVAILABLE naming acme/demo/nope", err)
	}
	_, err = dialEcho(t, p.a.layer, "nodots").Say(ctx, &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nodots") {
		t.Fatalf("unresolvable authority: %v, want NOT_FOUND naming it", err)
	}
	// The metadata key wins over the authority.
	mctx := metadata.AppendToOutgoingContext(ctx, MDTarget, "acme/demo/echo/b1")
	r, err := dialEcho(t, p.a.layer, "nodots").Say(mctx, &samplev1.SayRequest{Text: "x"})
	if err != nil || r.GetFrom() != "b1" {
		t.Fatalf("agw-target: %v %v", r, err)
	}
}

func TestAuthorityMap(t *testing.T) {
	p := newPair(t, func(c *Config) { c.AuthorityMap = []string{"echo-svc:8080=acme/demo/echo"} })
	ctx := testCtx(t, 10*time.Second)
	r, err := dialEcho(t, p.a.layer, "echo-svc:8080").Say(ctx, &samplev1.SayRequest{Text: "x"})
	if err != nil || r.GetFrom() != "b1" {
		t.Fatalf("mapped authority: %v %v", r, err)
	}
}

func TestTargetAgentDown(t *testing.T) {
	app, addr := startApp(t, "b1")
	_ = app
	// Nothing listens at dead: the app is down.
	dead, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	m := newMesh(t, []meshSpec{
		{node: "a", agent: "acme/demo/client/a1"},
		{node: "b", agent: "acme/demo/echo/b1", app: dead},
	}, nil)
	_ = addr
	ctx := testCtx(t, 10*time.Second)
	_, err = dialEcho(t, m.nodes[0].layer, "echo.demo").Say(ctx, &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want UNAVAILABLE", err)
	}
}

func TestDeadlinePropagated(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.client.Say(dctx, &samplev1.SayRequest{Text: "slow", DelayMillis: 5000})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DEADLINE_EXCEEDED", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	// The target's handler saw its context end: the work was cancelled.
	eventually(t, 5*time.Second, "the target to observe the deadline", func() bool { return p.app.Cancelled.Load() == 1 })
}

func TestDeadlineEnforcedAtTarget(t *testing.T) {
	// The caller's own gRPC client has no deadline; the caller's sidecar
	// carries the one the interception listener saw. Here the deadline is
	// short enough that only the target's hop enforces it first.
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	s, err := p.client.Count(dctx, &samplev1.CountRequest{N: 100, IntervalMillis: 50})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		if _, err = s.Recv(); err != nil {
			break
		}
		n++
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("after %d messages: %v, want DEADLINE_EXCEEDED", n, err)
	}
	if n == 0 || n >= 100 {
		t.Fatalf("got %d messages before the deadline", n)
	}
	eventually(t, 5*time.Second, "the target to observe the deadline", func() bool { return p.app.Cancelled.Load() == 1 })
}

func TestCancelPropagated(t *testing.T) {
	p := newPair(t, nil)
	ctx, cancel := context.WithCancel(testCtx(t, 10*time.Second))
	s, err := p.client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&samplev1.SayRequest{Text: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&samplev1.SayRequest{Text: "slow", DelayMillis: 10000}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the slow request reach the handler
	cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("got %v, want CANCELLED", err)
	}
	eventually(t, 5*time.Second, "the target to observe the cancellation", func() bool { return p.app.Cancelled.Load() == 1 })
	// The target's sidecar forgets the call.
	eventually(t, 5*time.Second, "the call to end at the target", func() bool {
		p.b.layer.mu.Lock()
		defer p.b.layer.mu.Unlock()
		return len(p.b.layer.in) == 0
	})
}

func TestOversizedMessage(t *testing.T) {
	p := newPair(t, func(c *Config) { c.MaxMessageBytes = 64 << 10 })
	ctx := testCtx(t, 10*time.Second)
	_, err := p.client.Say(ctx, &samplev1.SayRequest{Text: strings.Repeat("x", 100<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("large request: %v, want RESOURCE_EXHAUSTED", err)
	}
	_, err = p.client.Say(ctx, &samplev1.SayRequest{Text: "x", PadBytes: 100 << 10})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("large response: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "x", PadBytes: 32 << 10}); err != nil {
		t.Fatalf("a message under the limit: %v", err)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	boom := grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		if len(md.Get("x-panic")) > 0 {
			panic("handler bug")
		}
		return h(srv, ss)
	})
	p := newPair(t, nil, WithInterceptServerOptions(boom))
	ctx := testCtx(t, 10*time.Second)
	_, err := p.client.Say(metadata.AppendToOutgoingContext(ctx, "x-panic", "1"), &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want INTERNAL", err)
	}
	if _, err := p.client.Say(ctx, &samplev1.SayRequest{Text: "still there"}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// A stream whose client does not read must not hold up other calls.
func TestLargeStreamDoesNotStarveOthers(t *testing.T) {
	p := newPair(t, func(c *Config) { c.Window = 8 })
	ctx := testCtx(t, 20*time.Second)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := p.client.Count(sctx, &samplev1.CountRequest{N: 100000, PadBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil { // the stream runs; then stop reading
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				cctx, c := context.WithTimeout(ctx, 2*time.Second)
				_, err := p.client.Say(cctx, &samplev1.SayRequest{Text: "small"})
				c()
				if err != nil {
					t.Errorf("unary call next to a stalled stream: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestUnknownMethodAtTarget(t *testing.T) {
	p := newPair(t, nil)
	ctx := testCtx(t, 10*time.Second)
	cc := dialConn(t, p.a.layer, "echo.demo")
	err := cc.Invoke(ctx, "/sample.v1.Echo/Nope", &samplev1.SayRequest{}, &samplev1.SayResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("got %v, want UNIMPLEMENTED from the target's server", err)
	}
	// A caller-only agent (no AGW_APP_ADDR) does not take calls.
	_, err = dialEcho(t, p.b.layer, "acme/demo/client/a1").Say(ctx, &samplev1.SayRequest{Text: "x"})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "AGW_APP_ADDR") {
		t.Fatalf("call to a caller-only agent: %v", err)
	}
}
