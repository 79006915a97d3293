// Package sidecartest starts sidecar nodes and agent clients for tests.
//
// Start runs a sidecar.Node on 127.0.0.1 ports chosen by the kernel and
// stops it in t.Cleanup; DialAgent connects a test agent to a node's agent
// API.
package sidecartest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/sidecar"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Config returns a config for nodeID with every listener on 127.0.0.1:0 and
// short timeouts, so tests are fast.
func Config(nodeID string) sidecar.Config {
	c := sidecar.DefaultConfig()
	c.NodeID = nodeID
	c.AgentListen = "127.0.0.1:0"
	c.PeerListen = "127.0.0.1:0"
	c.AdminListen = "127.0.0.1:0"
	c.ReconnectMin = 20 * time.Millisecond
	c.ReconnectMax = 200 * time.Millisecond
	c.HandshakeTimeout = 2 * time.Second
	c.ShutdownTimeout = 2 * time.Second
	return c
}

// Start starts a node with cfg, waits until it is ready and stops it when
// the test ends. It fails the test if the node does not start.
func Start(t testing.TB, cfg sidecar.Config, opts ...sidecar.Option) *sidecar.Node {
	t.Helper()
	n, err := sidecar.New(cfg, opts...)
	if err != nil {
		t.Fatalf("sidecartest: new node %s: %v", cfg.NodeID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("sidecartest: node %s: Run: %v", cfg.NodeID, err)
			}
		case <-time.After(cfg.ShutdownTimeout + 10*time.Second):
			t.Errorf("sidecartest: node %s did not stop", cfg.NodeID)
		}
	})
	select {
	case <-n.Ready():
	case err := <-runErr:
		runErr <- err
		t.Fatalf("sidecartest: node %s failed to start: %v", cfg.NodeID, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("sidecartest: node %s not ready after 10s", cfg.NodeID)
	}
	return n
}

// RequestError is an AgentResponse.Error as a Go error; status.Code works
// on it.
type RequestError struct {
	Code    codes.Code
	Message string
}

func (e *RequestError) Error() string { return fmt.Sprintf("agp error %s: %s", e.Code, e.Message) }

// GRPCStatus lets status.Code and status.FromError read the code.
func (e *RequestError) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Agent is a test client of a node's agent API. Its methods are safe for
// concurrent use.
type Agent struct {
	cc     *grpc.ClientConn
	stream grpc.BidiStreamingClient[agpv1.AgentRequest, agpv1.AgentResponse]
	ctx    context.Context
	cancel context.CancelFunc

	sendMu sync.Mutex
	mu     sync.Mutex
	nextID uint64
	wait   map[uint64]chan *agpv1.AgentResponse

	deliveries chan *agpv1.Message
	done       chan struct{}
	err        error
}

// DialAgent connects an agent to n's agent API; it is closed when the test
// ends. Deliveries are buffered (up to 100000) until read with Next.
func DialAgent(t testing.TB, n *sidecar.Node) *Agent {
	t.Helper()
	a, err := Dial(n.AgentAddr().String(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatalf("sidecartest: dial agent API: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// Dial connects an agent to the agent API at addr. Close it when done.
func Dial(addr string, opts ...grpc.DialOption) (*Agent, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := agpv1.NewGatewayClient(cc).Connect(ctx, grpc.WaitForReady(true))
	if err != nil {
		cancel()
		cc.Close()
		return nil, err
	}
	a := &Agent{
		cc: cc, stream: stream, ctx: ctx, cancel: cancel,
		wait:       make(map[uint64]chan *agpv1.AgentResponse),
		deliveries: make(chan *agpv1.Message, 100000),
		done:       make(chan struct{}),
	}
	go a.read()
	return a, nil
}

func (a *Agent) read() {
	defer close(a.done)
	for {
		resp, err := a.stream.Recv()
		if err != nil {
			a.mu.Lock()
			a.err = err
			a.mu.Unlock()
			return
		}
		switch k := resp.Kind.(type) {
		case *agpv1.AgentResponse_Delivery:
			select {
			case a.deliveries <- k.Delivery.GetMessage():
			case <-a.ctx.Done():
			}
		case *agpv1.AgentResponse_Ack:
			a.answer(k.Ack.GetRequestId(), resp)
		case *agpv1.AgentResponse_Error:
			a.answer(k.Error.GetRequestId(), resp)
		}
	}
}

func (a *Agent) answer(id uint64, resp *agpv1.AgentResponse) {
	a.mu.Lock()
	ch := a.wait[id]
	delete(a.wait, id)
	a.mu.Unlock()
	if ch != nil {
		ch <- resp
	}
}

// Err returns the stream's final error once it has ended (nil before).
func (a *Agent) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Done is closed when the stream has ended.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Close ends the stream and the connection.
func (a *Agent) Close() {
	a.sendMu.Lock()
	_ = a.stream.CloseSend()
	a.sendMu.Unlock()
	a.cancel()
	<-a.done
	a.cc.Close()
}

// Do sends req with a fresh request id and waits for its Ack. An
// AgentResponse.Error comes back as *RequestError.
func (a *Agent) Do(ctx context.Context, req *agpv1.AgentRequest) (*agpv1.Ack, error) {
	ch := make(chan *agpv1.AgentResponse, 1)
	a.mu.Lock()
	a.nextID++
	req.RequestId = a.nextID
	a.wait[req.RequestId] = ch
	a.mu.Unlock()
	a.sendMu.Lock()
	err := a.stream.Send(req)
	a.sendMu.Unlock()
	if err != nil {
		a.forget(req.RequestId)
		<-a.done
		return nil, fmt.Errorf("send: %w", errors.Join(err, a.Err()))
	}
	select {
	case resp := <-ch:
		if e := resp.GetError(); e != nil {
			return nil, &RequestError{Code: codes.Code(e.GetCode()), Message: e.GetMessage()}
		}
		return resp.GetAck(), nil
	case <-a.done:
		a.forget(req.RequestId)
		return nil, fmt.Errorf("stream ended: %w", a.Err())
	case <-ctx.Done():
		a.forget(req.RequestId)
		return nil, ctx.Err()
	}
}

func (a *Agent) forget(id uint64) {
	a.mu.Lock()
	delete(a.wait, id)
	a.mu.Unlock()
}

// Subscribe subscribes to name.
func (a *Agent) Subscribe(ctx context.Context, name string) error {
	_, err := a.Do(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: name}}})
	return err
}

// Unsubscribe unsubscribes from name.
func (a *Agent) Unsubscribe(ctx context.Context, name string) error {
	_, err := a.Do(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Unsubscribe{Unsubscribe: &agpv1.Unsubscribe{Name: name}}})
	return err
}

// Publish publishes msg and returns its Ack.
func (a *Agent) Publish(ctx context.Context, msg *agpv1.Message) (*agpv1.Ack, error) {
	return a.Do(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msg}}})
}

// PublishTo publishes payload to dest with the given fanout.
func (a *Agent) PublishTo(ctx context.Context, dest string, fanout uint32, payload []byte) (*agpv1.Ack, error) {
	return a.Publish(ctx, &agpv1.Message{Header: &agpv1.Header{Destination: dest, Fanout: fanout}, Payload: payload})
}

// Next returns the next delivered message.
func (a *Agent) Next(ctx context.Context) (*agpv1.Message, error) {
	select {
	case m := <-a.deliveries:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Pending returns the number of delivered messages not yet read by Next.
func (a *Agent) Pending() int { return len(a.deliveries) }

// Deliveries returns the channel of delivered messages.
func (a *Agent) Deliveries() <-chan *agpv1.Message { return a.deliveries }
