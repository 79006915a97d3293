package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	agpv1 "github.com/agwproject/agw/api/agp/v1"
	"github.com/agwproject/agw/client"
	"github.com/agwproject/agw/interceptors"
	"github.com/agwproject/agw/internal/names"
	"github.com/agwproject/agw/sidecar"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errShutdown ends the calls still in flight when shutdown's grace period
// is over; callers may retry on another instance.
var errShutdown = status.Error(codes.Unavailable, "the target's sidecar is shutting down; retry")

// ErrClosed is returned by Run after Close, or when Run is called twice.
var ErrClosed = errors.New("rpc: layer closed")

// Layer is the RPC layer of one sidecar: the interception listener for its
// agent's outgoing calls and the replay of incoming calls to the agent.
type Layer struct {
	cfg       Config
	agentAddr func(context.Context) (string, error)
	o         options
	log       *slog.Logger
	m         *metrics
	im        *interceptors.Metrics // the interception listener's
	res       Resolver

	name      string   // this agent's instance name
	topic     string   // RPC topic of name: replies and served calls' frames
	openTopic []string // RPC topics where opens arrive (service, channels)

	node *sidecar.Node // NewForNode: attach in memory
	link agentLink
	app  *grpc.ClientConn

	mu       sync.Mutex
	out      map[string]outSink // calls this agent makes
	in       map[string]*inCall // calls replayed to this agent
	draining bool
	calls    sync.WaitGroup // in-flight calls of both roles

	ctx    context.Context // layer lifetime: replayed calls derive from it
	cancel context.CancelCauseFunc

	w        *workers // goroutines of calls
	idPrefix string   // random, 16 hex digits
	idSeq    atomic.Uint64

	// dropOut, set by tests only, loses the frames it returns true for.
	dropOut atomic.Pointer[func(*agpv1.RpcFrame) bool]

	ready    chan struct{}
	addrMu   sync.Mutex
	addr     net.Addr
	running  atomic.Bool
	stop     chan struct{}
	stopOnce sync.Once
	runDone  chan struct{}
}

// New validates cfg and returns a Layer that will use the agent API of its
// sidecar node at agentAddr (node.AgentAddr().String()); Run starts it.
// The reserved RPC topics are open only to a trusted connection: pass
// WithAgentDialOptions(node.TrustedAgentDialOption()), or use NewForNode.
func New(cfg Config, agentAddr string, opts ...Option) (*Layer, error) {
	if agentAddr == "" {
		return nil, errors.New("rpc: the sidecar's agent API address is empty")
	}
	return newLayer(cfg, func(context.Context) (string, error) { return agentAddr, nil }, opts...)
}

// NewForNode is New for a node in this process: Run waits until the node is
// ready and uses its bound agent API address.
func NewForNode(cfg Config, node *sidecar.Node, opts ...Option) (*Layer, error) {
	if node == nil {
		return nil, errors.New("rpc: nil sidecar node")
	}
	l, err := newLayer(cfg, func(ctx context.Context) (string, error) {
		select {
		case <-node.Ready():
			return "", nil
		case <-node.Done():
			return "", errors.New("rpc: the sidecar node stopped before it was ready")
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, opts...)
	if err != nil {
		return nil, err
	}
	l.node = node
	return l, nil
}

func newLayer(cfg Config, agentAddr func(context.Context) (string, error), opts ...Option) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rpc config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("rpc config: AGW_AGENT_NAME is empty, so the RPC layer is off; set it to this agent's org/namespace/service/instance")
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	o.fill()
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("rpc metrics: %w", err)
	}
	im, err := interceptMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	am, _ := parseAuthorityMap(cfg.AuthorityMap) // validated
	n, _ := names.Parse(cfg.AgentName)
	l := &Layer{
		cfg: cfg, agentAddr: agentAddr, o: o, m: m, im: im,
		log:     o.logger.With("agent", cfg.AgentName),
		res:     Resolver{Org: n.Org, Map: am},
		name:    cfg.AgentName,
		out:     make(map[string]outSink),
		in:      make(map[string]*inCall),
		ready:   make(chan struct{}),
		stop:    make(chan struct{}),
		runDone: make(chan struct{}),
	}
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	l.idPrefix = hex.EncodeToString(rb[:])
	l.topic, _ = Topic(cfg.AgentName)
	if cfg.AppAddr != "" {
		svc, _ := Topic(n.ServiceName())
		l.openTopic = append(l.openTopic, svc)
		for _, ch := range cfg.Channels {
			t, _ := Topic(ch)
			l.openTopic = append(l.openTopic, t)
		}
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.w = newWorkers(l.ctx.Done(), 10*time.Second)
	return l, nil
}

// Name returns the agent name this layer acts for.
func (l *Layer) Name() string { return l.name }

// Ready is closed once the layer is subscribed and listening.
func (l *Layer) Ready() <-chan struct{} { return l.ready }

// Addr returns the interception listener's bound address (nil before Ready
// or when it is disabled).
func (l *Layer) Addr() net.Addr { l.addrMu.Lock(); defer l.addrMu.Unlock(); return l.addr }

// Topics returns the RPC topics the layer subscribes to (for static routes).
func (l *Layer) Topics() []string { return append([]string{l.topic}, l.openTopic...) }

// Close stops the layer as cancelling Run's context does and waits for Run
// to return. It is idempotent.
func (l *Layer) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	if l.running.Load() {
		<-l.runDone
	} else {
		l.cancel(errShutdown)
	}
	return nil
}

// Run connects to the node's agent API, subscribes to the RPC topics,
// serves the interception listener until ctx ends or Close, then shuts
// down in order: stop accepting calls and opens, let in-flight calls finish
// within ShutdownTimeout, cancel the rest, disconnect.
func (l *Layer) Run(ctx context.Context) (err error) {
	if !l.running.CompareAndSwap(false, true) {
		return fmt.Errorf("rpc: Run called twice: %w", ErrClosed)
	}
	defer close(l.runDone)
	defer l.cancel(errShutdown)
	select {
	case <-l.stop:
		return ErrClosed
	default:
	}
	addr, err := l.agentAddr(ctx)
	if err != nil {
		return err
	}
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	defer scancel()
	link, dispatchDone, err := l.connect(sctx, addr)
	if err != nil {
		return err
	}
	l.link = link
	defer link.close()
	if err := link.subscribe(sctx, l.topic); err != nil {
		return fmt.Errorf("rpc: subscribe %s: %w", l.topic, err)
	}
	for _, t := range l.openTopic {
		if err := link.subscribe(sctx, t); err != nil {
			return fmt.Errorf("rpc: subscribe %s: %w", t, err)
		}
	}
	if l.cfg.AppAddr != "" {
		dopts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, l.appDialOptions()...)
		app, err := grpc.NewClient(l.cfg.AppAddr, dopts...)
		if err != nil {
			return fmt.Errorf("rpc: AGW_APP_ADDR %s: %w", l.cfg.AppAddr, err)
		}
		l.app = app
		defer app.Close()
	}
	var srv *grpc.Server
	serveErr := make(chan error, 1)
	if l.cfg.InterceptListen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(sctx, "tcp", l.cfg.InterceptListen)
		if err != nil {
			return fmt.Errorf("rpc: interception listener %s: %w", l.cfg.InterceptListen, err)
		}
		l.addrMu.Lock()
		l.addr = ln.Addr()
		l.addrMu.Unlock()
		srv = grpc.NewServer(l.serverOptions()...)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				serveErr <- err
			}
		}()
	}
	sweepStop := make(chan struct{})
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); l.sweeper(sweepStop) }()
	defer func() { close(sweepStop); <-sweepDone }()
	close(l.ready)
	l.log.Info("rpc layer up", "intercept", addrString(l.Addr()), "app", l.cfg.AppAddr, "topics", l.Topics())

	select {
	case <-ctx.Done():
	case <-l.stop:
	case err = <-serveErr:
		err = fmt.Errorf("rpc: interception listener: %w", err)
	case <-link.done():
		if ctx.Err() == nil && !isClosed(l.stop) {
			err = fmt.Errorf("rpc: the sidecar's agent API stream ended: %w", link.err())
		}
	}
	l.shutdown(srv)
	link.close()
	<-dispatchDone
	return err
}

// connect attaches to the node in memory (NewForNode) or dials its agent
// API (New). The returned channel is closed when the last delivery has
// been dispatched after the link closed.
func (l *Layer) connect(ctx context.Context, addr string) (agentLink, <-chan struct{}, error) {
	if l.node != nil {
		a, err := l.node.AttachLocal("rpc:"+l.name, l.dispatchRaw, sidecar.WithDirectDelivery())
		if err != nil {
			return nil, nil, fmt.Errorf("rpc: attach to the sidecar: %w", err)
		}
		return localLink{a}, a.Done(), nil
	}
	cl, err := client.Dial(ctx, addr,
		client.WithDeliveryBuffer(4096),
		client.WithDialOptions(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
			grpc.WithInitialWindowSize(loopbackWindow), grpc.WithInitialConnWindowSize(loopbackConnWindow)),
		client.WithDialOptions(l.o.agentOpts...))
	if err != nil {
		return nil, nil, fmt.Errorf("rpc: connect to the sidecar's agent API: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range cl.Deliveries() {
			l.dispatchMsg(msg)
		}
	}()
	return grpcLink{cl}, done, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// shutdown: stop taking calls, wait for in-flight ones, then cancel them.
func (l *Layer) shutdown(srv *grpc.Server) {
	start := time.Now()
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	uctx, cancel := context.WithTimeout(context.Background(), time.Second)
	for _, t := range l.openTopic {
		_ = l.link.unsubscribe(uctx, t)
	}
	cancel()
	stopped := make(chan struct{})
	if srv != nil {
		go func() { srv.GracefulStop(); close(stopped) }()
	} else {
		close(stopped)
	}
	done := make(chan struct{})
	go func() { l.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(l.cfg.ShutdownTimeout):
		l.log.Warn("rpc shutdown: cancelling calls still in flight", "timeout", l.cfg.ShutdownTimeout)
	}
	l.cancel(errShutdown)
	if srv != nil {
		srv.Stop()
	}
	<-stopped
	<-done
	// A round trip to the sidecar: every frame sent before it (the last
	// trailers and cancels) has been taken before the stream closes.
	fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
	_ = l.link.unsubscribe(fctx, l.topic)
	fcancel()
	l.log.Info("rpc layer stopped", "took", time.Since(start).Round(time.Millisecond).String())
}

// newCallID returns a call id unique to this layer instance: 64 random
// bits chosen at start (so a restarted sidecar does not reuse ids), then a
// counter, in lowercase hex.
func (l *Layer) newCallID() string {
	var b [16 + 16]byte
	n := copy(b[:], l.idPrefix)
	return string(strconv.AppendUint(b[:n], l.idSeq.Add(1), 16))
}

// publish sends frame f to topic. With wait it returns the sidecar's ack
// (deliveries); otherwise it does not wait.
func (l *Layer) publish(ctx context.Context, topic string, fanout uint32, f *agpv1.RpcFrame, md map[string]string, wait bool) (*agpv1.Ack, error) {
	l.m.framesOut.Inc()
	if drop := l.dropOut.Load(); drop != nil && (*drop)(f) {
		return &agpv1.Ack{RemoteDeliveries: 1}, nil // lost on the way (tests)
	}
	h := msgHeader{source: l.name, destination: topic, fanout: fanout, metadata: md}
	return l.link.publish(ctx, &h, f, wait)
}

// publishRouted publishes f and waits for the sidecar's ack; while nothing
// took it (routes are fetched on demand: the first publish to a topic
// starts the fetch), it retries with backoff for up to RouteWait.
func (l *Layer) publishRouted(ctx context.Context, topic string, fanout uint32, f *agpv1.RpcFrame, md map[string]string) (*agpv1.Ack, error) {
	deadline := time.Now().Add(l.cfg.RouteWait)
	backoff := 2 * time.Millisecond
	for {
		ack, err := l.publish(ctx, topic, fanout, f, md, true)
		if err != nil || ack.GetLocalDeliveries()+ack.GetRemoteDeliveries() > 0 || !time.Now().Before(deadline) {
			return ack, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ack, nil
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// dispatchMsg hands a frame delivered over a gRPC agent stream to its call.
func (l *Layer) dispatchMsg(msg *agpv1.Message) {
	h := msg.GetHeader()
	if h.GetContentType() != ContentType || !IsReserved(h.GetDestination()) {
		l.m.dropped.WithLabelValues("not_rpc").Inc()
		return
	}
	l.dispatchFrame(msg.GetPayload(), h.GetSource, h.GetMetadata)
}

var contentType = []byte(ContentType)
var topicPrefix = []byte(TopicPrefix)

// dispatchRaw hands a frame delivered in memory (the encoding of an
// agpv1.Message, valid during the call) to its call.
func (l *Layer) dispatchRaw(b []byte) {
	d, ok := parseDelivery(b)
	if !ok || !bytes.Equal(d.ctype, contentType) || !bytes.HasPrefix(d.dest, topicPrefix) {
		l.m.dropped.WithLabelValues("not_rpc").Inc()
		return
	}
	l.dispatchFrame(d.payload, func() string { return string(d.source) }, func() map[string]string {
		var h agpv1.Header
		if err := proto.Unmarshal(d.hdr, &h); err != nil {
			return nil
		}
		return h.GetMetadata()
	})
}

// dispatchFrame hands a delivered frame to its call. It never blocks on a
// call: each call's inbox is bounded by its flow-control window, and a call
// that overflows it is failed. In memory, the node delivers in line, from
// each peer link's reader (sidecar.WithDirectDelivery), so frames may be
// dispatched from several goroutines at once: each call serializes its
// own (the deliver methods), and a link delivers its frames in order.
func (l *Layer) dispatchFrame(payload []byte, source func() string, md func() map[string]string) {
	f, err := DecodeFrame(payload)
	if err != nil {
		l.m.dropped.WithLabelValues("malformed").Inc()
		l.log.Debug("dropping malformed RPC frame", "source", source(), "err", err)
		return
	}
	l.m.framesIn.Inc()
	if f.GetReply() {
		l.mu.Lock()
		c := l.out[f.GetCallId()]
		l.mu.Unlock()
		if c == nil {
			l.unknownCall(f)
			return
		}
		c.deliver(f)
		return
	}
	if f.GetOpen() != nil {
		l.open(md(), f)
		return
	}
	l.mu.Lock()
	c := l.in[f.GetCallId()]
	l.mu.Unlock()
	if c == nil {
		l.unknownCall(f)
		return
	}
	c.deliver(f)
}

// unknownCall drops a frame of a call this layer does not know; a ping is
// answered with a cancel, so the other side stops waiting.
func (l *Layer) unknownCall(f *agpv1.RpcFrame) {
	l.m.dropped.WithLabelValues("unknown_call").Inc()
	if !f.GetPing() {
		return
	}
	topic, err := Topic(f.GetSender())
	if err != nil {
		return
	}
	_, _ = l.publish(context.Background(), topic, 1, &agpv1.RpcFrame{
		CallId: f.GetCallId(), Seq: 1, Reply: !f.GetReply(), Sender: l.name,
		Cancel: &agpv1.RpcCancel{Code: int32(codes.Unavailable), Reason: "the call is unknown at " + l.name + " (it ended, or its sidecar restarted)"},
	}, nil, false)
}

// sweepInterval is how often the sweeper checks the calls in flight.
func (l *Layer) sweepInterval() time.Duration {
	d := l.acceptAfter()
	if l.cfg.ProbeInterval > 0 {
		d = min(d, l.cfg.ProbeInterval/2)
	}
	return max(d, time.Millisecond)
}

// sweeper runs every sweepInterval until stop: the timeouts and probes of
// every call in flight, on one shared ticker instead of timers per call.
func (l *Layer) sweeper(stop <-chan struct{}) {
	t := time.NewTicker(l.sweepInterval())
	defer t.Stop()
	var outs []*outCall
	var ins []*inCall
	for {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		l.mu.Lock()
		for _, c := range l.out {
			if oc, ok := c.(*outCall); ok {
				outs = append(outs, oc)
			}
		}
		for _, c := range l.in {
			ins = append(ins, c)
		}
		l.mu.Unlock()
		now := time.Now().UnixNano()
		for _, c := range outs {
			c.sweep(now)
		}
		for _, c := range ins {
			c.sweep(now)
		}
		clear(outs)
		clear(ins)
		outs, ins = outs[:0], ins[:0]
	}
}

// prober tracks when a call last heard from the other side and decides
// when to ping and when to give up.
type prober struct {
	last   atomic.Int64 // unix nanos of the last frame received
	pinged int64        // when the unanswered ping went; 0 = none (owner only)
}

func (p *prober) heard() { p.last.Store(time.Now().UnixNano()) }

// tick returns whether to ping now and whether the other side is gone.
func (p *prober) tick(interval time.Duration) (ping, gone bool) {
	now := time.Now().UnixNano()
	last := p.last.Load()
	if p.pinged != 0 && last < p.pinged {
		return false, now-p.pinged >= int64(interval)
	}
	if now-last >= int64(interval) {
		p.pinged = now
		return true, false
	}
	p.pinged = 0
	return false, false
}

// probeTicker returns a ticker channel for the probe interval (nil when
// probing is off) and its stop function.
func (l *Layer) probeTicker() (<-chan time.Time, func()) {
	if l.cfg.ProbeInterval <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(l.cfg.ProbeInterval / 2)
	return t.C, t.Stop
}

// outSink is a call this agent makes: it receives the target's frames.
type outSink interface{ deliver(f *agpv1.RpcFrame) }

func (l *Layer) addOut(id string, c outSink) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
	l.out[id] = c
	l.calls.Add(1)
	return nil
}

func (l *Layer) removeOut(id string) {
	l.mu.Lock()
	if _, ok := l.out[id]; ok {
		delete(l.out, id)
		l.calls.Done()
	}
	l.mu.Unlock()
}

// frameSeq numbers the frames of one call in one direction; send holds the
// lock from numbering to publishing, so frames leave in order.
type frameSeq struct {
	mu  sync.Mutex
	seq uint64
}

// send numbers f and publishes it without waiting for an ack.
func (s *frameSeq) send(l *Layer, topic string, f *agpv1.RpcFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	f.Seq = s.seq
	_, err := l.publish(context.Background(), topic, 1, f, nil, false)
	return err
}

// sendRouted is send for a call's first frame to a topic: it waits for the
// sidecar's ack and retries while no route exists (publishRouted).
func (s *frameSeq) sendRouted(ctx context.Context, l *Layer, topic string, f *agpv1.RpcFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	f.Seq = s.seq
	ack, err := l.publishRouted(ctx, topic, 1, f, nil)
	if err != nil {
		return err
	}
	if ack.GetLocalDeliveries()+ack.GetRemoteDeliveries() == 0 {
		return status.Errorf(codes.Unavailable, "no route to %s within %s (AGW_RPC_ROUTE_WAIT)", topic, l.cfg.RouteWait)
	}
	return nil
}

// seqCheck tracks the next expected frame number of one sender.
type seqCheck struct{ next uint64 }

func (s *seqCheck) ok(seq uint64) bool {
	if s.next == 0 {
		s.next = 1
	}
	if seq != s.next {
		return false
	}
	s.next++
	return true
}
