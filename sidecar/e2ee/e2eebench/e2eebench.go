// Package e2eebench measures the cost of end-to-end encryption between
// sidecars: the same publish workload between two loopback sidecars,
// plaintext and sealed by e2ee, in one run. The plaintext baseline exists
// only here, inside the harness: a sidecar has no setting that turns MLS
// off.
package e2eebench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/sidecar"
	"github.com/agwproject/agw/sidecar/e2ee"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options of a run.
type Options struct {
	Messages    int           // per mode (default 20000)
	PayloadSize int           // bytes, at least 8 (default 1024)
	Window      int           // publishes in flight (default 256)
	Fanout      uint32        // 0: multicast (channel group), 1: anycast (session)
	Timeout     time.Duration // per mode (default 2m)
}

// Result of one mode.
type Result struct {
	Mode       string
	Messages   int
	Elapsed    time.Duration
	MsgsPerSec float64
	P50, P99   time.Duration
}

// Report compares the modes of one run.
type Report struct {
	Plaintext, Encrypted Result
	// Ratio is encrypted throughput over plaintext throughput.
	Ratio float64
}

// Run measures the plaintext path, then the encrypted one.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Messages <= 0 {
		o.Messages = 20000
	}
	if o.PayloadSize < 8 {
		o.PayloadSize = 1024
	}
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	p, err := runMode(ctx, o, false)
	if err != nil {
		return nil, fmt.Errorf("plaintext: %w", err)
	}
	e, err := runMode(ctx, o, true)
	if err != nil {
		return nil, fmt.Errorf("encrypted: %w", err)
	}
	return &Report{Plaintext: *p, Encrypted: *e, Ratio: e.MsgsPerSec / p.MsgsPerSec}, nil
}

const topic = "bench/mls/throughput"

type benchNode struct {
	node *sidecar.Node
	mgr  *e2ee.Manager
	stop func()
}

func startNode(ctx context.Context, id string, peers []string, ca *identity.CA, encrypted bool) (*benchNode, error) {
	cfg := sidecar.DefaultConfig()
	cfg.NodeID = id
	cfg.AgentListen, cfg.PeerListen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.StaticPeers = peers
	for _, p := range peers {
		n, _, _ := cutEq(p)
		cfg.StaticRoutes = append(cfg.StaticRoutes, topic+"="+n)
	}
	cfg.ReconnectMin, cfg.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	var opts []sidecar.Option
	bn := &benchNode{}
	var stops []func()
	if encrypted {
		src, err := ca.MemorySource(identity.MustParseID("spiffe://bench.example/ns/bench/sa/"+id), time.Hour)
		if err != nil {
			return nil, err
		}
		mc := e2ee.DefaultConfig()
		mc.RetryInterval = 20 * time.Millisecond
		m, err := e2ee.New(mc, id, src, nil, e2ee.WithRoster(roster{"a", "b"}))
		if err != nil {
			src.Close()
			return nil, err
		}
		bn.mgr = m
		mctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(mctx) }()
		stops = append(stops, func() { cancel(); _ = m.Close(); <-done; src.Close() })
		opts = append(opts, sidecar.WithPeerCrypter(m), sidecar.WithSubscriptionSink(m))
	}
	n, err := sidecar.New(cfg, opts...)
	if err != nil {
		for _, s := range stops {
			s()
		}
		return nil, err
	}
	nctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(nctx) }()
	stops = append([]func(){func() { cancel(); <-done }}, stops...)
	bn.node = n
	bn.stop = func() {
		for _, s := range stops {
			s()
		}
	}
	select {
	case <-n.Ready():
	case <-done:
		bn.stop()
		return nil, errors.New("sidecar did not start")
	case <-ctx.Done():
		bn.stop()
		return nil, ctx.Err()
	}
	return bn, nil
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

type roster []string

func (r roster) Participants(string) []string { return r }
func (r roster) Gone(string) bool             { return false }

// agent is a minimal AGP client.
type agent struct {
	conn   *grpc.ClientConn
	stream grpc.BidiStreamingClient[agpv1.AgentRequest, agpv1.AgentResponse]
}

func dialAgent(ctx context.Context, addr string) (*agent, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	st, err := agpv1.NewGatewayClient(conn).Connect(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &agent{conn: conn, stream: st}, nil
}

func (a *agent) close() { _ = a.stream.CloseSend(); _ = a.conn.Close() }

func runMode(ctx context.Context, o Options, encrypted bool) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ca, err := identity.NewCA("bench.example")
	if err != nil {
		return nil, err
	}
	b, err := startNode(ctx, "b", nil, ca, encrypted)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	a, err := startNode(ctx, "a", []string{"b=" + b.node.PeerAddr().String()}, ca, encrypted)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	sub, err := dialAgent(ctx, b.node.AgentAddr().String())
	if err != nil {
		return nil, err
	}
	defer sub.close()
	if err := sub.stream.Send(&agpv1.AgentRequest{RequestId: 1, Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: topic}}}); err != nil {
		return nil, err
	}
	if _, err := sub.stream.Recv(); err != nil {
		return nil, err
	}
	pub, err := dialAgent(ctx, a.node.AgentAddr().String())
	if err != nil {
		return nil, err
	}
	defer pub.close()
	// Warm up: links, sessions and channels, until a message gets through.
	payload := make([]byte, o.PayloadSize)
	msg := func() *agpv1.AgentRequest {
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		return &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: &agpv1.Message{
			Header: &agpv1.Header{Destination: topic, Fanout: o.Fanout}, Payload: payload}}}}
	}
	delivered := make(chan time.Duration, o.Messages+1024)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := sub.stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if d := r.GetDelivery(); d != nil && len(d.Message.GetPayload()) >= 8 {
				sent := int64(binary.BigEndian.Uint64(d.Message.Payload))
				select {
				case delivered <- time.Duration(time.Now().UnixNano() - sent):
				default:
				}
			}
		}
	}()
	for warm := false; !warm; {
		if err := pub.stream.Send(msg()); err != nil {
			return nil, err
		}
		select {
		case <-delivered:
			warm = true
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("warm-up: %w", ctx.Err())
		}
	}
	// Drain acks of the publisher stream.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := pub.stream.Recv(); err != nil {
				return
			}
		}
	}()
	for len(delivered) > 0 {
		<-delivered
	}
	lat := make([]time.Duration, 0, o.Messages)
	t0 := time.Now()
	sent := 0
	for len(lat) < o.Messages {
		for sent < o.Messages && sent-len(lat) < o.Window {
			if err := pub.stream.Send(msg()); err != nil {
				return nil, err
			}
			sent++
		}
		select {
		case d := <-delivered:
			lat = append(lat, d)
		case err := <-recvErr:
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d delivered: %w", len(lat), o.Messages, ctx.Err())
		}
	}
	el := time.Since(t0)
	pub.close()
	wg.Wait()
	slices.Sort(lat)
	mode := "plaintext"
	if encrypted {
		mode = "mls"
	}
	return &Result{
		Mode: mode, Messages: len(lat), Elapsed: el, MsgsPerSec: float64(len(lat)) / el.Seconds(),
		P50: lat[len(lat)/2], P99: lat[len(lat)*99/100],
	}, nil
}
