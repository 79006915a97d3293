package xdsbench

import (
	"context"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/agwproject/agw/xds/controlplane"
)

const childEnv = "AGW_XDSBENCH_CHILD"

// TestMain doubles as the out-of-process control plane for the memory
// figure: the test binary re-executes itself with AGW_XDSBENCH_CHILD=1.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		cfg, err := env.ParseAs[controlplane.Config]()
		if err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			if a := os.Getenv("AGW_XDSBENCH_PPROF"); a != "" {
				runtime.MemProfileRate = 1
				go func() { _ = http.ListenAndServe(a, nil) }() // net/http/pprof, investigation only
			}
			if p := os.Getenv("AGW_XDSBENCH_CPUPROFILE"); p != "" {
				if f, perr := os.Create(p); perr == nil {
					_ = pprof.StartCPUProfile(f)
					defer pprof.StopCPUProfile()
				}
			}
			err = RunChildControlPlane(ctx, cfg)
			stop()
			pprof.StopCPUProfile()
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func childCommand(string, string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	return cmd
}

func TestConvergenceBenchInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := RunConvergenceBench(ctx, 10, Options{Changes: 6})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 6 || res.P50 <= 0 || res.Max < res.P99 || res.P99 < res.P50 || res.ClientP50 <= 0 || res.HeapAfter == 0 {
		t.Fatalf("implausible result %+v", res)
	}
	t.Log(res)
}

func TestConvergenceBenchSeparateControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := RunConvergenceBench(ctx, 20, Options{Changes: 4, ControlPlaneCommand: childCommand})
	if err != nil {
		t.Fatal(err)
	}
	if res.MemoryScope != "control-plane" || res.BytesPerNode <= 0 || res.StackBytesPerNode <= 0 || res.GoroutinesPerNode < 1 || res.Changes != 4 {
		t.Fatalf("implausible result %+v", res)
	}
	// Each node costs the control plane six goroutines: grpc's transport
	// reader, loopy writer and keepalive; the mirror handler (which
	// receives itself: no helper goroutine); go-control-plane's stream
	// goroutine and its receiver.
	sum := 0.0
	for _, k := range res.GoroutineKinds {
		sum += k.PerNode
	}
	if res.GoroutinesPerNode > 6.25 || len(res.GoroutineKinds) != 6 || sum < 5.9 || sum > 6.1 {
		t.Errorf("%.2f goroutines per node, want 6: %+v", res.GoroutinesPerNode, res.GoroutineKinds)
	}
	t.Log(res)
}

func benchmarkConvergence(b *testing.B, n int) {
	var last Result
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := RunConvergenceBench(ctx, n, Options{Changes: benchChanges(), ControlPlaneCommand: childCommand})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		last = res
	}
	b.ReportMetric(float64(last.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(last.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(last.Max.Microseconds())/1000, "max-ms")
	b.ReportMetric(last.BytesPerNode, "cp-heap-B/node")
	b.ReportMetric(last.StackBytesPerNode, "cp-stack-B/node")
	b.ReportMetric(last.TotalBytesPerNode(), "cp-B/node")
	b.Log(last)
}

// benchChanges is 20, or AGW_XDSBENCH_CHANGES (more changes make a CPU
// profile show the steady state rather than the connection phase).
func benchChanges() int {
	if n, err := strconv.Atoi(os.Getenv("AGW_XDSBENCH_CHANGES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// BenchmarkConvergence100 is the go test -bench wrapper (N = 100).
func BenchmarkConvergence100(b *testing.B) { benchmarkConvergence(b, 100) }

// BenchmarkConvergence1000 runs N = 1,000 (slow: run it explicitly).
func BenchmarkConvergence1000(b *testing.B) { benchmarkConvergence(b, 1000) }
