package sidecar_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/sidecartest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const benchWindow = 256 // publishes in flight at most

// pipeline publishes b.N messages of size bytes on stream with at most
// benchWindow not yet received by the consumer, and waits for all of them.
func pipeline(b *testing.B, send func(*agpv1.AgentRequest) error, received *atomic.Int64, size int) {
	b.Helper()
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for int64(i)-received.Load() >= benchWindow {
			time.Sleep(20 * time.Microsecond)
		}
		req := &agpv1.AgentRequest{RequestId: uint64(i + 1), Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{
			Message: &agpv1.Message{Header: &agpv1.Header{Destination: "acme/bench/sink", Fanout: 1}, Payload: payload}}}}
		if err := send(req); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d", received.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkForward: agent -> sidecar A -> sidecar B -> agent, 1 KiB
// messages, pipelined.
func BenchmarkForward(b *testing.B) {
	cfgB := sidecartest.Config("b")
	cfgB.AdminListen = ""
	nb := sidecartest.Start(b, cfgB)
	cfgA := sidecartest.Config("a")
	cfgA.AdminListen = ""
	cfgA.StaticPeers = []string{"b=" + nb.PeerAddr().String()}
	cfgA.StaticRoutes = []string{"acme/bench/sink=b"}
	na := sidecartest.Start(b, cfgA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if c := na.Connections(); len(c) == 1 && c[0].Status == sidecar.StatusUp {
			break
		}
		if ctx.Err() != nil {
			b.Fatal("no link")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var received atomic.Int64
	sub := sidecartest.DialAgent(b, nb)
	if err := sub.Subscribe(ctx, "acme/bench/sink"); err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			select {
			case <-sub.Deliveries():
				received.Add(1)
			case <-sub.Done():
				return
			}
		}
	}()
	// Raw publisher stream: acks are read and discarded.
	cc, err := grpc.NewClient(na.AgentAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	st, err := agpv1.NewGatewayClient(cc).Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			if _, err := st.Recv(); err != nil {
				return
			}
		}
	}()
	pipeline(b, st.Send, &received, 1024)
	_ = st.CloseSend()
}

// directServer is the baseline: an agent that receives the other agent's
// stream itself, with no sidecars.
type directServer struct {
	agpv1.UnimplementedGatewayServer
	received *atomic.Int64
}

func (d *directServer) Connect(st grpc.BidiStreamingServer[agpv1.AgentRequest, agpv1.AgentResponse]) error {
	for {
		if _, err := st.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		d.received.Add(1)
	}
}

// BenchmarkDirect is the baseline for BenchmarkForward: one gRPC stream
// from agent to agent, same messages and window.
func BenchmarkDirect(b *testing.B) {
	var received atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	agpv1.RegisterGatewayServer(srv, &directServer{received: &received})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := agpv1.NewGatewayClient(cc).Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pipeline(b, st.Send, &received, 1024)
	_ = st.CloseSend()
}
