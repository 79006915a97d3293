package rpc

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestBench runs the exported benchmark small, as a smoke test.
func TestBench(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	cfg := BenchConfig{UnaryCalls: 50, Concurrency: 4, ConcurrentCalls: 100, Rate: 500, RateCalls: 100, StreamMessages: 500, MessageBytes: 256}
	if os.Getenv("AGW_RPC_BENCH_FULL") != "" {
		cfg = DefaultBenchConfig()
	}
	r, err := Bench(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []BenchPath{r.Direct, r.Sidecars} {
		if p.UnaryP50 <= 0 || p.UnaryPerSec <= 0 || p.ConcurrentPerSec <= 0 || p.RateP99 <= 0 || p.StreamMsgsPerSec <= 0 {
			t.Fatalf("empty result for %s: %+v", p.Name, p)
		}
	}
	for _, want := range []string{"through two sidecars", "concurrent calls/s", "added p99", "stream throughput"} {
		if s := r.String(); !strings.Contains(s, want) {
			t.Fatalf("table without %q:\n%s", want, s)
		}
	}
	if _, err := Bench(ctx, BenchConfig{UnaryCalls: 1, StreamMessages: 1}); err == nil {
		t.Fatal("a config without concurrency or rate was accepted")
	}
	sum := Summarize([]*BenchResult{r, r, r})
	if sum.Runs != 3 || sum.ConcurrentBest <= 0 || sum.ConcurrentBest != sum.ConcurrentMedian ||
		sum.AddedP99Best != r.Sidecars.RateP99-r.Direct.RateP99 || !strings.Contains(sum.String(), "best / median") {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("\n%s", r)
}

func benchUnary(b *testing.B, c samplev1.EchoClient) {
	ctx := context.Background()
	req := &samplev1.SayRequest{Text: "ping"}
	for range 20 {
		if _, err := c.Say(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Say(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnary compares one unary call direct and through two sidecars.
func BenchmarkUnary(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	(&samplev1.Server{Name: "bench"}).Register(srv)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	m, err := startMesh(context.Background(), slog.New(slog.DiscardHandler), []meshSpec{
		{node: "a", agent: "bench/rpc/client/a"},
		{node: "b", agent: "bench/rpc/echo/b", app: ln.Addr().String()},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, p := range []struct{ name, addr, authority string }{
		{"direct", ln.Addr().String(), ""},
		{"sidecars", m.nodes[0].layer.Addr().String(), "echo.rpc"},
	} {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if p.authority != "" {
			opts = append(opts, grpc.WithAuthority(p.authority))
		}
		cc, err := grpc.NewClient(p.addr, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p.name, func(b *testing.B) { benchUnary(b, samplev1.NewEchoClient(cc)) })
		cc.Close()
	}
}
