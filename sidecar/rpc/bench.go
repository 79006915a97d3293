package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchConfig sizes Bench.
type BenchConfig struct {
	// UnaryCalls is the number of sequential unary calls measured.
	UnaryCalls int
	// StreamMessages and MessageBytes size the server-streaming run.
	StreamMessages int
	MessageBytes   int
	// Logger receives the sidecars' logs (default: discard).
	Logger *slog.Logger
}

// DefaultBenchConfig is what `agw bench rpc` runs.
func DefaultBenchConfig() BenchConfig {
	return BenchConfig{UnaryCalls: 2000, StreamMessages: 20000, MessageBytes: 1024}
}

// BenchPath is the measurement of one path (direct gRPC, or through two
// sidecars).
type BenchPath struct {
	Name                     string
	UnaryP50, UnaryP99       time.Duration
	UnaryMean                time.Duration
	StreamMsgsPerSec         float64
	StreamMBPerSec           float64
	StreamDuration           time.Duration
	StreamMessages, MsgBytes int
}

// BenchResult holds both paths, measured in the same run.
type BenchResult struct {
	Direct, Sidecars BenchPath
}

// String formats the result as a table.
func (r *BenchResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %12s %12s %12s %14s %10s\n", "path", "unary p50", "unary p99", "unary mean", "stream msg/s", "MB/s")
	for _, p := range []BenchPath{r.Direct, r.Sidecars} {
		fmt.Fprintf(&b, "%-22s %12s %12s %12s %14.0f %10.1f\n", p.Name,
			p.UnaryP50.Round(time.Microsecond), p.UnaryP99.Round(time.Microsecond), p.UnaryMean.Round(time.Microsecond),
			p.StreamMsgsPerSec, p.StreamMBPerSec)
	}
	if r.Direct.UnaryP50 > 0 && r.Direct.StreamMsgsPerSec > 0 {
		fmt.Fprintf(&b, "through two sidecars: unary p50 x%.1f, stream throughput %.0f%% of direct (%d messages of %d bytes)\n",
			float64(r.Sidecars.UnaryP50)/float64(r.Direct.UnaryP50),
			100*r.Sidecars.StreamMsgsPerSec/r.Direct.StreamMsgsPerSec, r.Direct.StreamMessages, r.Direct.MsgBytes)
	}
	return b.String()
}

// Bench measures unary call latency and server-streaming throughput of the
// sample Echo service directly and through two sidecars (caller's sidecar,
// target's sidecar, on loopback, in this process), in the same run.
func Bench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	if cfg.UnaryCalls < 1 || cfg.StreamMessages < 1 || cfg.MessageBytes < 0 {
		return nil, errors.New("rpc bench: want at least one unary call and one stream message")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	(&samplev1.Server{Name: "bench"}).Register(srv)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-served }()
	appAddr := ln.Addr().String()

	m, err := startMesh(ctx, log, []meshSpec{
		{node: "bench-a", agent: "bench/rpc/client/a"},
		{node: "bench-b", agent: "bench/rpc/echo/b", app: appAddr},
	}, func(c *Config) { c.Window = 256 })
	if err != nil {
		return nil, fmt.Errorf("rpc bench: start sidecars: %w", err)
	}
	defer m.Close()

	res := &BenchResult{}
	for _, p := range []struct {
		name, addr, authority string
		out                   *BenchPath
	}{
		{"direct gRPC", appAddr, "", &res.Direct},
		{"through two sidecars", m.nodes[0].layer.Addr().String(), "echo.rpc", &res.Sidecars},
	} {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if p.authority != "" {
			opts = append(opts, grpc.WithAuthority(p.authority))
		}
		cc, err := grpc.NewClient(p.addr, opts...)
		if err != nil {
			return nil, err
		}
		err = benchPath(ctx, samplev1.NewEchoClient(cc), cfg, p.out)
		cc.Close()
		if err != nil {
			return nil, fmt.Errorf("rpc bench %s: %w", p.name, err)
		}
		p.out.Name = p.name
	}
	return res, nil
}

func benchPath(ctx context.Context, c samplev1.EchoClient, cfg BenchConfig, out *BenchPath) error {
	req := &samplev1.SayRequest{Text: "ping"}
	for range 50 { // warm up: connections, links, routes
		if _, err := c.Say(ctx, req); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, cfg.UnaryCalls)
	var total time.Duration
	for range cfg.UnaryCalls {
		t0 := time.Now()
		if _, err := c.Say(ctx, req); err != nil {
			return err
		}
		d := time.Since(t0)
		lat = append(lat, d)
		total += d
	}
	slices.Sort(lat)
	out.UnaryP50 = lat[len(lat)/2]
	out.UnaryP99 = lat[len(lat)*99/100]
	out.UnaryMean = total / time.Duration(len(lat))

	t0 := time.Now()
	s, err := c.Count(ctx, &samplev1.CountRequest{N: int32(cfg.StreamMessages), PadBytes: int32(cfg.MessageBytes)})
	if err != nil {
		return err
	}
	n := 0
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		n++
	}
	if n != cfg.StreamMessages {
		return fmt.Errorf("stream: %d messages, want %d", n, cfg.StreamMessages)
	}
	out.StreamDuration = time.Since(t0)
	out.StreamMessages, out.MsgBytes = n, cfg.MessageBytes
	out.StreamMsgsPerSec = float64(n) / out.StreamDuration.Seconds()
	out.StreamMBPerSec = float64(n*cfg.MessageBytes) / out.StreamDuration.Seconds() / 1e6
	return nil
}
