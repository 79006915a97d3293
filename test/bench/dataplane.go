// Package bench holds the measurements behind `agw bench`: the data plane
// (agent -> sidecar A -> sidecar B -> agent against two agents streaming to
// each other directly over gRPC, in the same run) and the idle memory of a
// sidecar process. Every figure is printed beside its baseline and ratio.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/e2ee"
)

// staticRoster names the two sidecars as the participants of every
// channel (the e2ee roster; routes are static here).
type staticRoster []string

func (r staticRoster) Participants(string) []string { return r }
func (staticRoster) Gone(string) bool               { return false }

// Options bound a data-plane run. Zero values take the defaults.
type Options struct {
	MessageSize int           // payload bytes (default 1024)
	Duration    time.Duration // length of each throughput phase (default 3s)
	Window      int           // messages in flight in the throughput phase (default 256)
	Rate        int           // messages per second in the latency phase (default 1000)
	RateFor     time.Duration // length of each latency phase (default 3s)
}

func (o *Options) defaults() {
	if o.MessageSize <= 0 {
		o.MessageSize = 1024
	}
	if o.MessageSize < 8 {
		o.MessageSize = 8
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if o.RateFor <= 0 {
		o.RateFor = 3 * time.Second
	}
}

// Figures are one path's measurements.
type Figures struct {
	Throughput float64 // messages per second, windowed, as fast as possible
	Sent       int     // throughput phase
	Received   int     // throughput phase
	// CPUPerMsg is this process's CPU time (user + system, every
	// goroutine: sender, path and receiver) per message received in the
	// throughput phase. Unlike Throughput it hardly depends on what else
	// the machine is running.
	CPUPerMsg time.Duration
	P50, P99  time.Duration // latency at Options.Rate
	Max       time.Duration
	Samples   int
}

// DataPlaneReport compares the paths.
type DataPlaneReport struct {
	Options  Options
	Direct   Figures // agent A -> agent B over one gRPC stream
	Sidecars Figures // agent A -> sidecar A -> sidecar B -> agent B, plaintext between the sidecars
	// MLS is the Sidecars path with every message between the sidecars in
	// an MLS PrivateMessage (sidecar/e2ee), as a running sidecar always
	// sends them; the plaintext path above exists only in this harness.
	MLS Figures
}

// MLSRatio is MLS throughput / plaintext sidecar throughput.
func (r DataPlaneReport) MLSRatio() float64 {
	if r.Sidecars.Throughput == 0 {
		return 0
	}
	return r.MLS.Throughput / r.Sidecars.Throughput
}

// MLSAddedP99 is the p99 latency MLS adds to the sidecar path at
// Options.Rate.
func (r DataPlaneReport) MLSAddedP99() time.Duration { return r.MLS.P99 - r.Sidecars.P99 }

// ThroughputRatio is sidecar throughput / direct throughput.
func (r DataPlaneReport) ThroughputRatio() float64 {
	if r.Direct.Throughput == 0 {
		return 0
	}
	return r.Sidecars.Throughput / r.Direct.Throughput
}

// CPURatio is the CPU time per message through the sidecars over that of
// the direct path (0 if either is unknown).
func (r DataPlaneReport) CPURatio() float64 {
	if r.Direct.CPUPerMsg == 0 {
		return 0
	}
	return float64(r.Sidecars.CPUPerMsg) / float64(r.Direct.CPUPerMsg)
}

// AddedP99 is the p99 latency the sidecars add at Options.Rate.
func (r DataPlaneReport) AddedP99() time.Duration { return r.Sidecars.P99 - r.Direct.P99 }

// path is what a measurement needs: a way to send and a stream of arrivals.
type path struct {
	send    func(payload []byte) error
	arrived <-chan []byte // payloads as received by agent B
	close   func()
}

// RunDataPlane measures both paths, direct first.
func RunDataPlane(ctx context.Context, opts Options) (DataPlaneReport, error) {
	opts.defaults()
	rep := DataPlaneReport{Options: opts}
	direct, err := directPath(ctx)
	if err != nil {
		return rep, fmt.Errorf("direct baseline: %w", err)
	}
	rep.Direct, err = measure(ctx, direct, opts)
	direct.close()
	if err != nil {
		return rep, fmt.Errorf("direct baseline: %w", err)
	}
	sc, err := sidecarPath(ctx, false)
	if err != nil {
		return rep, fmt.Errorf("through sidecars: %w", err)
	}
	rep.Sidecars, err = measure(ctx, sc, opts)
	sc.close()
	if err != nil {
		return rep, fmt.Errorf("through sidecars: %w", err)
	}
	mp, err := sidecarPath(ctx, true)
	if err != nil {
		return rep, fmt.Errorf("through sidecars with MLS: %w", err)
	}
	rep.MLS, err = measure(ctx, mp, opts)
	mp.close()
	if err != nil {
		return rep, fmt.Errorf("through sidecars with MLS: %w", err)
	}
	return rep, nil
}

func measure(ctx context.Context, p path, o Options) (Figures, error) {
	var f Figures
	// Throughput: keep at most Window messages in flight.
	payload := make([]byte, o.MessageSize)
	var received atomic.Int64
	done := make(chan struct{})
	var recvErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case _, ok := <-p.arrived:
				if !ok {
					recvErr = errors.New("receiver stream ended")
					return
				}
				received.Add(1)
			case <-done:
				return
			}
		}
	}()
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(o.Duration)
	sent := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for int64(sent)-received.Load() >= int64(o.Window) {
			if time.Now().After(deadline.Add(5 * time.Second)) {
				close(done)
				wg.Wait()
				return f, fmt.Errorf("stalled: %d sent, %d received", sent, received.Load())
			}
			time.Sleep(20 * time.Microsecond)
		}
		if err := p.send(payload); err != nil {
			close(done)
			wg.Wait()
			return f, err
		}
		sent++
	}
	// Drain what is in flight, bounded.
	drainBy := time.Now().Add(5 * time.Second)
	for received.Load() < int64(sent) && time.Now().Before(drainBy) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	close(done)
	wg.Wait()
	if recvErr != nil {
		return f, recvErr
	}
	f.Sent, f.Received = sent, int(received.Load())
	f.Throughput = float64(f.Received) / elapsed.Seconds()
	if f.Received > 0 && cpu > 0 {
		f.CPUPerMsg = cpu / time.Duration(f.Received)
	}
	if err := ctx.Err(); err != nil {
		return f, err
	}

	// Latency at a fixed rate: the payload carries the send time.
	n := int(o.RateFor.Seconds() * float64(o.Rate))
	lat := make([]time.Duration, 0, n)
	latDone := make(chan struct{})
	go func() {
		defer close(latDone)
		for len(lat) < n {
			select {
			case b, ok := <-p.arrived:
				if !ok {
					return
				}
				sentAt := int64(binary.BigEndian.Uint64(b))
				lat = append(lat, time.Duration(time.Now().UnixNano()-sentAt))
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	interval := time.Second / time.Duration(o.Rate)
	next := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		b := make([]byte, o.MessageSize)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		if err := p.send(b); err != nil {
			return f, err
		}
	}
	<-latDone
	if len(lat) == 0 {
		return f, errors.New("no message arrived in the latency phase")
	}
	slices.Sort(lat)
	f.Samples = len(lat)
	f.P50 = lat[len(lat)*50/100]
	f.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	f.Max = lat[len(lat)-1]
	return f, ctx.Err()
}

// directGateway is agent B's own gRPC server: the baseline receives the very
// AgentRequest frames an agent would send its sidecar.
type directGateway struct {
	agpv1.UnimplementedGatewayServer
	out chan []byte
}

func (d *directGateway) Connect(s grpc.BidiStreamingServer[agpv1.AgentRequest, agpv1.AgentResponse]) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		if p := req.GetPublish(); p != nil {
			select {
			case d.out <- p.GetMessage().GetPayload():
			case <-s.Context().Done():
				return nil
			}
		}
	}
}

func directPath(ctx context.Context) (path, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return path{}, err
	}
	gw := &directGateway{out: make(chan []byte, 1024)}
	srv := grpc.NewServer()
	agpv1.RegisterGatewayServer(srv, gw)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return path{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := agpv1.NewGatewayClient(conn).Connect(sctx)
	if err != nil {
		cancel()
		conn.Close()
		srv.Stop()
		return path{}, err
	}
	return path{
		send: func(payload []byte) error {
			return stream.Send(&agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{
				Message: benchMessage(payload)}}})
		},
		arrived: gw.out,
		close: func() {
			_ = stream.CloseSend()
			cancel()
			conn.Close()
			srv.Stop()
		},
	}, nil
}

const benchTopic = "bench/agw/sink"

func benchMessage(payload []byte) *agpv1.Message {
	return &agpv1.Message{
		Header:  &agpv1.Header{Source: "bench/agw/source/1", Destination: benchTopic, Fanout: 1, ContentType: "application/octet-stream"},
		Payload: payload,
	}
}

// sidecarPath starts two sidecars in this process, linked by a static route,
// agent B subscribed on sidecar B and agent A connected to sidecar A. With
// mls, each sidecar has an identity from a throwaway CA and seals every
// message to the other (sidecar/e2ee).
func sidecarPath(ctx context.Context, mls bool) (path, error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	var ca *identity.CA
	if mls {
		var err error
		if ca, err = identity.NewCA("bench.example"); err != nil {
			return path{}, err
		}
	}
	start := func(cfg sidecar.Config) (*sidecar.Node, error) {
		var opts []sidecar.Option
		if mls {
			src, err := ca.MemorySource(identity.MustParseID("spiffe://bench.example/ns/bench/sa/"+cfg.NodeID), time.Hour)
			if err != nil {
				return nil, err
			}
			mcfg := e2ee.DefaultConfig()
			mcfg.RetryInterval = 20 * time.Millisecond
			m, err := e2ee.New(mcfg, cfg.NodeID, src, nil, e2ee.WithRoster(staticRoster{"bench-a", "bench-b"}))
			if err != nil {
				src.Close()
				return nil, err
			}
			mctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = m.Run(mctx) }()
			// Stopped after the node (stops run in reverse).
			stops = append(stops, func() { cancel(); _ = m.Close(); <-done; src.Close() })
			opts = append(opts, sidecar.WithPeerCrypter(m), sidecar.WithSubscriptionSink(m))
		}
		n, err := sidecar.New(cfg, opts...)
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- n.Run(rctx) }()
		stops = append(stops, func() { cancel(); <-errc })
		select {
		case <-n.Ready():
			return n, nil
		case err := <-errc:
			stops = stops[:len(stops)-1]
			cancel()
			return nil, fmt.Errorf("sidecar %s: %w", cfg.NodeID, err)
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("sidecar %s not ready after 10s", cfg.NodeID)
		}
	}
	cfgB := sidecar.DefaultConfig()
	cfgB.NodeID, cfgB.AgentListen, cfgB.PeerListen, cfgB.AdminListen = "bench-b", "127.0.0.1:0", "127.0.0.1:0", ""
	b, err := start(cfgB)
	if err != nil {
		cleanup()
		return path{}, err
	}
	cfgA := sidecar.DefaultConfig()
	cfgA.NodeID, cfgA.AgentListen, cfgA.PeerListen, cfgA.AdminListen = "bench-a", "127.0.0.1:0", "127.0.0.1:0", ""
	cfgA.StaticPeers = []string{"bench-b=" + b.PeerAddr().String()}
	cfgA.StaticRoutes = []string{benchTopic + "=bench-b"}
	a, err := start(cfgA)
	if err != nil {
		cleanup()
		return path{}, err
	}
	agentB, err := client.Dial(ctx, b.AgentAddr().String())
	if err != nil {
		cleanup()
		return path{}, err
	}
	stops = append(stops, func() { agentB.Close() })
	if err := agentB.Subscribe(ctx, benchTopic); err != nil {
		cleanup()
		return path{}, err
	}
	agentA, err := client.Dial(ctx, a.AgentAddr().String())
	if err != nil {
		cleanup()
		return path{}, err
	}
	stops = append(stops, func() { agentA.Close() })

	// Wait until the peer link carries messages (bounded).
	out := make(chan []byte, 1024)
	probeBy := time.Now().Add(10 * time.Second)
	for {
		ack, err := agentA.Publish(ctx, benchMessage(make([]byte, 8)))
		if err == nil && ack.GetRemoteDeliveries() > 0 {
			break
		}
		if time.Now().After(probeBy) {
			cleanup()
			return path{}, fmt.Errorf("sidecar A never reached sidecar B (last ack %v, error %v)", ack, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Drain the probes before measuring.
	drainUntil := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(drainUntil) {
		select {
		case <-agentB.Deliveries():
		case <-time.After(50 * time.Millisecond):
		}
	}
	fwdCtx, stopFwd := context.WithCancel(context.Background())
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		defer close(out)
		for {
			select {
			case m, ok := <-agentB.Deliveries():
				if !ok {
					return
				}
				select {
				case out <- m.GetPayload():
				case <-fwdCtx.Done():
					return
				}
			case <-fwdCtx.Done():
				return
			}
		}
	}()
	stops = append(stops, func() { stopFwd(); <-fwdDone })
	return path{
		send:    func(payload []byte) error { return agentA.PublishNoWait(benchMessage(payload)) },
		arrived: out,
		close:   cleanup,
	}, nil
}
