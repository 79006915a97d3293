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
	"sync"
	"sync/atomic"
	"time"

	samplev1 "github.com/agwproject/agw/api/sample/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchConfig sizes Bench.
type BenchConfig struct {
	// UnaryCalls is the number of sequential unary calls measured.
	UnaryCalls int
	// Concurrency and ConcurrentCalls size the unary throughput run: that
	// many callers at once, that many calls in all.
	Concurrency, ConcurrentCalls int
	// Rate and RateCalls size the fixed-rate run: calls started at Rate
	// per second whatever the answers (open loop), RateCalls in all.
	Rate      float64
	RateCalls int
	// StreamMessages and MessageBytes size the server-streaming run.
	StreamMessages int
	MessageBytes   int
	// Logger receives the sidecars' logs (default: discard).
	Logger *slog.Logger
}

// DefaultBenchConfig is what `agw bench rpc` runs.
func DefaultBenchConfig() BenchConfig {
	return BenchConfig{
		UnaryCalls: 2000, Concurrency: 32, ConcurrentCalls: 10000,
		Rate: 1000, RateCalls: 3000,
		StreamMessages: 20000, MessageBytes: 1024,
	}
}

// BenchPath is the measurement of one path (direct gRPC, or through two
// sidecars).
type BenchPath struct {
	Name string
	// Sequential unary calls (one at a time).
	UnaryP50, UnaryP99 time.Duration
	UnaryMean          time.Duration
	UnaryPerSec        float64
	// Unary calls per second with Concurrency callers.
	ConcurrentPerSec float64
	// Latency of calls started at a fixed rate, open loop.
	RateP50, RateP99 time.Duration
	// Server streaming.
	StreamMsgsPerSec         float64
	StreamMBPerSec           float64
	StreamDuration           time.Duration
	StreamMessages, MsgBytes int
}

// BenchResult holds both paths, measured in the same run.
type BenchResult struct {
	Direct, Sidecars BenchPath
	Concurrency      int
	Rate             float64
}

// Targets of issue 7.
const (
	benchTargetAddedP99   = time.Millisecond
	benchTargetThroughput = 0.40
)

// String formats the result as a table, with the ratios to direct.
func (r *BenchResult) String() string {
	var b strings.Builder
	us := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	fmt.Fprintf(&b, "%-22s %10s %10s %10s %12s %14s %11s %11s %13s %8s\n", "path",
		"unary p50", "unary p99", "mean", "seq calls/s", fmt.Sprintf("calls/s (x%d)", r.Concurrency),
		fmt.Sprintf("@%.0f/s p50", r.Rate), fmt.Sprintf("@%.0f/s p99", r.Rate), "stream msg/s", "MB/s")
	for _, p := range []BenchPath{r.Direct, r.Sidecars} {
		fmt.Fprintf(&b, "%-22s %10s %10s %10s %12.0f %14.0f %11s %11s %13.0f %8.1f\n", p.Name,
			us(p.UnaryP50), us(p.UnaryP99), us(p.UnaryMean), p.UnaryPerSec, p.ConcurrentPerSec,
			us(p.RateP50), us(p.RateP99), p.StreamMsgsPerSec, p.StreamMBPerSec)
	}
	d, s := r.Direct, r.Sidecars
	if d.UnaryP50 > 0 && d.StreamMsgsPerSec > 0 && d.ConcurrentPerSec > 0 && d.UnaryPerSec > 0 {
		fmt.Fprintf(&b, "through two sidecars vs direct: unary p50 x%.1f, p99 x%.1f; sequential calls/s %.0f%%, concurrent calls/s %.0f%% (target >= %.0f%%); stream throughput %.0f%% (%d messages of %d bytes)\n",
			float64(s.UnaryP50)/float64(d.UnaryP50), float64(s.UnaryP99)/float64(d.UnaryP99),
			100*s.UnaryPerSec/d.UnaryPerSec, 100*s.ConcurrentPerSec/d.ConcurrentPerSec, 100*benchTargetThroughput,
			100*s.StreamMsgsPerSec/d.StreamMsgsPerSec, d.StreamMessages, d.MsgBytes)
	}
	if d.RateP99 > 0 {
		added := s.RateP99 - d.RateP99
		verdict := "met"
		if added >= benchTargetAddedP99 {
			verdict = "missed"
		}
		fmt.Fprintf(&b, "at %.0f calls/s: added p99 %s (p99 %s through the sidecars vs %s direct; target < %s: %s)\n",
			r.Rate, us(added), us(s.RateP99), us(d.RateP99), benchTargetAddedP99, verdict)
	}
	return b.String()
}

// Bench measures unary call latency and server-streaming throughput of the
// sample Echo service directly and through two sidecars (caller's sidecar,
// target's sidecar, on loopback, in this process), in the same run.
func Bench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	if cfg.UnaryCalls < 1 || cfg.StreamMessages < 1 || cfg.MessageBytes < 0 ||
		cfg.Concurrency < 1 || cfg.ConcurrentCalls < 1 || cfg.Rate <= 0 || cfg.RateCalls < 1 {
		return nil, errors.New("rpc bench: want at least one call of each kind, one caller, a positive rate and one stream message")
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

	res := &BenchResult{Concurrency: cfg.Concurrency, Rate: cfg.Rate}
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
	for range 200 { // warm up: connections, links, routes
		if _, err := c.Say(ctx, req); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, cfg.UnaryCalls)
	start := time.Now()
	for range cfg.UnaryCalls {
		t0 := time.Now()
		if _, err := c.Say(ctx, req); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	el := time.Since(start)
	out.UnaryMean = el / time.Duration(len(lat))
	out.UnaryPerSec = float64(len(lat)) / el.Seconds()
	out.UnaryP50, out.UnaryP99 = percentiles(lat)

	if err := benchConcurrent(ctx, c, cfg, out); err != nil {
		return fmt.Errorf("concurrent unary: %w", err)
	}
	if err := benchRate(ctx, c, cfg, out); err != nil {
		return fmt.Errorf("fixed-rate unary: %w", err)
	}

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

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// benchConcurrent runs ConcurrentCalls unary calls from Concurrency
// callers at once.
func benchConcurrent(ctx context.Context, c samplev1.EchoClient, cfg BenchConfig, out *BenchPath) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Concurrency)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Go(func() {
			req := &samplev1.SayRequest{Text: "ping"}
			for next.Add(1) <= int64(cfg.ConcurrentCalls) {
				if _, err := c.Say(ctx, req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		return err
	default:
	}
	out.ConcurrentPerSec = float64(cfg.ConcurrentCalls) / el.Seconds()
	return nil
}

// benchRate starts RateCalls unary calls at Rate per second, each at its
// scheduled time whether or not earlier ones have answered (open loop, so a
// slow answer delays no later call), and measures each call.
func benchRate(ctx context.Context, c samplev1.EchoClient, cfg BenchConfig, out *BenchPath) error {
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	lat := make([]time.Duration, cfg.RateCalls)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.RateCalls {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			t0 := time.Now()
			if _, err := c.Say(ctx, &samplev1.SayRequest{Text: "ping"}); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			lat[i] = time.Since(t0)
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	out.RateP50, out.RateP99 = percentiles(lat)
	return nil
}

// BenchSummary condenses several runs of Bench: the best and the median of
// each ratio to direct gRPC (the machine may be shared, so single runs
// vary).
type BenchSummary struct {
	Runs int
	// Sidecar/direct calls per second, concurrent and sequential, and
	// stream messages per second.
	ConcurrentBest, ConcurrentMedian float64
	SequentialBest, SequentialMedian float64
	StreamBest, StreamMedian         float64
	// Added p99 at the fixed rate (sidecars minus direct).
	AddedP99Best, AddedP99Median time.Duration
}

// Summarize returns the best and median figures of rs.
func Summarize(rs []*BenchResult) BenchSummary {
	s := BenchSummary{Runs: len(rs)}
	if len(rs) == 0 {
		return s
	}
	ratio := func(f func(BenchPath) float64) (best, med float64) {
		v := make([]float64, 0, len(rs))
		for _, r := range rs {
			if d := f(r.Direct); d > 0 {
				v = append(v, f(r.Sidecars)/d)
			}
		}
		if len(v) == 0 {
			return 0, 0
		}
		slices.Sort(v)
		return v[len(v)-1], v[len(v)/2]
	}
	s.ConcurrentBest, s.ConcurrentMedian = ratio(func(p BenchPath) float64 { return p.ConcurrentPerSec })
	s.SequentialBest, s.SequentialMedian = ratio(func(p BenchPath) float64 { return p.UnaryPerSec })
	s.StreamBest, s.StreamMedian = ratio(func(p BenchPath) float64 { return p.StreamMsgsPerSec })
	added := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		added = append(added, r.Sidecars.RateP99-r.Direct.RateP99)
	}
	slices.Sort(added)
	s.AddedP99Best, s.AddedP99Median = added[0], added[len(added)/2]
	return s
}

func (s BenchSummary) String() string {
	return fmt.Sprintf("over %d runs, through two sidecars vs direct (best / median): concurrent calls/s %.0f%% / %.0f%% (target >= %.0f%%); sequential calls/s %.0f%% / %.0f%%; stream %.0f%% / %.0f%%; added p99 at the fixed rate %s / %s (target < %s)\n",
		s.Runs, 100*s.ConcurrentBest, 100*s.ConcurrentMedian, 100*benchTargetThroughput,
		100*s.SequentialBest, 100*s.SequentialMedian, 100*s.StreamBest, 100*s.StreamMedian,
		s.AddedP99Best.Round(time.Microsecond), s.AddedP99Median.Round(time.Microsecond), benchTargetAddedP99)
}
