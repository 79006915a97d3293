package sidecar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrLocalClosed is returned by a LocalAgent's methods after Close, or once
// its node has stopped.
var ErrLocalClosed = errors.New("sidecar: local attachment closed")

// LocalAgent is an in-process attachment to a node: one more local agent
// connection, for the sidecar's own layers in this process (sidecar/rpc),
// without gRPC in between. It has an agent connection's semantics: an entry
// in the connection table (kind agent, remote "in-process:<name>"), its
// subscriptions in the subscription table, its traffic in the metrics, a
// bounded delivery queue (a full queue drops messages to it as for a slow
// agent: slow_consumer), and it is trusted for the reserved RPC topics
// (RPCTopicPrefix), never for the MLS ones. Close detaches it; it is
// detached when its node stops, too.
//
// Publish, Subscribe and Unsubscribe may be called from any goroutine; they
// answer at once, from the caller's goroutine, instead of over a stream.
type LocalAgent struct {
	n       *Node
	c       *agentConn
	deliver func(msg []byte)

	mu       sync.Mutex // guards c.subs and detached
	detached bool

	direct bool         // deliver in line (WithDirectDelivery)
	off    atomic.Bool  // direct: detached, take no more deliveries
	busy   atomic.Int64 // direct: deliveries in progress

	stopWatch func() bool   // stops the node-stop watch
	done      chan struct{} // closed when the delivery goroutine returns
	closeOnce sync.Once
}

// LocalOption configures AttachLocal.
type LocalOption func(*localOptions)

type localOptions struct {
	queue  int
	direct bool
}

// WithDirectDelivery makes the node call the delivery function in line,
// on the goroutine that hands the message over (a peer link's reader, or
// the publisher's), instead of queueing it for the attachment's own
// goroutine: one goroutine hand-off less per message. The delivery
// function may then run concurrently with itself, and must never block
// (there is no queue, so no slow-consumer drops either: a slow delivery
// function slows the link that delivers). It may publish.
func WithDirectDelivery() LocalOption { return func(o *localOptions) { o.direct = true } }

// WithLocalQueueSize sets the attachment's delivery queue (default: the
// node's AGW_QUEUE_SIZE).
func WithLocalQueueSize(n int) LocalOption { return func(o *localOptions) { o.queue = n } }

// AttachLocal attaches a local agent named name (for the connection table
// and logs) to the node. deliver is called for every message delivered to
// its subscriptions, one at a time, in order, on a goroutine of the
// attachment, with the message's protobuf encoding (an agpv1.Message),
// which is valid only until deliver returns. deliver must not block for
// long: while it runs, further messages wait in the queue, and a full queue
// drops them.
//
// The node must be running (after Ready); a draining or stopped node
// refuses with UNAVAILABLE.
func (n *Node) AttachLocal(name string, deliver func(msg []byte), opts ...LocalOption) (*LocalAgent, error) {
	if deliver == nil {
		return nil, errors.New("sidecar: AttachLocal needs a delivery function")
	}
	o := localOptions{queue: n.cfg.QueueSize}
	for _, f := range opts {
		f(&o)
	}
	if o.queue < 1 {
		return nil, fmt.Errorf("sidecar: local queue size %d, want at least 1", o.queue)
	}
	select {
	case <-n.ready:
	default:
		return nil, status.Error(codes.Unavailable, "sidecar: the node is not running yet (wait for Ready)")
	}
	if n.draining.Load() || n.ctx.Err() != nil {
		return nil, status.Error(codes.Unavailable, "sidecar is shutting down")
	}
	c := n.newAgentConn("in-process:" + name)
	if o.queue != cap(c.q) {
		c.q = make(chan outItem, o.queue)
		c.queueCap = o.queue
	}
	c.trusted = true
	a := &LocalAgent{n: n, c: c, deliver: deliver, done: make(chan struct{}), direct: o.direct}
	if o.direct {
		c.direct = a
		c.q = nil
		c.queueCap = 0
		c.queueDepth = nil
	}
	n.conns.add(&c.connEntry)
	if !o.direct {
		go a.run()
	}
	a.stopWatch = context.AfterFunc(n.ctx, a.detach)
	n.log.Debug("local agent attached", "conn", c.id, "name", name)
	return a, nil
}

// ID returns the attachment's connection table id.
func (a *LocalAgent) ID() uint64 { return a.c.id }

// Done is closed once the attachment is detached (Close, or its node
// stopped) and its last delivery has returned (with WithDirectDelivery,
// once it is detached: Close also waits for deliveries in progress).
func (a *LocalAgent) Done() <-chan struct{} { return a.done }

// run delivers the queue until the attachment is detached.
func (a *LocalAgent) run() {
	defer close(a.done)
	n, c := a.n, a.c
	out := n.m.msgsOut[KindAgent]
	for {
		select {
		case it := <-c.q:
			if it.w == nil {
				continue
			}
			a.deliver(it.w.body)
			size := it.w.size()
			it.w.unref()
			now := time.Now().UnixNano()
			c.countOut(size, now)
			out.Inc()
			n.m.latency.Observe(float64(now-it.t0) / 1e9)
		case <-c.dead:
			// Release what is still queued.
			for {
				select {
				case it := <-c.q:
					if it.w != nil {
						it.w.unref()
					}
				default:
					return
				}
			}
		}
	}
}

// deliverDirect delivers w in line (WithDirectDelivery).
func (a *LocalAgent) deliverDirect(w *wmsg, t0 int64) bool {
	a.busy.Add(1)
	defer a.busy.Add(-1)
	if a.off.Load() {
		return false
	}
	a.deliver(w.body)
	now := time.Now().UnixNano()
	a.c.countOut(w.size(), now)
	a.n.m.msgsOut[KindAgent].Inc()
	a.n.m.latency.Observe(float64(now-t0) / 1e9)
	return true
}

// detach removes the attachment from the node's tables; idempotent.
func (a *LocalAgent) detach() {
	a.off.Store(true)
	a.mu.Lock()
	if a.detached {
		a.mu.Unlock()
		return
	}
	a.detached = true
	a.c.setStatus(StatusDown)
	a.n.dropAllSubscriptions(a.c)
	a.mu.Unlock()
	a.c.kill()
	if a.direct {
		close(a.done) // no goroutine to wait for; Close waits for deliveries in progress
	}
	a.n.conns.remove(a.c.id)
	a.n.log.Debug("local agent detached", "conn", a.c.id)
}

// Close detaches the attachment: its subscriptions are withdrawn, its
// queue dropped, and it leaves the connection table. It waits until a
// delivery in progress has returned, so it must not be called from the
// delivery function. It is idempotent.
func (a *LocalAgent) Close() error {
	a.closeOnce.Do(func() {
		a.stopWatch()
		a.detach()
	})
	<-a.done
	for a.direct && a.busy.Load() > 0 {
		time.Sleep(50 * time.Microsecond) // a delivery in progress
	}
	return nil
}

// answer turns the node's answer to a request into an error (nil for an
// Ack).
func answer(resp *agpv1.AgentResponse) (*agpv1.Ack, error) {
	if e := resp.GetError(); e != nil {
		return nil, status.Error(codes.Code(e.GetCode()), e.GetMessage())
	}
	return resp.GetAck(), nil
}

// Subscribe subscribes the attachment to topic.
func (a *LocalAgent) Subscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.detached {
		return ErrLocalClosed
	}
	a.c.touch(time.Now().UnixNano())
	_, err := answer(a.n.subscribe(a.c, 1, topic))
	return err
}

// Unsubscribe withdraws the attachment's subscription to topic; it is not
// an error if there is none.
func (a *LocalAgent) Unsubscribe(topic string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.detached {
		return ErrLocalClosed
	}
	a.c.touch(time.Now().UnixNano())
	_, err := answer(a.n.unsubscribe(a.c, 1, topic))
	return err
}

// Publish publishes a message given as its protobuf encoding (an
// agpv1.Message), exactly as an agent's Publish: the node checks the
// header, sets hop_limit and message_id when they are missing, and
// forwards it. It returns the Ack (the message id and how many local
// subscribers and peer nodes took it), or a status error. msg is not
// retained after Publish returns.
func (a *LocalAgent) Publish(msg []byte) (*agpv1.Ack, error) {
	if a.c.Status() == StatusDown {
		return nil, ErrLocalClosed
	}
	now := time.Now().UnixNano()
	a.c.touch(now)
	return answer(a.n.publishBytes(a.c, 1, msg, now))
}

// PublishNoAck is Publish without the Ack, for a publisher that does not
// need the delivery counts (it allocates no answer); refusals are still
// errors.
func (a *LocalAgent) PublishNoAck(msg []byte) error {
	if a.c.Status() == StatusDown {
		return ErrLocalClosed
	}
	now := time.Now().UnixNano()
	a.c.touch(now)
	_, err := answer(a.n.publishBytes(a.c, 0, msg, now))
	return err
}

// PublishMessage is Publish for a decoded message.
func (a *LocalAgent) PublishMessage(msg *agpv1.Message) (*agpv1.Ack, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "publish: encode message: %v", err)
	}
	return a.Publish(b)
}
