// Package client is the Go library an agent uses to speak AGP to its local
// sidecar: one bidirectional Gateway.Connect stream carrying subscriptions,
// publishes and their acknowledgements in, and deliveries out. Agents in
// other languages use the generated stubs of api/agp/v1 directly; this
// package only adds request correlation and a delivery channel.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// ErrClosed is returned by calls on a closed client or after the stream ended.
var ErrClosed = errors.New("agp client: closed")

type options struct {
	buffer   int
	dialOpts []grpc.DialOption
}

// Option configures a Client.
type Option func(*options)

// WithDeliveryBuffer sets how many delivered messages may wait in the
// Deliveries channel before the client stops reading from the sidecar
// (which then applies its own backpressure). Default 1024.
func WithDeliveryBuffer(n int) Option { return func(o *options) { o.buffer = n } }

// WithDialOptions adds gRPC dial options (the default is plaintext, for the
// sidecar on localhost).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

type result struct {
	ack *agpv1.Ack
	err error
}

// Client is one agent connection to a sidecar. It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	stream grpc.BidiStreamingClient[agpv1.AgentRequest, agpv1.AgentResponse]
	cancel context.CancelFunc

	sendMu sync.Mutex
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan result
	err     error // why the stream ended

	deliveries chan *agpv1.Message
	done       chan struct{}
	closeOnce  sync.Once
}

// Dial connects to the sidecar's agent listener at addr (host:port).
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{buffer: 1024}
	for _, opt := range opts {
		opt(&o)
	}
	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, o.dialOpts...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("agp client: dial %s: %w", addr, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := agpv1.NewGatewayClient(conn).Connect(sctx, grpc.WaitForReady(true))
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("agp client: connect to %s: %w", addr, err)
	}
	c := &Client{
		conn:       conn,
		stream:     stream,
		cancel:     cancel,
		pending:    map[uint64]chan result{},
		deliveries: make(chan *agpv1.Message, o.buffer),
		done:       make(chan struct{}),
	}
	go c.recvLoop()
	// Dial returns once the stream is established; watch ctx only for that.
	if err := ctx.Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Deliveries returns the channel of messages delivered to this agent. It is
// closed when the stream ends; Err then says why.
func (c *Client) Deliveries() <-chan *agpv1.Message { return c.deliveries }

// Err returns why the stream ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the stream has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) recvLoop() {
	defer close(c.done)
	defer close(c.deliveries)
	for {
		resp, err := c.stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = ErrClosed
			}
			c.fail(err)
			return
		}
		switch k := resp.Kind.(type) {
		case *agpv1.AgentResponse_Delivery:
			select {
			case c.deliveries <- k.Delivery.GetMessage():
			case <-c.stream.Context().Done():
				c.fail(ErrClosed)
				return
			}
		case *agpv1.AgentResponse_Ack:
			c.complete(k.Ack.GetRequestId(), result{ack: k.Ack})
		case *agpv1.AgentResponse_Error:
			e := k.Error
			c.complete(e.GetRequestId(), result{err: status.Error(codes.Code(e.GetCode()), e.GetMessage())})
		}
	}
}

func (c *Client) complete(id uint64, r result) {
	if id == 0 {
		return
	}
	c.mu.Lock()
	ch := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, ch := range c.pending {
		ch <- result{err: c.err}
		delete(c.pending, id)
	}
}

// call sends req and waits for its Ack or Error.
func (c *Client) call(ctx context.Context, req *agpv1.AgentRequest) (*agpv1.Ack, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := c.nextID.Add(1)
	req.RequestId = id
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(req); err != nil {
		c.complete(id, result{err: err})
	}
	select {
	case r := <-ch:
		return r.ack, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Client) send(req *agpv1.AgentRequest) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.stream.Send(req); err != nil {
		if err == io.EOF {
			// The real status comes from Recv.
			<-c.done
			if e := c.Err(); e != nil {
				return e
			}
			return ErrClosed
		}
		return err
	}
	return nil
}

// Subscribe asks the sidecar to deliver messages for name (a topic or AGP
// name) to this agent and waits for the acknowledgement.
func (c *Client) Subscribe(ctx context.Context, name string) error {
	_, err := c.call(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Subscribe{Subscribe: &agpv1.Subscribe{Name: name}}})
	return err
}

// Unsubscribe withdraws a subscription and waits for the acknowledgement.
func (c *Client) Unsubscribe(ctx context.Context, name string) error {
	_, err := c.call(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Unsubscribe{Unsubscribe: &agpv1.Unsubscribe{Name: name}}})
	return err
}

// Publish sends msg and waits for the sidecar's Ack, which says how many
// local and remote subscribers it was handed to.
func (c *Client) Publish(ctx context.Context, msg *agpv1.Message) (*agpv1.Ack, error) {
	return c.call(ctx, &agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msg}}})
}

// PublishNoWait sends msg without waiting for its acknowledgement (request
// id 0: the sidecar's ack is discarded). For high-rate publishers; errors
// other than a broken stream are not reported.
func (c *Client) PublishNoWait(msg *agpv1.Message) error {
	return c.send(&agpv1.AgentRequest{Kind: &agpv1.AgentRequest_Publish{Publish: &agpv1.Publish{Message: msg}}})
}

// Close ends the stream and the connection. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.sendMu.Lock()
		_ = c.stream.CloseSend()
		c.sendMu.Unlock()
		c.cancel()
		<-c.done
		c.conn.Close()
	})
	return nil
}
