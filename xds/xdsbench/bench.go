// Package xdsbench measures route convergence and control plane memory:
// N xDS clients (one process) against one control plane over real gRPC on
// loopback. cmd/agw's "bench convergence" and go test -bench call it.
package xdsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/xds/client"
	"github.com/agwproject/agw/xds/controlplane"
	"github.com/agwproject/agw/xds/xdstest"
)

// Options tune a run. The zero value is usable.
type Options struct {
	// Changes is how many subscription changes are measured (default 20).
	Changes int
	// ChangeTimeout bounds the wait for one change to converge (default 10s).
	ChangeTimeout time.Duration
	// ConnectTimeout bounds connecting the N clients (default 60s).
	ConnectTimeout time.Duration
	// Pause between changes (default 20ms).
	Pause time.Duration
	// Topic watched by every client (default "bench/convergence/topic").
	Topic string
	// ControlPlaneCommand, when set, runs the control plane as a separate
	// process so that its memory is measured alone: it gets the gRPC and
	// admin addresses and returns the command to start (the harness adds
	// AGW_CP_LISTEN, AGW_CP_ADMIN_LISTEN and AGW_CP_WARMUP=0 to its
	// environment, waits for /readyz, reads /debug/heap, and interrupts it
	// at the end). For example: exec.Command("agw", "control-plane").
	// When nil the control plane runs in this process and the memory figure
	// includes the clients (Result.MemoryScope says which).
	ControlPlaneCommand func(grpcAddr, adminAddr string) *exec.Cmd
	// ProfileDir, when set, receives the control plane's heap profile and
	// goroutine dump taken with the N nodes connected:
	// cp-<N>-heap.pprof (go tool pprof -sample_index=inuse_space) and
	// cp-<N>-goroutines.txt.
	ProfileDir string
	// Logger receives progress (default: discard).
	Logger *slog.Logger
}

// Result holds the figures of one run.
type Result struct {
	Nodes   int `json:"nodes"`
	Changes int `json:"changes"`
	// Convergence per change: from the change at one node until every
	// client has ACKed the route that reflects it.
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
	// Per client ACK latency over all changes and clients.
	ClientP50 time.Duration `json:"client_p50"`
	ClientP99 time.Duration `json:"client_p99"`
	// ConnectTime is how long connecting the N clients and delivering them
	// the first route took.
	ConnectTime time.Duration `json:"connect_time"`
	// Heap in use (after GC) before and after connecting the N nodes, and
	// the difference divided by N.
	HeapBefore   uint64  `json:"heap_before"`
	HeapAfter    uint64  `json:"heap_after"`
	BytesPerNode float64 `json:"bytes_per_node"`
	// Goroutine stacks are not in the heap figure: stack memory in use
	// before and after, per node, and goroutines per node (same scope).
	StackBefore       uint64  `json:"stack_before"`
	StackAfter        uint64  `json:"stack_after"`
	StackBytesPerNode float64 `json:"stack_bytes_per_node"`
	GoroutinesPerNode float64 `json:"goroutines_per_node"`
	// GoroutineKinds are the goroutines the N nodes hold, by kind (same
	// scope as the memory figures).
	GoroutineKinds []GoroutineKind `json:"goroutine_kinds"`
	// CPU time per change spent by this process (the clients, plus the
	// control plane when it runs in process) and by a separate control
	// plane process (0 when in process). On a loaded machine latency
	// follows the CPU available; these show the work itself.
	ClientCPUPerChange       time.Duration `json:"client_cpu_per_change"`
	ControlPlaneCPUPerChange time.Duration `json:"control_plane_cpu_per_change"`
	// MemoryScope is "control-plane" (separate process) or
	// "process (control plane + clients)".
	MemoryScope string `json:"memory_scope"`
}

// Targets of issue #3 at 1,000 nodes.
const (
	// TargetP99 bounds the p99 convergence time.
	TargetP99 = 100 * time.Millisecond
	// TargetBytesPerNode bounds the control plane's memory per connected
	// node: heap in use after GC plus goroutine stacks ("under 20 KB").
	TargetBytesPerNode = 20_000
)

// TotalBytesPerNode is the control plane's memory per node: heap plus
// stacks.
func (r Result) TotalBytesPerNode() float64 { return r.BytesPerNode + r.StackBytesPerNode }

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("nodes=%d changes=%d p50=%s p99=%s max=%s client_p50=%s client_p99=%s connect=%s memory=%.0f B/node heap + %.0f B/node stacks = %.0f B/node, %.1f goroutines/node (%s) cpu/change: process=%s control-plane=%s",
		r.Nodes, r.Changes, r.P50, r.P99, r.Max, r.ClientP50, r.ClientP99, r.ConnectTime.Round(time.Millisecond), r.BytesPerNode, r.StackBytesPerNode, r.TotalBytesPerNode(), r.GoroutinesPerNode, r.MemoryScope,
		r.ClientCPUPerChange.Round(10*time.Microsecond), r.ControlPlaneCPUPerChange.Round(10*time.Microsecond))
}

// change is the change being measured.
type change struct {
	id        int64
	topic     string
	node      string
	present   bool
	start     time.Time
	remaining atomic.Int64
	done      chan struct{}
	mu        sync.Mutex
	lat       []time.Duration
}

type benchClient struct {
	c       *client.Client
	lastRec atomic.Int64 // last change id recorded
}

// RunConvergenceBench runs the benchmark with n clients. It stops by itself
// (bounded changes and time) and releases everything it started.
func RunConvergenceBench(ctx context.Context, n int, opts Options) (Result, error) {
	if n < 2 {
		return Result{}, errors.New("xdsbench: need at least 2 nodes")
	}
	if opts.Changes <= 0 {
		opts.Changes = 20
	}
	if opts.ChangeTimeout <= 0 {
		opts.ChangeTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 60 * time.Second
	}
	if opts.Pause <= 0 {
		opts.Pause = 20 * time.Millisecond
	}
	if opts.Topic == "" {
		opts.Topic = "bench/convergence/topic"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{Nodes: n}

	cp, err := startControlPlane(ctx, opts)
	if err != nil {
		return res, err
	}
	defer cp.stop()
	res.MemoryScope = cp.scope
	before, err := cp.heap(ctx)
	if err != nil {
		return res, err
	}
	res.HeapBefore, res.StackBefore = before.HeapInuse, before.StackInuse

	var cur atomic.Pointer[change]
	clients := make([]*benchClient, n)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, bc := range clients {
			if bc != nil {
				_ = bc.c.Close()
			}
		}
		wg.Wait()
	}()
	for i := range clients {
		bc := &benchClient{}
		cfg := client.DefaultConfig()
		cfg.Server = cp.addr
		cfg.NodeID = fmt.Sprintf("bench-%05d", i)
		cfg.AdvertiseAddress = fmt.Sprintf("127.0.0.1:%d", 10000+i)
		cfg.BackoffInitial = 50 * time.Millisecond
		cfg.BackoffMax = time.Second
		c, err := client.New(cfg, client.WithOnUpdate(func(u client.Update) { observe(bc, cur.Load(), u) }))
		if err != nil {
			return res, err
		}
		bc.c = c
		clients[i] = bc
	}

	// Connect everyone and deliver a first route (node 0 subscribes).
	t0 := time.Now()
	first := &change{id: 1, topic: opts.Topic, node: clients[0].c.NodeID(), present: true, start: t0, done: make(chan struct{})}
	first.remaining.Store(int64(n))
	cur.Store(first)
	for _, bc := range clients {
		bc.c.Watch(opts.Topic)
		wg.Add(1)
		go func() { defer wg.Done(); _ = bc.c.Run(runCtx) }()
	}
	clients[0].c.TopicAdded(opts.Topic)
	if err := waitChange(ctx, first, opts.ConnectTimeout); err != nil {
		return res, fmt.Errorf("connecting %d clients: %w (%d never received the route)", n, err, first.remaining.Load())
	}
	res.ConnectTime = time.Since(t0)
	log.Info("clients connected", "nodes", n, "took", res.ConnectTime)
	after, err := cp.heap(ctx)
	if err != nil {
		return res, err
	}
	res.HeapAfter, res.StackAfter = after.HeapInuse, after.StackInuse
	if res.HeapAfter > res.HeapBefore {
		res.BytesPerNode = float64(res.HeapAfter-res.HeapBefore) / float64(n)
	}
	if res.StackAfter > res.StackBefore {
		res.StackBytesPerNode = float64(res.StackAfter-res.StackBefore) / float64(n)
	}
	if after.Goroutines > before.Goroutines {
		res.GoroutinesPerNode = float64(after.Goroutines-before.Goroutines) / float64(n)
	}

	if dump, err := cp.goroutines(ctx); err == nil {
		res.GoroutineKinds = goroutineKinds(dump, n)
	} else {
		log.Warn("control plane goroutine dump", "err", err)
	}
	if opts.ProfileDir != "" {
		if err := cp.profile(ctx, opts.ProfileDir, n); err != nil {
			return res, err
		}
	}

	var perChange, perClient []time.Duration
	cpu0 := processCPU()
	cpCPU0, _ := cp.cpu(ctx)
	for k := 0; k < opts.Changes; k++ {
		// Toggle node j's subscription: j cycles over nodes 1..n-1; node 0
		// stays subscribed so the route exists throughout.
		j := 1 + (k/2)%(n-1)
		ch := &change{id: int64(k + 2), topic: opts.Topic, node: clients[j].c.NodeID(), present: k%2 == 0, done: make(chan struct{})}
		ch.remaining.Store(int64(n))
		ch.start = time.Now()
		cur.Store(ch)
		if ch.present {
			clients[j].c.TopicAdded(opts.Topic)
		} else {
			clients[j].c.TopicRemoved(opts.Topic)
		}
		if err := waitChange(ctx, ch, opts.ChangeTimeout); err != nil {
			return res, fmt.Errorf("change %d: %w (%d of %d clients did not converge)", k, err, ch.remaining.Load(), n)
		}
		ch.mu.Lock()
		perClient = append(perClient, ch.lat...)
		perChange = append(perChange, slices.Max(ch.lat))
		ch.mu.Unlock()
		res.Changes++
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(opts.Pause):
		}
	}
	res.ClientCPUPerChange = (processCPU() - cpu0) / time.Duration(res.Changes)
	if cpCPU1, err := cp.cpu(ctx); err == nil && cpCPU1 > cpCPU0 {
		res.ControlPlaneCPUPerChange = (cpCPU1 - cpCPU0) / time.Duration(res.Changes)
	}
	res.P50, res.P99, res.Max = pct(perChange, 50), pct(perChange, 99), slices.Max(perChange)
	res.ClientP50, res.ClientP99 = pct(perClient, 50), pct(perClient, 99)
	log.Info("convergence measured", "result", res.String())
	return res, nil
}

// observe records a client's latency for ch once its route reflects it.
func observe(bc *benchClient, ch *change, u client.Update) {
	if ch == nil || u.NACK != nil || bc.lastRec.Load() >= ch.id {
		return
	}
	found := false
	for _, ep := range bc.c.Endpoints(ch.topic) {
		if ep.GetNodeId() == ch.node && ep.GetStatus() == agpv1.RouteEndpoint_STATUS_ACTIVE {
			found = true
		}
	}
	if found != ch.present {
		return
	}
	if !bc.lastRec.CompareAndSwap(bc.lastRec.Load(), ch.id) {
		return
	}
	ch.mu.Lock()
	ch.lat = append(ch.lat, u.At.Sub(ch.start))
	ch.mu.Unlock()
	if ch.remaining.Add(-1) == 0 {
		close(ch.done)
	}
}

func waitChange(ctx context.Context, ch *change, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch.done:
		return nil
	case <-t.C:
		return fmt.Errorf("timed out after %s", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

// memStats is what the harness reads of the control plane's memory.
type memStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines uint64 `json:"goroutines"`
}

// cpHandle is a control plane in process or in a child process.
type cpHandle struct {
	addr  string
	scope string
	heap  func(context.Context) (memStats, error)
	cpu   func(context.Context) (time.Duration, error)
	// heapProfile writes a heap profile (after a GC).
	heapProfile func(ctx context.Context, w io.Writer) error
	// goroutines returns the goroutine dump (pprof debug=1 text).
	goroutines func(ctx context.Context) ([]byte, error)
	stop       func()
}

// profile writes the control plane's profiles into dir (see
// Options.ProfileDir).
func (h *cpHandle) profile(ctx context.Context, dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("profile dir: %w", err)
	}
	hf, err := os.Create(filepath.Join(dir, fmt.Sprintf("cp-%d-heap.pprof", n)))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer hf.Close()
	gf, err := os.Create(filepath.Join(dir, fmt.Sprintf("cp-%d-goroutines.txt", n)))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer gf.Close()
	if err := h.heapProfile(ctx, hf); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	dump, err := h.goroutines(ctx)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := gf.Write(dump); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := hf.Close(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return gf.Close()
}

func startControlPlane(ctx context.Context, opts Options) (*cpHandle, error) {
	if opts.ControlPlaneCommand == nil {
		cfg := xdstest.Config()
		cfg.AdminListen = ""
		cfg.GracePeriod = 30 * time.Second
		cp, err := xdstest.Start(cfg)
		if err != nil {
			return nil, err
		}
		return &cpHandle{addr: cp.Addr, scope: "process (control plane + clients)", heap: func(context.Context) (memStats, error) {
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return memStats{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: uint64(runtime.NumGoroutine())}, nil
		}, cpu: func(context.Context) (time.Duration, error) { return 0, nil }, heapProfile: func(_ context.Context, w io.Writer) error {
			runtime.GC()
			return pprof.Lookup("heap").WriteTo(w, 0)
		}, goroutines: func(context.Context) ([]byte, error) {
			var b bytes.Buffer
			err := pprof.Lookup("goroutine").WriteTo(&b, 1)
			return b.Bytes(), err
		}, stop: func() { _ = cp.Stop() }}, nil
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := opts.ControlPlaneCommand(grpcAddr, adminAddr)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	if opts.ProfileDir != "" {
		// Sample every allocation, so that the per-node breakdown is exact.
		cmd.Env = appendGODEBUG(cmd.Env, "memprofilerate=1")
	}
	cmd.Env = append(cmd.Env, "AGW_CP_LISTEN="+grpcAddr, "AGW_CP_ADMIN_LISTEN="+adminAddr, "AGW_CP_WARMUP=0s", "AGW_CP_GRACE_PERIOD=30s")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start control plane process: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	base := "http://" + adminAddr
	hc := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return nil, errors.New("control plane process exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("control plane process not ready within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	heap := func(ctx context.Context) (memStats, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/heap", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return memStats{}, fmt.Errorf("read control plane heap: %w", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var v memStats
		if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != http.StatusOK {
			return memStats{}, fmt.Errorf("read control plane heap: status %d: %s", resp.StatusCode, b)
		}
		return v, nil
	}
	cpu := func(ctx context.Context) (time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, err
				}
				return time.Duration(f * float64(time.Second)), nil
			}
		}
		return 0, errors.New("process_cpu_seconds_total not found")
	}
	fetch := func(ctx context.Context, path string, w io.Writer) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		_, err = io.Copy(w, resp.Body)
		return err
	}
	heapProfile := func(ctx context.Context, w io.Writer) error { return fetch(ctx, "/debug/pprof/heap?gc=1", w) }
	goroutines := func(ctx context.Context) ([]byte, error) {
		var b bytes.Buffer
		err := fetch(ctx, "/debug/pprof/goroutine?debug=1", &b)
		return b.Bytes(), err
	}
	return &cpHandle{addr: grpcAddr, scope: "control-plane", heap: heap, cpu: cpu, heapProfile: heapProfile, goroutines: goroutines, stop: stop}, nil
}

// appendGODEBUG adds setting to the GODEBUG variable of env.
func appendGODEBUG(env []string, setting string) []string {
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			if v != "" {
				v += ","
			}
			env[i] = "GODEBUG=" + v + setting
			return env
		}
	}
	return append(env, "GODEBUG="+setting)
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RunChildControlPlane runs a control plane configured from AGW_CP_*
// environment variables until interrupted; a test binary or command calls
// it in its child mode for ControlPlaneCommand.
func RunChildControlPlane(ctx context.Context, cfg controlplane.Config, opts ...controlplane.Option) error {
	srv, err := controlplane.New(cfg, opts...)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
