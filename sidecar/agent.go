package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/internal/names"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var errConnClosed = errors.New("connection closed")

// outItem is one entry of an agent send queue: a delivery (w) or an answer
// (resp).
type outItem struct {
	w    *wmsg
	resp *agpv1.AgentResponse
	t0   int64 // arrival time of a delivered message (unix nanos)
}

// agentConn is a local agent's Gateway.Connect stream.
type agentConn struct {
	connEntry
	q        chan outItem
	dead     chan struct{} // closed when the stream is finished
	deadOnce sync.Once
	subs     map[string]struct{} // owned by the stream's reader goroutine
	trusted  bool                // may use the reserved RPC names (set before use)
	nsubs    atomic.Int32
	dropLog  atomic.Int64
	direct   *LocalAgent // a local attachment delivered in line (local.go)
}

func (n *Node) newAgentConn(remote string) *agentConn {
	c := &agentConn{
		q:    make(chan outItem, n.cfg.QueueSize),
		dead: make(chan struct{}),
		subs: make(map[string]struct{}),
	}
	n.conns.initEntry(&c.connEntry, KindAgent, StatusUp)
	c.remote = remote
	c.version = ProtocolVersion
	c.maxMsg = uint32(n.cfg.MaxMessageBytes)
	c.queueCap = n.cfg.QueueSize
	c.queueDepth = func() int { return len(c.q) }
	c.subsCount = func() int { return int(c.nsubs.Load()) }
	return c
}

func (c *agentConn) kill() { c.deadOnce.Do(func() { close(c.dead) }) }

// reply queues an ack or error for the agent, waiting for room: a publisher
// that does not read its acks slows down only itself.
func (c *agentConn) reply(ctx context.Context, resp *agpv1.AgentResponse) error {
	select {
	case c.q <- outItem{resp: resp}:
		return nil
	case <-c.dead:
		return errConnClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ackNotSent is publishWire's answer to a Publish with request id 0, whose
// Ack is not sent: shared, so that such publishes allocate no answer.
var ackNotSent = ackResp(0)

func ackResp(id uint64) *agpv1.AgentResponse {
	return &agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Ack{Ack: &agpv1.Ack{RequestId: id}}}
}

func errResp(id uint64, code codes.Code, format string, a ...any) *agpv1.AgentResponse {
	return &agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Error{Error: &agpv1.Error{
		RequestId: id, Code: int32(code), Message: fmt.Sprintf(format, a...),
	}}}
}

type gatewayServer struct {
	agpv1.UnimplementedGatewayServer
	n *Node
}

// Connect serves one agent stream: the handler goroutine reads requests, a
// writer goroutine sends the connection's queue.
func (s *gatewayServer) Connect(stream grpc.BidiStreamingServer[agpv1.AgentRequest, agpv1.AgentResponse]) error {
	n := s.n
	if n.draining.Load() {
		return status.Error(codes.Unavailable, "sidecar is shutting down; reconnect to the new instance")
	}
	ctx := stream.Context()
	remote := ""
	if p, ok := grpcpeer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
		if !n.cfg.AllowRemoteAgents && !isLoopbackAddr(p.Addr) && !isInProcess(p.Addr) {
			return status.Errorf(codes.PermissionDenied, "agent connections are accepted from loopback only (got %s); set AGW_ALLOW_REMOTE_AGENTS=true to allow", remote)
		}
	}
	trusted, err := n.agentTrust(ctx)
	if err != nil {
		return err
	}
	c := n.newAgentConn(remote)
	c.trusted = trusted
	n.conns.add(&c.connEntry)
	log := n.log.With("conn", c.id, "remote", remote)
	log.Debug("agent connected")

	var writer sync.WaitGroup
	writer.Go(func() { n.agentWriter(c, stream) })

	var raw rawFrame
	for {
		if err = stream.RecvMsg(&raw); err != nil {
			break
		}
		err = n.handleAgentBytes(ctx, c, raw.b)
		raw.release()
		if err != nil {
			break
		}
	}
	c.setStatus(StatusDown)
	n.dropAllSubscriptions(c)
	c.kill()
	writer.Wait()
	n.conns.remove(c.id)
	if errors.Is(err, io.EOF) || errors.Is(err, errConnClosed) {
		err = nil
	}
	log.Debug("agent disconnected", "err", err)
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
	}
	return err
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return isLoopbackHost(a.String())
}

// agentWriter sends c's queue until the stream is finished.
func (n *Node) agentWriter(c *agentConn, stream grpc.BidiStreamingServer[agpv1.AgentRequest, agpv1.AgentResponse]) {
	out := n.m.msgsOut[KindAgent]
	for {
		select {
		case it := <-c.q:
			if it.w == nil {
				if err := stream.Send(it.resp); err != nil {
					c.kill()
					return
				}
				continue
			}
			if err := stream.SendMsg((*deliveryFrame)(it.w)); err != nil {
				c.kill()
				return
			}
			now := time.Now().UnixNano()
			c.countOut(it.w.size(), now)
			out.Inc()
			n.m.latency.Observe(float64(now-it.t0) / 1e9)
		case <-c.dead:
			return
		}
	}
}

// offerAgent hands msg to a local subscriber without waiting; a full queue
// drops it (slow_consumer).
func (n *Node) offerAgent(c *agentConn, w *wmsg, t0 int64) bool {
	if c.Status() == StatusDown {
		return false
	}
	if c.direct != nil {
		return c.direct.deliverDirect(w, t0)
	}
	w.ref()
	select {
	case c.q <- outItem{w: w, t0: t0}:
		return true
	default:
	}
	w.unref()
	c.drops.Add(1)
	n.m.drop(DropSlowConsumer, 1)
	if logEvery(&c.dropLog, t0, 5*time.Second) {
		n.log.Warn("slow consumer: agent send queue is full, dropping messages to it",
			"conn", c.id, "remote", c.remote, "queue_size", cap(c.q), "drops_total", c.drops.Load())
	}
	return false
}

// handleAgentBytes answers one encoded AgentRequest. A Publish takes the
// wire-form fast path; anything else is decoded as a whole. It returns an
// error only when the stream must end.
func (n *Node) handleAgentBytes(ctx context.Context, c *agentConn, b []byte) error {
	kind, val, once, id, err := scanOneof(b, 2, 4)
	if err == nil && kind == 4 && once {
		if mb, ok := singleField(val, 1); ok {
			now := time.Now().UnixNano()
			c.touch(now)
			return n.replyPublish(ctx, c, id, n.publishBytes(c, id, mb, now))
		}
	}
	var req agpv1.AgentRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		n.m.requests.WithLabelValues("unknown", codes.InvalidArgument.String()).Inc()
		return c.reply(ctx, errResp(id, codes.InvalidArgument, "request %d is not a valid AgentRequest: %v", id, err))
	}
	return n.handleAgentRequest(ctx, c, &req)
}

// handleAgentRequest answers one decoded request. It returns an error only
// when the stream must end.
func (n *Node) handleAgentRequest(ctx context.Context, c *agentConn, req *agpv1.AgentRequest) error {
	now := time.Now().UnixNano()
	c.touch(now)
	id := req.GetRequestId()
	switch k := req.GetKind().(type) {
	case *agpv1.AgentRequest_Subscribe:
		return c.reply(ctx, n.subscribe(c, id, k.Subscribe.GetName()))
	case *agpv1.AgentRequest_Unsubscribe:
		return c.reply(ctx, n.unsubscribe(c, id, k.Unsubscribe.GetName()))
	case *agpv1.AgentRequest_Publish:
		return n.replyPublish(ctx, c, id, n.publish(c, id, k.Publish.GetMessage(), now))
	default:
		n.m.requests.WithLabelValues("unknown", codes.InvalidArgument.String()).Inc()
		return c.reply(ctx, errResp(id, codes.InvalidArgument, "request %d has no known kind; set one of subscribe, unsubscribe, publish", id))
	}
}

// replyPublish sends the answer to a Publish, except the Ack of a publish
// with request id 0: such a publisher asked not to be acknowledged (errors
// are still sent), which saves one message per publish on busy streams.
func (n *Node) replyPublish(ctx context.Context, c *agentConn, id uint64, resp *agpv1.AgentResponse) error {
	if id == 0 && resp.GetAck() != nil {
		return nil
	}
	return c.reply(ctx, resp)
}

func (n *Node) subscribe(c *agentConn, id uint64, topic string) *agpv1.AgentResponse {
	if err := names.Validate(topic); err != nil {
		n.m.requests.WithLabelValues("subscribe", codes.InvalidArgument.String()).Inc()
		return errResp(id, codes.InvalidArgument, "subscribe: %v", err)
	}
	if why := reservedFor(topic, c.trusted); why != "" {
		n.m.requests.WithLabelValues("subscribe", codes.PermissionDenied.String()).Inc()
		return errResp(id, codes.PermissionDenied, "subscribe: %q: %s", topic, why)
	}
	if n.draining.Load() {
		return errResp(id, codes.Unavailable, "subscribe: sidecar is shutting down")
	}
	if _, ok := c.subs[topic]; ok {
		return ackResp(id)
	}
	if len(c.subs) >= n.cfg.MaxSubscriptionsPerConn {
		n.m.requests.WithLabelValues("subscribe", codes.ResourceExhausted.String()).Inc()
		return errResp(id, codes.ResourceExhausted, "subscribe: this connection already has %d subscriptions (AGW_MAX_SUBSCRIPTIONS_PER_CONN)", len(c.subs))
	}
	c.subs[topic] = struct{}{}
	c.nsubs.Store(int32(len(c.subs)))
	n.subs.add(topic, c)
	n.m.requests.WithLabelValues("subscribe", codes.OK.String()).Inc()
	return ackResp(id)
}

func (n *Node) unsubscribe(c *agentConn, id uint64, topic string) *agpv1.AgentResponse {
	if err := names.Validate(topic); err != nil {
		n.m.requests.WithLabelValues("unsubscribe", codes.InvalidArgument.String()).Inc()
		return errResp(id, codes.InvalidArgument, "unsubscribe: %v", err)
	}
	if _, ok := c.subs[topic]; ok {
		delete(c.subs, topic)
		c.nsubs.Store(int32(len(c.subs)))
		n.subs.remove(topic, c)
	}
	n.m.requests.WithLabelValues("unsubscribe", codes.OK.String()).Inc()
	return ackResp(id) // idempotent
}

func (n *Node) dropAllSubscriptions(c *agentConn) {
	for topic := range c.subs {
		n.subs.remove(topic, c)
	}
	clear(c.subs)
	c.nsubs.Store(0)
}

// publish handles a decoded Publish (slow path).
func (n *Node) publish(c *agentConn, id uint64, msg *agpv1.Message, now int64) *agpv1.AgentResponse {
	if msg == nil {
		n.m.requests.WithLabelValues("publish", codes.InvalidArgument.String()).Inc()
		return errResp(id, codes.InvalidArgument, "publish: message is missing; set message.header.destination")
	}
	hdr, rest, err := wmsgFromProto(msg)
	if err != nil {
		return errResp(id, codes.InvalidArgument, "publish: %v", err)
	}
	return n.publishParts(c, id, hdr, rest, now)
}

// publishBytes handles a Publish whose message is encoded in mb, without
// decoding it (see msgView): the header is checked and completed in place.
func (n *Node) publishBytes(c *agentConn, id uint64, mb []byte, now int64) *agpv1.AgentResponse {
	var v msgView
	err := v.parse(mb)
	if errors.Is(err, errFragmented) {
		return n.publishBytesSlow(c, id, mb, now)
	}
	if err != nil {
		n.m.requests.WithLabelValues("publish", codes.InvalidArgument.String()).Inc()
		return errResp(id, codes.InvalidArgument, "publish: message: %v", err)
	}
	if v.nh == 0 || !names.ValidBytes(v.dest) || reservedBytes(v.dest, c.trusted) || (len(v.src) > 0 && !names.ValidBytes(v.src)) || v.hop > MaxHopLimit {
		// The slow path explains what is wrong.
		return n.publishBytesSlow(c, id, mb, now)
	}
	hop, setHop := v.hop, false
	if hop == 0 {
		hop, setHop = n.cfg.DefaultHopLimit, true
	}
	msgID, newID := string(v.id), ""
	if msgID == "" {
		msgID = n.ids.next()
		newID = msgID
	}
	w := v.buildWith(hop, setHop, newID)
	w.dest = string(v.dest)
	return n.publishWire(c, id, w, msgID, now)
}

// publishBytesSlow decodes the header.
func (n *Node) publishBytesSlow(c *agentConn, id uint64, mb []byte, now int64) *agpv1.AgentResponse {
	hdr, rest, err := splitMessage(mb)
	if err != nil {
		n.m.requests.WithLabelValues("publish", codes.InvalidArgument.String()).Inc()
		return errResp(id, codes.InvalidArgument, "publish: message: %v", err)
	}
	return n.publishParts(c, id, hdr, rest, now)
}

func (n *Node) publishParts(c *agentConn, id uint64, h *agpv1.Header, rest [][]byte, now int64) *agpv1.AgentResponse {
	if resp := n.validatePublish(c, id, h); resp != nil {
		n.m.requests.WithLabelValues("publish", codes.Code(resp.GetError().GetCode()).String()).Inc()
		return resp
	}
	if h.HopLimit == 0 {
		h.HopLimit = n.cfg.DefaultHopLimit
	}
	if h.MessageId == "" {
		h.MessageId = n.ids.next()
	}
	w, err := buildWmsg(h, rest)
	if err != nil {
		return errResp(id, codes.InvalidArgument, "publish: %v", err)
	}
	return n.publishWire(c, id, w, h.MessageId, now)
}

// publishWire sends a validated message in wire form and answers the
// Publish.
func (n *Node) publishWire(c *agentConn, id uint64, w *wmsg, msgID string, now int64) *agpv1.AgentResponse {
	if size := w.size(); size > n.cfg.MaxMessageBytes {
		w.unref()
		n.m.requests.WithLabelValues("publish", codes.ResourceExhausted.String()).Inc()
		return errResp(id, codes.ResourceExhausted, "publish: message is %d bytes, the limit is %d (AGW_MAX_MESSAGE_BYTES)", size, n.cfg.MaxMessageBytes)
	}
	if n.draining.Load() {
		w.unref()
		return errResp(id, codes.Unavailable, "publish: sidecar is shutting down")
	}
	c.countIn(w.size(), now)
	n.m.msgsIn[KindAgent].Inc()
	local, remote := n.forward(w, c, now)
	w.unref()
	n.m.pubOK.Inc()
	if id == 0 {
		return ackNotSent // replyPublish sends no Ack for request id 0
	}
	return &agpv1.AgentResponse{Kind: &agpv1.AgentResponse_Ack{Ack: &agpv1.Ack{
		RequestId: id, MessageId: msgID, LocalDeliveries: local, RemoteDeliveries: remote,
	}}}
}

// validatePublish returns an error response, or nil if msg may be sent.
func (n *Node) validatePublish(c *agentConn, id uint64, h *agpv1.Header) *agpv1.AgentResponse {
	if h == nil {
		return errResp(id, codes.InvalidArgument, "publish: message.header is missing; set at least header.destination")
	}
	if err := names.Validate(h.Destination); err != nil {
		return errResp(id, codes.InvalidArgument, "publish: header.destination: %v", err)
	}
	if why := reservedFor(h.Destination, c.trusted); why != "" {
		return errResp(id, codes.PermissionDenied, "publish: header.destination %q: %s", h.Destination, why)
	}
	if h.Source != "" {
		if err := names.Validate(h.Source); err != nil {
			return errResp(id, codes.InvalidArgument, "publish: header.source: %v", err)
		}
	}
	if h.HopLimit > MaxHopLimit {
		return errResp(id, codes.InvalidArgument, "publish: header.hop_limit %d is above %d", h.HopLimit, MaxHopLimit)
	}
	return nil
}
