package interceptors

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// panicky is a health server whose Check panics for service "boom".
type panicky struct {
	*health.Server
}

func (p panicky) Check(ctx context.Context, r *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if r.Service == "boom" {
		panic("handler bug")
	}
	return p.Server.Check(ctx, r)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServerChainRecoversAndCounts(t *testing.T) {
	var logs syncBuf
	l := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	srv := grpc.NewServer(ServerChain(l, m)...)
	healthpb.RegisterHealthServer(srv, panicky{health.NewServer()})
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

	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "boom"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic: got %v, want INTERNAL", err)
	}
	// The server keeps serving after the panic.
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
	if got := testutil.ToFloat64(m.panics.WithLabelValues("/grpc.health.v1.Health/Check")); got != 1 {
		t.Errorf("panics = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.handled.WithLabelValues("/grpc.health.v1.Health/Check", "Internal")); got != 1 {
		t.Errorf("handled{Internal} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.handled.WithLabelValues("/grpc.health.v1.Health/Check", "OK")); got != 1 {
		t.Errorf("handled{OK} = %v, want 1", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"panic":"handler bug"`) || !strings.Contains(out, `"code":"Internal"`) {
		t.Errorf("logs missing panic or access line:\n%s", out)
	}
}
